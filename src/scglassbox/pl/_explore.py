"""Interactive explorer: the embedding linked to a bar chart of contributions (Bokeh layout).

The data are prepared in :mod:`._explore_data`; this module builds the Bokeh widgets and
wires them to the browser-side callbacks in ``js/*.js``, which summarise selections without a
Python kernel (a notebook output or one standalone HTML file).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from anndata import AnnData

from .. import _keys
from .._docs import doc_params
from . import _explore_data as data
from ._bars import BAR_COLOR, NEG_COLOR, POS_COLOR

if TYPE_CHECKING:
    from bokeh.models import LayoutDOM

_INSTALL = "pip install 'scglassbox[interactive]'"


def _bokeh():
    try:
        import bokeh  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without bokeh
        raise ImportError(
            f"gb.pl.explore needs bokeh >= 3.4, an optional dependency: {_INSTALL}"
        ) from e


@cache
def _js(name: str) -> str:
    """The browser code ``js/<name>.js`` shipped with the package."""
    return resources.files("scglassbox.pl").joinpath("js", f"{name}.js").read_text("utf-8")


def _in_notebook() -> bool:
    """Whether we run in a Jupyter kernel (where a layout can be displayed inline)."""
    import sys

    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _show(layout: LayoutDOM) -> None:
    """Display ``layout`` inline in a notebook (or in a browser tab from a script)."""
    from bokeh.io import output_notebook, show
    from bokeh.io.state import curstate

    if _in_notebook() and not curstate().notebook:
        output_notebook(hide_banner=True)
    show(layout)


@doc_params
def explore(
    adata: AnnData | None = None,
    *,
    groupby: str | None = None,
    key: str = _keys.DEFAULT_KEY,
    embedding: np.ndarray | None = None,
    contributions: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    labels: Sequence | None = None,
    feature_values: np.ndarray | None = None,
    n_genes: int | None = None,
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
    show: bool | None = None,
) -> LayoutDOM | None:
    """Interactive view: the embedding linked to a bar chart of contributions.

    **Colour by** (above the scatter): *Group* (``groupby`` or ``labels``), *Feature* (a gene
    picked in the autocomplete box, coloured by its L2 contribution) or *Top feature* (each
    cell's largest L2 contributor; the ``n_top`` most frequent, the rest ``'other'``).
    **View** (above the bars): *L2*, *normed L2*, *Dim 1*, *Dim 2*, ... Lasso or box-select
    cells to restrict the bars (mean ± SEM) to them; with nothing selected they summarise all
    cells. Hovering a cell shows its group, top gene, and the picked gene's expression
    value and contribution.

    Works on the results of :func:`~scglassbox.tl.glassbox_umap` (``adata``), or without
    AnnData on plain arrays, e.g. from :class:`~scglassbox.GlassBoxUMAP`
    (``embedding=``, ``contributions=``, ``feature_names=``, ``labels=``,
    ``feature_values=``). Needs the optional dependency bokeh
    (``pip install 'scglassbox[interactive]'``). Like scanpy's plots it displays itself in a
    notebook; :func:`~scglassbox.pl.save_html` writes one standalone HTML file (no server, no
    network) from the layout returned with ``show=False``. Names (groups, genes, columns)
    are shown as text, never interpreted as HTML.

    Parameters
    ----------
    adata
        Annotated data matrix with the results of :func:`~scglassbox.tl.glassbox_umap`, or
        ``None`` to pass arrays instead.
    groupby
        Categorical ``obs`` column for *Group* colouring and the hover text.
    {key}
    embedding
        Without ``adata``: ``(n_cells, n_dims)`` embedding.
    contributions
        Without ``adata``: ``(n_cells, n_dims, n_features)`` contributions, as returned by
        :meth:`~scglassbox.GlassBoxUMAP.compute_contributions`.
    feature_names
        Without ``adata``: names of the features (default ``'feature 0'``, ...).
    labels
        Without ``adata``: a group label per cell (any values; a pandas categorical keeps its
        category order, a named Series gives the legend its title).
    feature_values
        Without ``adata``: ``(n_cells, n_features)`` values shown in the hover text.
    n_genes
        How many genes, by largest mean L2 contribution over all cells, are sent to the
        browser; only sent genes can be picked and appear in the bars, and the page grows
        with ``n_cells * n_genes_sent``. ``None``: every modelled gene while that stays small
        (cells x genes x (dims + 1) up to 12 million values, e.g. 10,000 cells x 400 genes in
        2-D), else 30. A name typed that was not sent is answered on the page.
    n_genes_per_group
        Also send each group's top genes (by mean L2), so that selecting a group shows its
        own drivers even when they are not among the global top genes. The ``n_top`` genes of
        *Top feature* are always sent.
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
    show
        Display the layout. ``None`` (default): display it inline when running in a Jupyter
        notebook (unless scanpy's ``settings.autoshow`` is off), else return it. ``True``:
        display it (in a script, bokeh opens a browser tab). ``False``: return it.

    Returns
    -------
    The Bokeh layout, unless it was displayed (then ``None``, as scanpy's plots).

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.pl.explore(adata, groupby="bulk_labels")  # doctest: +SKIP

    .. image:: /_static/plots/explore.png

    Without a notebook, keep the layout and write it to a standalone page:

    >>> layout = gb.pl.explore(adata, groupby="bulk_labels", show=False)  # doctest: +SKIP
    >>> gb.pl.save_html(layout, "explorer.html")  # doctest: +SKIP
    """
    _bokeh()
    if n_bars < 1:
        raise ValueError(f"n_bars must be >= 1, got {n_bars}.")
    options = {
        "n_genes": n_genes,
        "n_genes_per_group": n_genes_per_group,
        "genes": genes,
        "n_top": n_top,
        "max_cells": max_cells,
        "random_state": random_state,
    }
    arrays = {"embedding": embedding, "contributions": contributions,
              "feature_names": feature_names, "labels": labels,
              "feature_values": feature_values}  # fmt: skip
    if adata is not None:
        given = [k for k, val in arrays.items() if val is not None]
        if given:
            raise TypeError(f"pass either adata or arrays, not both (got adata and {given}).")
        d = data.from_adata(adata, key=key, groupby=groupby, **options)
        title = key
    else:
        if groupby is not None:
            raise TypeError("groupby needs adata; without it, pass labels=.")
        d = data.from_arrays(**arrays, **options)
        title = "embedding"
    layout = _layout(
        d,
        title=title,
        n_bars=n_bars,
        point_size=point_size,
        width=width,
        height=height,
        legend_width=legend_width,
        output_backend=output_backend,
    )
    if show is None:
        import scanpy as sc

        show = _in_notebook() and sc.settings.autoshow
    if show:
        _show(layout)
        return None
    return layout


def _layout(
    d: data.ExplorerData,
    *,
    title: str,
    n_bars: int,
    point_size: float | None,
    width: int,
    height: int,
    legend_width: int,
    output_backend: str,
) -> LayoutDOM:
    """The Bokeh widgets for prepared data ``d``: the embedding, its legend, the bar chart.

    Everything the browser computes runs in the JavaScript of ``js/`` over the columns and
    ``meta`` built here; the widgets are built in the order the page lays them out.
    """
    from bokeh.layouts import column, row
    from bokeh.models import AutocompleteInput, CustomJS, Div, RadioButtonGroup

    first = 0  # initial state: group colours, first gene picked, bars over all cells (L2)
    src, src_c, src_v = _sources(d, first)
    meta = _meta(d, n_bars, first)
    scatter, mapper = _scatter(d, src, title, point_size, width, height, output_backend)
    cbar, cbar_fig = _colorbar(mapper, legend_width, height)
    hover = _hover(d, meta, first)
    scatter.add_tools(hover)
    bar_fig, bars, yrange = _bar_chart(d, meta, width, height)

    # Widgets.
    color_rb = RadioButtonGroup(labels=["Group", "Feature", "Top feature"], active=0,
                                name="color_by")  # fmt: skip
    auto = AutocompleteInput(
        completions=d.genes,
        value=d.genes[first],
        title="Feature",
        case_sensitive=False,
        min_characters=1,
        restrict=False,  # an unknown name is answered in ``status``, not silently refused
        name="feature",
        width=220,
    )
    view_rb = RadioButtonGroup(
        labels=["L2", "normed L2"] + [f"Dim {k + 1}" for k in range(d.D)],
        active=0,
        name="view",
    )
    status = Div(text="", name="feature_status", styles={"color": "#b2182b", "font-size": "12px"})
    legend = Div(
        text=meta["group_legend"],
        name="legend",
        width=legend_width,
        styles={"font-size": "11px", "max-height": f"{height}px", "overflow-y": "auto"},
    )
    args = {"src": src, "cdata": src_c, "vals": src_v, "meta": meta}
    bars_cb = CustomJS(
        args={**args, "bars": bars, "yrange": yrange, "bar_fig": bar_fig, "view_rb": view_rb},
        code=_js("common") + _js("bars"),
    )
    color_cb = CustomJS(
        args={**args, "color_rb": color_rb, "auto": auto, "mapper": mapper, "cbar": cbar,
              "legend": legend, "hover": hover, "status": status},
        code=_js("common") + _js("color"),
    )  # fmt: skip
    src.selected.js_on_change("indices", bars_cb)
    view_rb.js_on_change("active", bars_cb)
    color_rb.js_on_change("active", color_cb)
    auto.js_on_change("value", color_cb)

    left = column(row(Div(text="<b>Colour by</b>"), color_rb), auto, status, scatter)
    middle = column(Div(text="", height=95), legend, cbar_fig)
    right = column(row(Div(text="<b>View</b>"), view_rb), Div(text="", height=45), bar_fig)
    return row(left, middle, right, name="scglassbox_explorer")


def _sources(d: data.ExplorerData, first: int) -> tuple:
    """The per-cell columns, the contribution columns and the quantised feature values."""
    from bokeh.models import ColumnDataSource

    fval = (
        (d.vq[:, first] * d.vscale[first] + d.voffset[first]).astype(np.float32)
        if d.has_values
        else np.full(d.n, np.nan, np.float32)
    )
    src = ColumnDataSource(
        {
            "x": d.x,
            "y": d.y,
            "cell": d.cell_names,
            "grp": d.grp,
            "top": d.top,
            "total": d.total,
            "c": (d.grp + 0.5).astype(np.float32),
            "fval": fval,
            "fcon": d.l2()[:, first].astype(np.float32),
        }
    )
    return src, ColumnDataSource(d.cdata), ColumnDataSource({"v": d.vq.ravel()})


def _meta(d: data.ExplorerData, n_bars: int, first: int) -> dict:
    """What the JavaScript reads besides the columns: sizes, scales, colours, labels."""
    from bokeh.palettes import Viridis256

    return {
        "K": d.K,
        "D": d.D,
        "genes": d.genes,
        "scale": np.concatenate(d.scales).astype(float).tolist(),
        "has_values": d.has_values,
        "vscale": d.vscale.astype(float).tolist(),
        "voffset": d.voffset.astype(float).tolist(),
        "n_bars": int(min(n_bars, d.K)),
        "group_colors": d.group_colors,
        "top_colors": d.top_colors,
        # The legends, built and escaped once here; the JS only switches between them.
        "group_legend": data.legend_html(d.group_label, d.groups, d.group_colors),
        "top_legend": data.legend_html("top feature", d.tops, d.top_colors),
        "gradient": list(Viridis256),
        "view_labels": ["L2 contribution", "normed L2 contribution"]
        + [f"contribution to dim {k + 1}" for k in range(d.D)],
        "value_label": "value" if d.has_values else "value (n/a)",
        "bar_color": BAR_COLOR,
        "pos_color": POS_COLOR,
        "neg_color": NEG_COLOR,
        "current": [first],
        "all_genes": d.all_genes,
        "base_tooltips": [
            ["cell", "@cell"],
            [d.group_label, "@grp{custom}"],
            ["top feature", "@top{custom}"],
        ],
    }


def _scatter(
    d: data.ExplorerData,
    src: object,
    title: str,
    point_size: float | None,
    width: int,
    height: int,
    output_backend: str,
) -> tuple:
    """The embedding, coloured through a mapper the JavaScript switches; and that mapper."""
    from bokeh.models import BoxSelectTool, LassoSelectTool, LinearColorMapper
    from bokeh.plotting import figure

    n = d.n
    size = point_size or float(np.clip(300 / np.sqrt(max(n, 1)), 2, 7))
    mapper = LinearColorMapper(palette=d.group_colors, low=0, high=len(d.group_colors))
    shown = f"{n:,} of {d.n_total:,} cells" if n < d.n_total else f"{n:,} cells"
    scatter = figure(
        width=width,
        height=height,
        tools="pan,wheel_zoom,reset,save",
        output_backend=output_backend,
        title=f"{title} ({shown})",  # canvas text: no HTML
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
    scatter.xaxis.axis_label = f"{title}1"
    scatter.yaxis.axis_label = f"{title}2"
    scatter.grid.visible = False
    return scatter, mapper


def _colorbar(mapper: object, legend_width: int, height: int) -> tuple:
    """The colour bar, in a plot of its own below the legend.

    So that showing it neither resizes nor redraws the scatter.
    """
    from bokeh.models import ColorBar
    from bokeh.plotting import figure

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
    return cbar, cbar_fig


def _hover(d: data.ExplorerData, meta: dict, first: int) -> object:
    """Tooltips: cell, group, top feature, and the picked feature's value and contribution."""
    from bokeh.models import CustomJSHover, HoverTool

    label = meta["value_label"]
    return HoverTool(
        tooltips=[
            *(tuple(t) for t in meta["base_tooltips"]),
            (f"{d.genes[first]} {label}", "@fval{0.00}"),
            (f"{d.genes[first]} L2 contribution", "@fcon{0.0000}"),
        ],
        formatters={
            "@grp": CustomJSHover(code=_js("hover_name"), args={"names": d.groups}),
            "@top": CustomJSHover(code=_js("hover_name"), args={"names": d.tops}),
        },
    )


def _bar_chart(d: data.ExplorerData, meta: dict, width: int, height: int) -> tuple:
    """The bar chart, first drawn as the JavaScript would: L2 over all shown cells."""
    from bokeh.models import ColumnDataSource, FactorRange
    from bokeh.plotting import figure

    genes0, mean0, sem0 = d.initial_bars(meta["n_bars"])
    bars = ColumnDataSource(
        {
            "gene": genes0,
            "mean": mean0.tolist(),
            "lo": (mean0 - sem0).tolist(),
            "hi": (mean0 + sem0).tolist(),
            "color": [BAR_COLOR] * len(genes0),
        }
    )
    yrange = FactorRange(factors=genes0)
    bar_fig = figure(
        width=width,
        height=height,
        y_range=yrange,
        tools="save",
        toolbar_location=None,
        title=f"Mean {meta['view_labels'][0]} (\u00b1 SEM): all {d.n:,} cells",
        name="bars",
    )
    bar_fig.hbar(y="gene", left=0, right="mean", height=0.7, fill_color="color", line_color=None,
                 source=bars)  # fmt: skip
    bar_fig.segment(x0="lo", x1="hi", y0="gene", y1="gene", line_color="#333333", source=bars)
    bar_fig.xaxis.axis_label = "mean contribution"
    bar_fig.ygrid.visible = False
    return bar_fig, bars, yrange


def save_html(
    layout: LayoutDOM, path: str | os.PathLike, *, title: str = "scglassbox explorer"
) -> Path:
    """Write a layout from :func:`explore` to one standalone HTML file.

    BokehJS is inlined, so the file opens offline and can be shared as it is.

    Parameters
    ----------
    layout
        What :func:`explore` returned (with ``show=False``).
    path
        Output file (``.html``).
    title
        Title of the page.

    Returns
    -------
    The path written.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> layout = gb.pl.explore(adata, groupby="bulk_labels", show=False)
    >>> gb.pl.save_html(layout, "explorer.html")  # doctest: +SKIP
    PosixPath('explorer.html')
    """
    _bokeh()
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    if layout is None:
        raise TypeError("layout is None: call gb.pl.explore(..., show=False) to get the layout.")
    path = Path(path)
    path.write_text(file_html(layout, INLINE, title=title), encoding="utf-8")
    return path
