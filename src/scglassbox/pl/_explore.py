"""Interactive explorer: the embedding linked to a bar chart of contributions (Bokeh).

Everything the browser needs is computed here once and sent as typed arrays; selections are
summarised in the browser by a ``CustomJS`` callback, so the file works without a Python
kernel (a notebook output or one standalone HTML file). To stay responsive with 100,000
cells, only the most important genes (overall and per group, plus any requested) are sent,
and their signed contributions travel as int16 with a float32 scale per gene and dimension
(precise to 1.5e-5 of the gene's largest absolute contribution), and so do expression
values for the hover text (with an offset: precise to 1.5e-5 of the gene's range).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from anndata import AnnData
from scipy import sparse

from .._docs import doc_params
from . import _views as v
from ._utils import OTHER_COLOR, palette

if TYPE_CHECKING:
    from bokeh.models import LayoutDOM

_INSTALL = "pip install 'scglassbox[interactive]'"
_INT16_MAX = 32767

# JavaScript shared by the callbacks. ``dat[d][i*K + k] * scale[d*K + k]`` is the signed
# contribution of gene k to dimension d in cell i.
_JS_HELPERS = """
const K = meta.K, D = meta.D, N = src.data.x.length;
const dat = [];
for (let d = 0; d < D; d++) dat.push(cdata.data['d' + d]);
function contrib(i, k, view) {
    // view 0: L2, 1: normed L2, 2..: signed dimension view-2
    if (view >= 2) { const d = view - 2; return dat[d][i * K + k] * meta.scale[d * K + k]; }
    let s = 0.0;
    for (let d = 0; d < D; d++) { const c = dat[d][i * K + k] * meta.scale[d * K + k]; s += c * c; }
    const l2 = Math.sqrt(s);
    if (view === 1) { const t = src.data.total[i]; return t > 0 ? l2 / t : 0.0; }
    return l2;
}
"""

_JS_BARS = (
    _JS_HELPERS
    + """
const view = view_rb.active;
const sel = src.selected.indices;
const n = sel.length > 0 ? sel.length : N;
const sum = new Float64Array(K), sq = new Float64Array(K);
for (let j = 0; j < n; j++) {
    const i = sel.length > 0 ? sel[j] : j;
    for (let k = 0; k < K; k++) { const c = contrib(i, k, view); sum[k] += c; sq[k] += c * c; }
}
const mean = new Float64Array(K), sem = new Float64Array(K), order = [];
for (let k = 0; k < K; k++) {
    mean[k] = sum[k] / n;
    const variance = n > 1 ? Math.max(sq[k] - n * mean[k] * mean[k], 0) / (n - 1) : 0;
    sem[k] = Math.sqrt(variance / n);
    order.push(k);
}
const signed = view >= 2;
order.sort((a, b) => (signed ? Math.abs(mean[b]) - Math.abs(mean[a]) : mean[b] - mean[a]));
const top = order.slice(0, meta.n_bars).reverse();  // first factor is drawn at the bottom
const genes = top.map(k => meta.genes[k]);
bars.data = {
    gene: genes,
    mean: top.map(k => mean[k]),
    lo: top.map(k => mean[k] - sem[k]),
    hi: top.map(k => mean[k] + sem[k]),
    color: top.map(k => (signed ? (mean[k] >= 0 ? meta.pos_color : meta.neg_color)
                                : meta.bar_color)),
};
yrange.factors = genes;
const what = sel.length > 0 ? `${n.toLocaleString()} selected cells`
                            : `all ${N.toLocaleString()} cells`;
bar_fig.title.text = `Mean ${meta.view_labels[view]} (\u00b1 SEM): ${what}`;
"""
)

_JS_COLOR = (
    _JS_HELPERS
    + """
const mode = color_rb.active;  // 0: group, 1: feature, 2: top feature
let k = meta.genes.indexOf(auto.value);
if (k < 0) k = meta.current[0];
meta.current[0] = k;
const gene = meta.genes[k];
const fval = src.data.fval, fcon = src.data.fcon, c = src.data.c, v = vals.data.v;
let cmax = 0.0;
for (let i = 0; i < N; i++) {
    fcon[i] = contrib(i, k, 0);
    if (fcon[i] > cmax) cmax = fcon[i];
    fval[i] = meta.has_values ? v[i * K + k] * meta.vscale[k] + meta.voffset[k] : NaN;
}
function swatches(names, colors) {
    return names.map((nm, j) => '<div style="white-space:nowrap">' +
        '<span style="display:inline-block;width:10px;height:10px;border-radius:5px;' +
        `margin-right:5px;background:${colors[j]}"></span>${nm}</div>`).join('');
}
if (mode === 1) {
    for (let i = 0; i < N; i++) c[i] = fcon[i];
    mapper.setv({palette: meta.gradient, low: 0.0, high: cmax > 0 ? cmax : 1.0});  // one redraw
    cbar.visible = true;  // not the plot: changing the layout would redraw everything
    legend.text = `<b>${gene}</b><br>L2 contribution`;
} else {
    const codes = mode === 0 ? src.data.grp : src.data.top;
    const names = mode === 0 ? meta.groups : meta.tops;
    const colors = mode === 0 ? meta.group_colors : meta.top_colors;
    for (let i = 0; i < N; i++) c[i] = codes[i] + 0.5;
    mapper.setv({palette: colors, low: 0.0, high: colors.length});
    cbar.visible = false;
    legend.text = `<b>${mode === 0 ? meta.groupby : 'top feature'}</b>` + swatches(names, colors);
}
hover.tooltips = meta.base_tooltips.concat([
    [`${gene} ${meta.value_label}`, '@fval{0.00}'],
    [`${gene} L2 contribution`, '@fcon{0.0000}'],
]);
src.change.emit();
"""
)


def _bokeh():
    try:
        import bokeh  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without bokeh
        raise ImportError(
            f"gb.pl.explore needs bokeh >= 3.4, an optional dependency: {_INSTALL}"
        ) from e


def _quantize(x: np.ndarray, *, centre: bool = False) -> tuple[np.ndarray, ...]:
    """Columns of ``x`` as int16: ``x ~ q * scale + offset`` (``offset = 0`` unless centred).

    Returns ``(q, scale, offset)``; the error is at most ``scale / 2`` per value.
    """
    x = np.where(np.isfinite(x), x, 0.0).astype(np.float64)
    if centre:
        lo, hi = x.min(axis=0), x.max(axis=0)
        offset, half_range = (lo + hi) / 2, (hi - lo) / 2
    else:
        offset, half_range = np.zeros(x.shape[1]), np.abs(x).max(axis=0)
    scale = np.where(half_range > 0, half_range / _INT16_MAX, 1.0)
    q = np.rint((x - offset) / scale).clip(-_INT16_MAX, _INT16_MAX).astype(np.int16)
    return q, scale.astype(np.float32), offset.astype(np.float32)


def _expression(adata: AnnData, key: str, genes: np.ndarray, cells: np.ndarray):
    """Values of ``genes`` in the matrix the model was fitted on (None if unavailable)."""
    source = str(v.key_info(adata, key).get("params", {}).get("source", "X"))
    if source == "raw" and adata.raw is not None:
        X, names = adata.raw.X, adata.raw.var_names
    elif source.startswith("layers/") and source[7:] in adata.layers:
        X, names = adata.layers[source[7:]], adata.var_names
    else:
        X, names = adata.X, adata.var_names
    if X is None:
        return None
    cols = names.get_indexer(genes)
    if (cols < 0).any():
        return None
    block = X[cells][:, cols]
    block = block.toarray() if sparse.issparse(block) else np.asarray(block)
    return block.astype(np.float32)


def _summaries(
    adata: AnnData, key: str, cells: np.ndarray, n_genes_used: int, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean L2 per gene (overall, per group), each cell's L2 total and top gene."""
    gsum = np.zeros(n_genes_used, dtype=np.float64)
    group_sum = np.zeros((n_groups, n_genes_used), dtype=np.float64)
    total = np.empty(len(cells), dtype=np.float32)
    top = np.empty(len(cells), dtype=np.int64)
    for start in range(0, len(cells), v.CHUNK_CELLS):
        part = cells[start : start + v.CHUNK_CELLS]
        rows = slice(start, start + len(part))
        l2, _ = v.contribution_view(adata, "l2", key, cells=part)
        gsum += l2.sum(axis=0, dtype=np.float64)
        onehot = sparse.csr_matrix(
            (np.ones(len(part)), (codes[rows], np.arange(len(part)))),
            shape=(n_groups, len(part)),
        )
        group_sum += onehot @ l2.astype(np.float64)
        total[rows] = l2.sum(axis=1)
        top[rows] = l2.argmax(axis=1)
    counts = np.bincount(codes, minlength=n_groups)[:, None]
    return gsum / max(len(cells), 1), group_sum / np.maximum(counts, 1), total, top


@doc_params
def explore(
    adata: AnnData,
    *,
    groupby: str | None = None,
    key: str = "glassbox_umap",
    n_genes: int = 30,
    n_genes_per_group: int = 3,
    genes: Sequence[str] | None = None,
    n_bars: int = 15,
    n_top: int = 10,
    max_cells: int | None = 100_000,
    random_state: int = 0,
    point_size: float | None = None,
    width: int = 480,
    height: int = 460,
    legend_width: int = 180,
    output_backend: Literal["webgl", "canvas"] = "webgl",
) -> LayoutDOM:
    """Interactive view: the embedding linked to a bar chart of contributions.

    **Colour by** (above the scatter): *Group* (``groupby``), *Feature* (a gene picked in
    the autocomplete box, coloured by its L2 contribution) or *Top feature* (each cell's
    largest L2 contributor; the ``n_top`` most frequent, the rest ``'other'``).
    **View** (above the bars): *L2*, *normed L2*, *Dim 1*, *Dim 2*, ... Lasso or box-select
    cells to restrict the bars (mean ± SEM) to them; with nothing selected they summarise all
    cells. Hovering a cell shows its group, top gene, and the picked gene's expression
    value and contribution.

    Needs the optional dependency bokeh (``pip install 'scglassbox[interactive]'``).
    Display it in a notebook with ``bokeh.io.output_notebook(); bokeh.io.show(layout)``, or
    write one standalone HTML file (no server, no network) with
    :func:`~scglassbox.pl.save_html`.

    Parameters
    ----------
    {adata}
    groupby
        Categorical ``obs`` column for *Group* colouring and the hover text.
    {key}
    n_genes
        The genes with the largest mean L2 contribution over all cells are sent to the
        browser; only sent genes can be picked and appear in the bars. The size of the page
        grows with ``n_cells * n_genes_sent``.
    n_genes_per_group
        Also send each ``groupby`` group's top genes (by mean L2), so that selecting a
        group shows its own drivers even when they are not among the global top genes.
        The ``n_top`` genes of *Top feature* are always sent.
    genes
        Genes sent in addition.
    n_bars
        Bars shown.
    n_top
        Genes with their own colour in *Top feature*.
    max_cells
        Show a random subset of this many cells when there are more (``None``: all).
    random_state
        Seed of that subset.
    point_size
        Marker size in screen pixels (default: from the number of cells).
    width, height
        Size of each of the two plots in pixels.
    legend_width
        Width of the legend column in pixels.
    output_backend
        How the scatter is drawn: ``'webgl'`` (fast with a GPU) or ``'canvas'`` (can be
        faster where WebGL is emulated in software, e.g. remote desktops without a GPU).

    Returns
    -------
    A Bokeh layout.
    """
    _bokeh()
    from bokeh.layouts import column, row
    from bokeh.models import (
        AutocompleteInput,
        BoxSelectTool,
        ColorBar,
        ColumnDataSource,
        CustomJS,
        CustomJSHover,
        Div,
        FactorRange,
        HoverTool,
        LassoSelectTool,
        LinearColorMapper,
        RadioButtonGroup,
    )
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure

    from ._bars import BAR_COLOR, NEG_COLOR, POS_COLOR

    emb = v.embedding(adata, key)
    names = v.gene_names(adata, key)
    contrib = v.contributions(adata, key)
    n_dims = contrib.shape[1]
    if n_genes < 1 or n_bars < 1:
        raise ValueError("n_genes and n_bars must be >= 1.")

    # Cells shown.
    cells = np.arange(adata.n_obs)
    if max_cells is not None and adata.n_obs > max_cells:
        rng = np.random.default_rng(random_state)
        cells = np.sort(rng.choice(adata.n_obs, size=max_cells, replace=False))
    n = len(cells)

    # Groups.
    if groupby is not None:
        cat = v.categorical(adata, groupby)
        groups = [str(g) for g in cat.categories]
        grp = np.asarray(cat.codes)[cells].astype(np.int32)
        group_colors = palette(adata, groupby, list(cat.categories))
        if (grp < 0).any():  # missing values
            groups.append("NA")
            group_colors.append(OTHER_COLOR)
            grp[grp < 0] = len(groups) - 1
    else:
        groups, grp, group_colors = ["all cells"], np.zeros(n, np.int32), [BAR_COLOR]

    # Genes sent: the most important overall, per group, the top features, those asked for.
    mean_l2, group_l2, total, top_idx = _summaries(adata, key, cells, len(names), grp, len(groups))
    counts = np.bincount(top_idx, minlength=len(names))
    keep = np.argsort(-counts, kind="stable")[:n_top]
    keep = keep[counts[keep] > 0]
    chosen = [np.argsort(-mean_l2, kind="stable")[:n_genes]]
    if groupby is not None and n_genes_per_group > 0:
        chosen += [np.argsort(-g, kind="stable")[:n_genes_per_group] for g in group_l2]
    chosen += [keep, v.gene_index(names, genes) if genes is not None else []]
    cols = np.array(list(dict.fromkeys(int(i) for c in chosen for i in c)), dtype=np.int64)
    sent = names[cols].tolist()
    K = len(cols)

    # Signed contributions of the sent genes, per dimension, as int16 + scale.
    cdata, scales = {}, []
    for d in range(n_dims):
        block = np.empty((n, K), dtype=np.float32)
        for start in range(0, n, v.CHUNK_CELLS):
            part = cells[start : start + v.CHUNK_CELLS]
            block[start : start + len(part)] = np.asarray(contrib[part, d])[:, cols]
        q, scale, _ = _quantize(block)
        cdata[f"d{d}"] = q.ravel()
        scales.append(scale)
    # Expression values for the hover text, as int16 + scale + offset per gene.
    values = _expression(adata, key, np.asarray(sent), cells)
    has_values = values is not None
    if not has_values:
        values = np.zeros((n, K), np.float32)
    vq, vscale, voffset = _quantize(values, centre=True)

    # Top features: the n_top most frequent, the rest 'other'.
    lut = np.full(len(names), len(keep), dtype=np.int32)
    lut[keep] = np.arange(len(keep), dtype=np.int32)
    top = lut[top_idx]
    tops = names[keep].tolist()
    top_colors = palette(None, None, tops)
    if (top == len(keep)).any():
        tops.append("other")
        top_colors.append(OTHER_COLOR)

    # Initial state: group colours, first gene picked, bars over all cells (L2).
    first = 0
    fcon = np.sqrt(
        sum((cdata[f"d{d}"][first::K] * scales[d][first]) ** 2 for d in range(n_dims))
    ).astype(np.float32)
    fval = (
        (vq[:, first] * vscale[first] + voffset[first]).astype(np.float32)
        if has_values
        else np.full(n, np.nan, np.float32)
    )
    src = ColumnDataSource(
        {
            "x": emb[cells, 0].astype(np.float32),
            "y": emb[cells, 1 if n_dims > 1 else 0].astype(np.float32),
            "cell": np.asarray(adata.obs_names[cells]).astype(str).tolist(),
            "grp": grp,
            "top": top.astype(np.int32),
            "total": total,
            "c": (grp + 0.5).astype(np.float32),
            "fval": fval,
            "fcon": fcon,
        }
    )
    src_c = ColumnDataSource(cdata)
    src_v = ColumnDataSource({"v": vq.ravel()})

    view_labels = ["L2 contribution", "normed L2 contribution"] + [
        f"contribution to dim {d + 1}" for d in range(n_dims)
    ]
    value_label = "value" if has_values else "value (n/a)"
    meta = {
        "K": K,
        "D": n_dims,
        "genes": sent,
        "scale": np.concatenate(scales).astype(float).tolist(),
        "has_values": has_values,
        "vscale": vscale.astype(float).tolist(),
        "voffset": voffset.astype(float).tolist(),
        "n_bars": int(min(n_bars, K)),
        "groups": groups,
        "group_colors": group_colors,
        "tops": tops,
        "top_colors": top_colors,
        "gradient": list(Viridis256),
        "groupby": groupby or "group",
        "view_labels": view_labels,
        "value_label": value_label,
        "bar_color": BAR_COLOR,
        "pos_color": POS_COLOR,
        "neg_color": NEG_COLOR,
        "current": [first],
    }

    # Scatter.
    size = point_size or float(np.clip(300 / np.sqrt(max(n, 1)), 2, 7))
    mapper = LinearColorMapper(palette=group_colors, low=0, high=len(group_colors))
    scatter = figure(
        width=width,
        height=height,
        tools="pan,wheel_zoom,reset,save",
        output_backend=output_backend,
        title=f"{key}"
        + (f" ({n:,} of {adata.n_obs:,} cells)" if n < adata.n_obs else f" ({n:,} cells)"),
        match_aspect=True,
        name="embedding",
    )
    lasso_kw = {"continuous": False} if "continuous" in LassoSelectTool.properties() else {}
    scatter.add_tools(BoxSelectTool(), LassoSelectTool(**lasso_kw))
    scatter.scatter(
        "x",
        "y",
        source=src,
        size=size,
        fill_color={"field": "c", "transform": mapper},
        line_color=None,
        fill_alpha=0.8,
        nonselection_fill_alpha=0.08,
        nonselection_fill_color="#bbbbbb",
        selection_fill_alpha=0.9,
    )
    scatter.xaxis.axis_label = f"{key}1"
    scatter.yaxis.axis_label = f"{key}2"
    scatter.grid.visible = False
    # The colour bar lives in a plot of its own below the legend, so that showing it neither
    # resizes nor redraws the scatter.
    cbar = ColorBar(
        color_mapper=mapper, width=12, height=int(height * 0.6), visible=False, name="colorbar"
    )
    cbar_fig = figure(
        width=legend_width,
        height=int(height * 0.75),
        toolbar_location=None,
        outline_line_color=None,
        min_border=0,
        name="colorbar_plot",
    )
    cbar_fig.scatter([], [])  # a renderer, so that bokeh does not warn about an empty plot
    cbar_fig.axis.visible = False
    cbar_fig.grid.visible = False
    cbar_fig.add_layout(cbar, "left")
    code_fmt = "return names[value] === undefined ? '' : names[value];"
    base_tooltips = [
        ("cell", "@cell"),
        (groupby or "group", "@grp{custom}"),
        ("top feature", "@top{custom}"),
    ]
    hover = HoverTool(
        tooltips=[
            *base_tooltips,
            (f"{sent[first]} {value_label}", "@fval{0.00}"),
            (f"{sent[first]} L2 contribution", "@fcon{0.0000}"),
        ],
        formatters={
            "@grp": CustomJSHover(code=code_fmt, args={"names": groups}),
            "@top": CustomJSHover(code=code_fmt, args={"names": tops}),
        },
    )
    scatter.add_tools(hover)
    meta["base_tooltips"] = [list(t) for t in base_tooltips]

    # Bars (initial: L2 over all shown cells, as the JS computes it).
    bars = ColumnDataSource({"gene": [], "mean": [], "lo": [], "hi": [], "color": []})
    yrange = FactorRange(factors=[])
    bar_fig = figure(
        width=width,
        height=height,
        y_range=yrange,
        tools="save",
        toolbar_location=None,
        title="",
        name="bars",
    )
    bar_fig.hbar(y="gene", left=0, right="mean", height=0.7, fill_color="color", line_color=None,
                 source=bars)  # fmt: skip
    bar_fig.segment(x0="lo", x1="hi", y0="gene", y1="gene", line_color="#333333", source=bars)
    bar_fig.xaxis.axis_label = "mean contribution"
    bar_fig.ygrid.visible = False
    _initial_bars(bars, yrange, bar_fig, cdata, scales, total, meta)

    # Widgets.
    color_rb = RadioButtonGroup(labels=["Group", "Feature", "Top feature"], active=0,
                                name="color_by")  # fmt: skip
    auto = AutocompleteInput(
        completions=sent,
        value=sent[first],
        title="Feature",
        case_sensitive=False,
        min_characters=1,
        restrict=True,
        name="feature",
        width=220,
    )
    view_rb = RadioButtonGroup(
        labels=["L2", "normed L2"] + [f"Dim {d + 1}" for d in range(n_dims)],
        active=0,
        name="view",
    )
    legend = Div(
        text="",
        name="legend",
        width=legend_width,
        styles={"font-size": "11px", "max-height": f"{height}px", "overflow-y": "auto"},
    )
    args = {"src": src, "cdata": src_c, "vals": src_v, "meta": meta}
    bars_cb = CustomJS(
        args={**args, "bars": bars, "yrange": yrange, "bar_fig": bar_fig, "view_rb": view_rb},
        code=_JS_BARS,
    )
    color_cb = CustomJS(
        args={**args, "color_rb": color_rb, "auto": auto, "mapper": mapper, "cbar": cbar,
              "legend": legend, "hover": hover},
        code=_JS_COLOR,
    )  # fmt: skip
    src.selected.js_on_change("indices", bars_cb)
    view_rb.js_on_change("active", bars_cb)
    color_rb.js_on_change("active", color_cb)
    auto.js_on_change("value", color_cb)
    legend.text = _legend_html(meta["groupby"], groups, group_colors)

    left = column(row(Div(text="<b>Colour by</b>"), color_rb), auto, scatter)
    middle = column(Div(text="", height=95), legend, cbar_fig)
    right = column(row(Div(text="<b>View</b>"), view_rb), Div(text="", height=45), bar_fig)
    return row(left, middle, right, name="scglassbox_explorer")


def _legend_html(title: str, names: Sequence[str], colors: Sequence[str]) -> str:
    items = "".join(
        f'<div style="white-space:nowrap"><span style="display:inline-block;width:10px;'
        f'height:10px;border-radius:5px;margin-right:5px;background:{c}"></span>{nm}</div>'
        for nm, c in zip(names, colors, strict=True)
    )
    return f"<b>{title}</b>{items}"


def _initial_bars(bars, yrange, bar_fig, cdata, scales, total, meta) -> None:
    """Fill the bar chart for all cells and the L2 view (same numbers as the JS)."""
    K, D = meta["K"], meta["D"]
    sq = sum(
        (cdata[f"d{d}"].reshape(-1, K).astype(np.float64) * scales[d][None, :]) ** 2
        for d in range(D)
    )
    l2 = np.sqrt(sq)
    n = l2.shape[0]
    mean = l2.mean(axis=0)
    sem = l2.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(K)
    top = np.argsort(-mean, kind="stable")[: meta["n_bars"]][::-1]
    genes = [meta["genes"][k] for k in top]
    bars.data = {
        "gene": genes,
        "mean": mean[top].tolist(),
        "lo": (mean[top] - sem[top]).tolist(),
        "hi": (mean[top] + sem[top]).tolist(),
        "color": [meta["bar_color"]] * len(top),
    }
    yrange.factors = genes
    bar_fig.title.text = f"Mean {meta['view_labels'][0]} (\u00b1 SEM): all {n:,} cells"


def save_html(
    layout: LayoutDOM, path: str | os.PathLike, *, title: str = "scglassbox explorer"
) -> Path:
    """Write a layout from :func:`explore` to one standalone HTML file.

    BokehJS is inlined, so the file opens offline and can be shared as it is.

    Parameters
    ----------
    layout
        What :func:`explore` returned.
    path
        Output file (``.html``).
    title
        Title of the page.

    Returns
    -------
    The path written.
    """
    _bokeh()
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    path = Path(path)
    path.write_text(file_html(layout, INLINE, title=title), encoding="utf-8")
    return path
