"""The one accessor of per-cell contributions: the stored cache when present, else the model.

The model in ``adata.uns[key]['model']`` is the source of truth; ``obsm[key +
'_contributions']`` is an optional cache (a numpy array, float16, or a lazy dask array).
Everything that reads contributions goes through :func:`iter_contributions`, which holds one
chunk of cells at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from anndata import AnnData

from .. import _keys
from .._chunks import ACCESS_CELLS, cells_per_chunk
from .._docs import doc_params
from .._memory import check_fits
from .._validation import check_int
from .._views import View, check_dims, parse_view, renamed
from . import _access as acc

if TYPE_CHECKING:
    from .._estimator import GlassBoxUMAP

#: Most cells per chunk when contributions are read or recomputed (fewer for many genes): the
#: access layer's cap :data:`scglassbox._chunks.ACCESS_CELLS`, under the name that code here
#: and in ``pl`` reads at call time (so a test can lower it).
CHUNK_CELLS = ACCESS_CELLS


def stored(adata: AnnData, key: str) -> object | None:
    """The cached per-cell contributions, or ``None`` when only the model holds them."""
    return adata.obsm.get(_keys.contributions_key(key))


def _check_selection(
    adata: AnnData, key: str, dims: object, view: object
) -> tuple[np.ndarray, list[int], View | None]:
    """Gene names, 0-based dimensions and the parsed view (``None``: unreduced)."""
    acc.key_info(adata, key)
    n_dims = acc.embedding(adata, key).shape[1]
    parsed = None if view is None else parse_view(view, n_dims)
    if parsed is not None and parsed.signed and dims is not None:
        raise ValueError(f"view={view!r} names one dimension already: pass view= or dims=.")
    dim_list = [parsed.dim] if parsed is not None and parsed.signed else check_dims(dims, n_dims)
    return acc.gene_names(adata, key), dim_list, parsed


def _model_source(adata: AnnData, key: str):
    """The estimator rebuilt from ``uns[key]['model']`` and the expression it reads."""
    info = acc.key_info(adata, key)
    if not isinstance(info, dict) or "model" not in info:
        raise KeyError(
            f"adata.obsm[{_keys.contributions_key(key)!r}] not found and adata.uns[{key!r}] "
            "holds no model to recompute them from: per-cell contributions were not stored "
            "(rerun gb.tl.glassbox_umap)."
        )
    from .._estimator import GlassBoxUMAP

    return GlassBoxUMAP.from_adata(adata, key), acc.model_expression(adata, key)


def _chunks_of(positions: np.ndarray, chunk: int) -> Iterator[np.ndarray]:
    for start in range(0, len(positions), chunk):
        yield positions[start : start + chunk]


@doc_params
def iter_contributions(
    adata: AnnData,
    key: str = _keys.DEFAULT_KEY,
    *,
    obs: object = None,
    genes: str | Sequence[str] | None = None,
    dims: int | Sequence[int] | None = None,
    view: str | None = None,
    chunk_size: int | None = None,
    device: str | None = None,
    reduction: str | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per-cell contributions chunk by chunk of cells: memory holds one chunk at a time.

    Parameters
    ----------
    {adata}
    {key}
    obs, genes, dims, view, chunk_size, device, reduction
        As for :func:`contributions`.

    Returns
    -------
    An iterator of ``(positions, block)`` over the selected cells, in the order asked for.
    ``block`` is float32 (float64 when recomputed with a PCA input map):
    ``(b, n_dims, n_genes)`` without a view, ``(b, n_genes)`` with one. The L2 views run
    over the selected ``dims``; ``'normed_l2'`` is normalised by the sum over *all* genes.
    A cache is read as stored; the model recomputes on ``device``. The selection is checked
    when this is called, before the first chunk.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata, contributions="none")
    >>> for positions, block in gb.get.iter_contributions(
    ...     adata, genes=["CST3", "NKG7"], view="l2", chunk_size=300
    ... ):
    ...     print(positions[0], block.shape)
    0 (300, 2)
    300 (300, 2)
    600 (100, 2)
    """
    view = renamed("reduction", "view", reduction, view)
    names, dim_list, parsed = _check_selection(adata, key, dims, view)
    cols = None if genes is None else acc.gene_index(names, genes)
    positions = acc.obs_positions(adata, obs)
    # A recomputed chunk holds every dimension and gene in float64 before the selection.
    n_dims = acc.embedding(adata, key).shape[1]
    chunk = check_int(chunk_size, "chunk_size", min=1, optional=True)
    if chunk is None:
        chunk = cells_per_chunk(n_dims, len(names), CHUNK_CELLS)
    cache = stored(adata, key)
    source = _model_source(adata, key) if cache is None else None
    if source is not None and device is not None:
        source[0].to(device)
    return _iter_blocks(positions, chunk, cache, source, dim_list, parsed, cols)


def _iter_blocks(
    positions: np.ndarray,
    chunk: int,
    cache: object | None,
    source: tuple | None,
    dim_list: list[int],
    view: View | None,
    cols: np.ndarray | None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for pos in _chunks_of(positions, chunk):
        if cache is not None:
            block = cache[pos] if len(pos) else cache[:0]
            block = np.asarray(block.compute() if hasattr(block, "compute") else block)
            if block.dtype == np.float16:
                block = block.astype(np.float32)
        else:
            # Read rows in increasing order (backed files need it), then restore the order.
            est, X = source
            order = np.argsort(pos, kind="stable")
            block = _recompute(est, X.rows(pos[order]))[np.argsort(order, kind="stable")]
        if view is not None and view.signed:
            block = block[:, view.dim]
        else:
            block = block[:, dim_list]
            if view is not None:
                block = view.reduce(block)
        if cols is not None:
            block = block[..., cols]
        yield pos, block


def _recompute(est: GlassBoxUMAP, X_rows: object) -> np.ndarray:
    from .._contributions import stream_contributions

    n = X_rows.shape[0]
    if n == 0:
        return np.empty((0, est.n_components, est.n_features_in_), dtype=np.float32)
    ((_, _, c),) = stream_contributions(est.encoder_, X_rows, est.input_map_, batch_size=n)
    return c


@doc_params
def contributions(
    adata: AnnData,
    obs: object = None,
    genes: str | Sequence[str] | None = None,
    *,
    dims: int | Sequence[int] | None = None,
    view: str | None = None,
    dtype: np.dtype | type = np.float32,
    key: str = _keys.DEFAULT_KEY,
    chunk_size: int | None = None,
    device: str | None = None,
    reduction: str | None = None,
) -> np.ndarray:
    """Per-cell contributions, from the stored cache or recomputed from the model.

    Stored values are returned as stored (bitwise); without a cache
    (``contributions='none'`` in :func:`~scglassbox.tl.glassbox_umap`, or a file written that
    way) the model stored in ``adata.uns[key]`` recomputes them chunk by chunk, for the
    selected cells and genes only. Either way they sum over genes to the embedding.

    Parameters
    ----------
    {adata}
    {obs}
    genes
        Genes of the model (default: all, in ``uns[key]['var_names']`` order).
    dims
        Embedding dimensions, 0-based (default: all).
    view
        ``None``: ``(n_cells, n_dims, n_genes)``. ``'l2'``: the L2 norm over the selected
        dimensions, ``(n_cells, n_genes)``; ``'normed_l2'``: that, divided per cell by its sum
        over all genes of the model; ``'dim1'``, ``'dim2'``, ...: the signed contribution to
        that dimension, ``(n_cells, n_genes)`` (instead of ``dims``).
    dtype
        Output dtype.
    {key}
    chunk_size
        Cells computed at once (default: up to 8,192, fewer with many genes so that a chunk
        stays near 64 MiB); memory holds one chunk besides the output.
    device
        Where the model recomputes them (``'cuda'`` on a GPU); the default is the CPU.
    reduction
        Deprecated name of ``view`` (``'l2'``, ``'normed_l2'``), kept for one release.

    Returns
    -------
    The requested array. It is refused with a :class:`MemoryError` naming cheaper options when
    it would not fit in the memory available.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata, contributions="none", quiet=True)
    >>> c = gb.get.contributions(adata, genes=["CST3", "NKG7"], dims=0)
    >>> c.shape
    (700, 1, 2)
    """
    view = renamed("reduction", "view", reduction, view)
    names, dim_list, _ = _check_selection(adata, key, dims, view)
    n_genes = len(names) if genes is None else len(acc.gene_index(names, genes))
    tail = (n_genes,) if view is not None else (len(dim_list), n_genes)
    return gather(
        adata, key, tail, lambda block: block, "contributions", obs=obs, dtype=dtype,
        hint="select cells (obs=) or genes (genes=), one dimension (dims=), view='l2', "
        "dtype=np.float16, or stream them with gb.get.iter_contributions",
        genes=genes, dims=dims, view=view, chunk_size=chunk_size, device=device,
    )  # fmt: skip


def gather(
    adata: AnnData,
    key: str,
    tail: tuple[int, ...],
    reduce: Callable[[np.ndarray], np.ndarray],
    what: str,
    *,
    obs: object = None,
    dtype: np.dtype | type = np.float32,
    hint: str = "select cells (obs=)",
    **select: Any,
) -> np.ndarray:
    """``reduce`` of every chunk of :func:`iter_contributions`, in one ``(n_cells, *tail)`` array.

    The shared body of the getters that return a summary of each cell's contributions (per
    gene set, modality, batch term, image): the array is refused first, with ``hint``, when
    it would not fit in memory. ``select`` goes to :func:`iter_contributions`.
    """
    positions = acc.obs_positions(adata, obs)
    shape = (len(positions), *tail)
    if np.dtype(dtype) == np.float32:
        what = f"{what} of shape {shape}"
    else:
        what = f"{what} of shape {shape} ({np.dtype(dtype).name})"
    check_fits(int(np.prod(shape)) * np.dtype(dtype).itemsize, what, hint)
    out = np.empty(shape, dtype=dtype)
    start = 0
    for pos, block in iter_contributions(adata, key, obs=positions, **select):
        out[start : start + len(pos)] = reduce(block)
        start += len(pos)
    return out


@doc_params
def contribution_view(
    adata: AnnData,
    view: str = "l2",
    key: str = _keys.DEFAULT_KEY,
    *,
    genes: str | Sequence[str] | None = None,
    cells: object = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell contributions reduced to one float32 value per cell and gene.

    Parameters
    ----------
    {adata}
    {view}
    {key}
    genes
        Only these genes (in this order); unknown genes raise a :class:`KeyError`.
    cells
        Only these cells (boolean mask, integer positions or names).

    Returns
    -------
    ``(values, genes)``: a ``(n_cells, n_genes)`` float32 array and the gene names.
    ``'normed_l2'`` is always normalised by the sum over *all* genes used.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> values, genes = gb.get.contribution_view(adata, "dim1", genes=["CST3", "NKG7"])
    >>> values.shape, genes.tolist()
    ((700, 2), ['CST3', 'NKG7'])
    """
    names = acc.gene_names(adata, key)
    parse_view(view, acc.embedding(adata, key).shape[1])  # None is not a view here
    values = contributions(adata, cells, genes, view=view, key=key)
    return values, names if genes is None else names[acc.gene_index(names, genes)]


def iter_views(
    adata: AnnData,
    view: str,
    key: str = _keys.DEFAULT_KEY,
    *,
    obs: object = None,
    genes: str | Sequence[str] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """:func:`contribution_view` chunk by chunk: ``(positions, (b, n_genes) float32)``.

    One pass of :func:`iter_contributions` (one model, when recomputed) for the whole call.
    """
    parse_view(view, acc.embedding(adata, key).shape[1])  # None is not a view here
    for pos, block in iter_contributions(adata, key, obs=obs, genes=genes, view=view):
        yield pos, np.asarray(block, dtype=np.float32)
