"""Data preparation for the explorer (:func:`scglassbox.pl.explore`); no Bokeh here.

Everything the browser needs is computed once and sent as typed arrays. Every modelled gene
is sent while the page stays small (:data:`ALL_GENES_VALUES`); beyond that, to stay responsive
with 100,000 cells, only the most important genes (overall and per group, plus any requested)
are sent. Their signed contributions travel as int16 with a float32 scale per gene and
dimension (precise to 1.5e-5 of the gene's largest absolute contribution); so do expression
values for the hover text (with an offset: precise to 1.5e-5 of the gene's range).

Contributions are read chunk by chunk of cells, in one pass of
:func:`~scglassbox.get.iter_contributions` for an AnnData (one model when recomputed), or
from a plain array for the AnnData-free explorer, so memory never holds
``n_cells x n_genes x n_dims`` float32 values at once (the sent genes' signed values aside).
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._chunks import ACCESS_CELLS
from .._validation import check_int
from .._views import l2_view
from ..get._contributions import iter_contributions
from . import _read as v
from ._bars import BAR_COLOR
from ._utils import OTHER_COLOR, palette

_INT16_MAX = 32767
#: With ``n_genes=None``, every feature is sent when cells x features x (dims + 1) int16
#: values stay within this (about 24 MB of page); else the :data:`DEFAULT_N_GENES` top ones.
ALL_GENES_VALUES = 12_000_000
DEFAULT_N_GENES = 30


class ContributionSource(Protocol):
    """Per-cell contributions, read one chunk of cells at a time."""

    names: np.ndarray
    n_obs: int
    n_dims: int

    def blocks(
        self, cells: np.ndarray, genes: np.ndarray | None = None
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """``(rows, block)`` chunks in the order of ``cells``.

        ``rows`` is a slice of ``cells``, ``block`` their ``(b, n_dims, n_genes)``
        contributions (``genes``: positions).
        """
        ...


class AnnDataSource:
    """Contributions of the fit stored under ``key``, through ``contribution_view``."""

    def __init__(self, adata: AnnData, key: str) -> None:
        self.adata, self.key = adata, key
        self.names = v.gene_names(adata, key)
        self.n_obs = adata.n_obs
        self.n_dims = v.n_components(adata, key)

    def blocks(
        self, cells: np.ndarray, genes: np.ndarray | None = None
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """See :class:`ContributionSource`: one pass of ``iter_contributions``, one model."""
        names = None if genes is None else self.names[genes].tolist()
        start = 0
        for pos, block in iter_contributions(self.adata, self.key, obs=cells, genes=names):
            yield slice(start, start + len(pos)), block
            start += len(pos)


class ArraySource:
    """Contributions given as an ``(n_cells, n_dims, n_features)`` array."""

    def __init__(self, contributions: object, names: np.ndarray) -> None:
        c = contributions
        if hasattr(c, "detach"):  # a torch tensor, as the reference package accepts
            c = c.detach().cpu().numpy()
        c = np.asarray(c)
        if c.ndim != 3:
            raise ValueError(
                f"contributions must have shape (n_cells, n_dims, n_features), got {c.shape}."
            )
        if len(names) != c.shape[2]:
            raise ValueError(
                f"feature_names has {len(names)} names, contributions {c.shape[2]} features."
            )
        self.c, self.names = c, names
        self.n_obs, self.n_dims = c.shape[0], c.shape[1]

    def blocks(
        self, cells: np.ndarray, genes: np.ndarray | None = None
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """See :class:`ContributionSource`."""
        for start in range(0, len(cells), ACCESS_CELLS):
            rows = slice(start, min(start + ACCESS_CELLS, len(cells)))
            block = self.c[cells[rows]]
            block = block if genes is None else block[:, :, genes]
            yield rows, block.astype(np.float32, copy=False)


def quantize(x: np.ndarray, *, centre: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def top_feature_codes(top_idx: np.ndarray, n_features: int, n_top: int) -> tuple[np.ndarray, ...]:
    """Keep the ``n_top`` features most often a cell's top one; the others become 'other'.

    Returns ``(keep, codes)``: the kept feature positions (most frequent first, only those
    that are some cell's top feature) and each cell's code, ``len(keep)`` meaning 'other'.
    """
    counts = np.bincount(top_idx, minlength=n_features)
    keep = np.argsort(-counts, kind="stable")[:n_top]
    keep = keep[counts[keep] > 0]
    lut = np.full(n_features, len(keep), dtype=np.int32)
    lut[keep] = np.arange(len(keep), dtype=np.int32)
    return keep, lut[top_idx]


def legend_html(title: str, names: Sequence[str], colors: Sequence[str]) -> str:
    """The legend of a categorical colouring; every name is HTML-escaped."""
    items = "".join(
        '<div style="white-space:nowrap"><span style="display:inline-block;width:10px;'
        f'height:10px;border-radius:5px;margin-right:5px;background:{html.escape(c)}"></span>'
        f"{html.escape(str(nm))}</div>"
        for nm, c in zip(names, colors, strict=True)
    )
    return f"<b>{html.escape(str(title))}</b>{items}"


@dataclass
class ExplorerData:
    """Everything the explorer page shows, as plain arrays and lists."""

    x: np.ndarray  #: (n,) float32 first embedding coordinate of each shown cell
    y: np.ndarray  #: (n,) float32 second coordinate (the first again for 1-D embeddings)
    cell_names: list[str]
    n_total: int  #: cells in the data, before any subsampling
    group_label: str  #: what the groups are (``groupby``, a Series name, or 'group')
    groups: list[str]
    group_colors: list[str]
    grp: np.ndarray  #: (n,) int32 group code of each cell
    genes: list[str]  #: sent genes
    cdata: dict[str, np.ndarray]  #: 'd0', 'd1', ...: (n * K,) int16 signed contributions
    scales: list[np.ndarray]  #: per dimension, (K,) float32
    has_values: bool
    vq: np.ndarray  #: (n, K) int16 expression values of the sent genes
    vscale: np.ndarray
    voffset: np.ndarray
    tops: list[str]  #: names of the top-feature categories ('other' last, if any)
    top_colors: list[str]
    top: np.ndarray  #: (n,) int32 top-feature code
    total: np.ndarray  #: (n,) float32 sum over all genes of each cell's L2 contributions
    all_genes: list[str] = field(default_factory=list)  #: every modelled feature, sent or not
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Cells shown."""
        return len(self.x)

    @property
    def K(self) -> int:
        """Genes sent."""
        return len(self.genes)

    @property
    def D(self) -> int:
        """Embedding dimensions."""
        return len(self.scales)

    def l2(self) -> np.ndarray:
        """(n, K) L2 contributions of the sent genes, from the quantised data (as the JS)."""
        K = self.K
        sq = sum(
            (self.cdata[f"d{d}"].reshape(-1, K).astype(np.float64) * self.scales[d][None, :]) ** 2
            for d in range(self.D)
        )
        return np.sqrt(sq)

    def initial_bars(self, n_bars: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Largest mean L2 over all shown cells: ``(genes, mean, sem)``, smallest first."""
        l2 = self.l2()
        n = l2.shape[0]
        mean = l2.mean(axis=0)
        sem = l2.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(self.K)
        top = np.argsort(-mean, kind="stable")[:n_bars][::-1]
        return [self.genes[k] for k in top], mean[top], sem[top]


def _summaries(
    source: ContributionSource, cells: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean L2 per gene (overall, per group), each cell's L2 total and top gene; chunked."""
    n_genes = len(source.names)
    gsum = np.zeros(n_genes, dtype=np.float64)
    group_sum = np.zeros((n_groups, n_genes), dtype=np.float64)
    total = np.empty(len(cells), dtype=np.float32)
    top = np.empty(len(cells), dtype=np.int64)
    for rows, block in source.blocks(cells):
        l2 = l2_view(block, normed=False).astype(np.float32, copy=False)
        gsum += l2.sum(axis=0, dtype=np.float64)
        onehot = sparse.csr_matrix(
            (np.ones(len(l2)), (codes[rows], np.arange(len(l2)))),
            shape=(n_groups, len(l2)),
        )
        group_sum += onehot @ l2.astype(np.float64)
        total[rows] = l2.sum(axis=1)
        top[rows] = l2.argmax(axis=1)
    counts = np.bincount(codes, minlength=n_groups)[:, None]
    return gsum / max(len(cells), 1), group_sum / np.maximum(counts, 1), total, top


def _signed(source: ContributionSource, cells: np.ndarray, cols: np.ndarray) -> tuple:
    """Signed contributions of the sent genes per dimension, as int16 + scale."""
    signed = np.empty((source.n_dims, len(cells), len(cols)), dtype=np.float32)
    for rows, block in source.blocks(cells, cols):  # one pass for every dimension
        signed[:, rows] = np.moveaxis(block, 1, 0)
    cdata, scales = {}, []
    for d in range(source.n_dims):
        q, scale, _ = quantize(signed[d])
        cdata[f"d{d}"] = q.ravel()
        scales.append(scale)
    return cdata, scales


def _groups(
    labels: pd.Categorical | None, cells: np.ndarray, colors: list[str] | None
) -> tuple[list[str], list[str], np.ndarray]:
    """Group names, colours and each shown cell's code (missing values: an 'NA' group)."""
    if labels is None:
        return ["all cells"], [BAR_COLOR], np.zeros(len(cells), np.int32)
    groups = [str(g) for g in labels.categories]
    colors = list(colors) if colors is not None else palette(None, None, groups)
    grp = np.asarray(labels.codes)[cells].astype(np.int32)
    if (grp < 0).any():
        groups.append("NA")
        colors.append(OTHER_COLOR)
        grp[grp < 0] = len(groups) - 1
    return groups, colors, grp


def explorer_data(
    source: ContributionSource,
    emb: np.ndarray,
    *,
    cell_names: Sequence[str],
    labels: pd.Categorical | None,
    group_label: str | None,
    group_colors: list[str] | None,
    values: object,
    n_genes: int | None,
    n_genes_per_group: int,
    genes: Sequence[str] | None,
    n_top: int,
    max_cells: int | None,
    random_state: int,
) -> ExplorerData:
    """Choose the cells and genes shown and compute everything the page sends.

    ``values(genes, cells)`` returns the ``(len(cells), len(genes))`` expression values of
    the sent genes for the hover text, or ``None`` when they are not available.
    """
    check_int(n_genes, "n_genes", min=1, optional=True)
    if n_top < 1:
        raise ValueError(f"n_top must be >= 1, got {n_top}.")
    names = source.names
    n_obs = source.n_obs
    if emb.ndim != 2 or emb.shape[0] != n_obs:
        raise ValueError(f"the embedding must have shape ({n_obs}, n_dims), got {emb.shape}.")
    cells = np.arange(n_obs)
    if max_cells is not None and n_obs > max_cells:
        rng = np.random.default_rng(random_state)
        cells = np.sort(rng.choice(n_obs, size=max_cells, replace=False))
    groups, colors, grp = _groups(labels, cells, group_colors)

    # Genes sent: the most important overall, per group, the top features, those asked for.
    mean_l2, group_l2, total, top_idx = _summaries(source, cells, grp, len(groups))
    keep, top = top_feature_codes(top_idx, len(names), n_top)
    if n_genes is None:  # every feature while the page stays small, else the top ones
        fits = len(cells) * len(names) * (emb.shape[1] + 1) <= ALL_GENES_VALUES
        n_genes = len(names) if fits else DEFAULT_N_GENES
    chosen = [np.argsort(-mean_l2, kind="stable")[:n_genes]]
    if labels is not None and n_genes_per_group > 0:
        chosen += [np.argsort(-g, kind="stable")[:n_genes_per_group] for g in group_l2]
    chosen += [keep, v.gene_index(names, genes) if genes is not None else []]
    cols = np.array(list(dict.fromkeys(int(i) for c in chosen for i in c)), dtype=np.int64)
    sent = names[cols].tolist()

    cdata, scales = _signed(source, cells, cols)
    vals = values(cols, cells)
    has_values = vals is not None
    if not has_values:
        vals = np.zeros((len(cells), len(cols)), np.float32)
    vq, vscale, voffset = quantize(vals, centre=True)

    tops = names[keep].tolist()
    top_colors = palette(None, None, tops)
    if (top == len(keep)).any():
        tops.append("other")
        top_colors.append(OTHER_COLOR)
    return ExplorerData(
        x=emb[cells, 0].astype(np.float32),
        y=emb[cells, 1 if emb.shape[1] > 1 else 0].astype(np.float32),
        cell_names=[str(c) for c in np.asarray(cell_names)[cells]],
        n_total=n_obs,
        group_label=group_label or "group",
        groups=groups,
        group_colors=colors,
        grp=grp,
        genes=sent,
        cdata=cdata,
        scales=scales,
        has_values=has_values,
        vq=vq,
        vscale=vscale,
        voffset=voffset,
        tops=tops,
        top_colors=top_colors,
        top=top.astype(np.int32),
        total=total,
        all_genes=[str(g) for g in names],
    )


def _expression(adata: AnnData, key: str, genes: np.ndarray, cells: np.ndarray):
    """Values of ``genes`` in the matrix the model was fitted on (None if unavailable)."""
    from ..get import _access
    from ..get._batch import batch_codes, batch_info

    try:
        X, names = _access.source_matrix(adata, _access.source(adata, key))
    except ValueError:  # the hover text then says "value (n/a)"
        return None
    cols = names.get_indexer(genes)
    out = np.empty((len(cells), len(cols)), dtype=np.float32)
    batch = batch_info(adata, key)
    if (cols < 0).any():  # batch_key's features: 1 for the cell's own batch, else 0
        if batch is None or not np.isin(genes[cols < 0], batch.names).all():
            return None
        codes = batch_codes(adata, batch.key, batch.levels)[cells]
        level = pd.Index(batch.names).get_indexer(genes[cols < 0])
        out[:, cols < 0] = codes[:, None] == level[None, :]
    found = np.flatnonzero(cols >= 0)
    for start in range(0, len(cells), ACCESS_CELLS):  # row blocks: backed or sparse X
        part = cells[start : start + ACCESS_CELLS]
        block = X[part][:, cols[found]]
        block = block.toarray() if sparse.issparse(block) else block
        out[start : start + len(part), found] = block
    return out


def from_adata(adata: AnnData, *, key: str, groupby: str | None, **options: object) -> ExplorerData:
    """:func:`explorer_data` for the results of :func:`~scglassbox.tl.glassbox_umap`."""
    source = AnnDataSource(adata, key)
    labels = colors = None
    if groupby is not None:
        labels = v.categorical(adata, groupby)
        colors = palette(adata, groupby, list(labels.categories))
    names = source.names
    return explorer_data(
        source,
        v.embedding(adata, key),
        cell_names=np.asarray(adata.obs_names).astype(str),
        labels=labels,
        group_label=groupby,
        group_colors=colors,
        values=lambda cols, cells: _expression(adata, key, names[cols], cells),
        **options,
    )


def _labels(labels: object, n: int) -> tuple[pd.Categorical, str | None]:
    """Any 1-D labels as a categorical of strings (a categorical keeps its order)."""
    name = getattr(labels, "name", None)
    cat = labels if isinstance(labels, pd.Categorical) else None
    if cat is None and isinstance(getattr(labels, "dtype", None), pd.CategoricalDtype):
        cat = pd.Categorical(labels)
    if cat is None:
        cat = pd.Categorical(np.asarray(labels).ravel())
    if len(cat) != n:
        raise ValueError(f"labels has {len(cat)} entries for {n} cells.")
    cat = cat.remove_unused_categories()
    cat = cat.rename_categories([str(c) for c in cat.categories])
    return cat, None if name is None else str(name)


def from_arrays(
    *,
    embedding: object,
    contributions: object,
    feature_names: Sequence[str] | None,
    labels: object,
    feature_values: object,
    cell_names: Sequence[str] | None = None,
    **options: object,
) -> ExplorerData:
    """:func:`explorer_data` for plain arrays, as :class:`~scglassbox.GlassBoxUMAP` returns them."""
    if embedding is None or contributions is None:
        raise ValueError("without adata, pass embedding= and contributions=.")
    emb = np.asarray(embedding)
    c = contributions
    n_features = (c.shape if hasattr(c, "shape") else np.shape(c))[-1]
    names = (
        np.asarray([f"feature {i}" for i in range(n_features)])
        if feature_names is None
        else np.asarray([str(f) for f in feature_names])
    )
    source = ArraySource(c, names)
    if len(set(names.tolist())) != len(names):
        raise ValueError("feature_names must be unique.")
    cat, name = (None, None) if labels is None else _labels(labels, source.n_obs)
    X = None
    if feature_values is not None:
        X = np.asarray(feature_values)
        if X.shape != (source.n_obs, len(names)):
            raise ValueError(
                f"feature_values must have shape {(source.n_obs, len(names))}, got {X.shape}."
            )
    if cell_names is None:
        cell_names = [str(i) for i in range(source.n_obs)]
    return explorer_data(
        source,
        emb,
        cell_names=cell_names,
        labels=cat,
        group_label=name,
        group_colors=None,
        values=(lambda cols, cells: None)
        if X is None
        else (lambda cols, cells: X[cells][:, cols].astype(np.float32)),
        **options,
    )
