"""Compute what a fit or a mapping writes, then write it all at once (or not at all)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Literal

import numpy as np
from anndata import AnnData

from .. import _keys
from .. import _logging as logg
from .._chunks import cells_per_chunk
from .._contributions import exactness, stream_contributions
from .._memory import check_fits
from ..get._access import ColumnView
from ..get._batch import batch_share, share_key

if TYPE_CHECKING:
    from .._estimator import GlassBoxUMAP

ContributionStorage = Literal["auto", "full", "float16", "lazy", "none"]
STORAGES = _keys.STORAGES
#: ``contributions='auto'`` stores the per-cell array only up to this size. Below it the cache
#: costs little next to a typical file; above it, it would grow the ``.h5ad`` about threefold
#: (n_obs x n_dims x n_genes float32 against a sparse X) and RAM with it, while the model
#: recomputes any subset in seconds (:func:`scglassbox.get.contributions`).
AUTO_MAX_BYTES = 256 * 2**20


def check_storage(contributions: object) -> None:
    """Refuse an unknown storage mode before any work."""
    if contributions not in STORAGES:
        raise ValueError(f"contributions must be one of {STORAGES}, got {contributions!r}.")


def resolve_storage(storage: str, n_obs: int, n_dims: int, n_genes: int) -> str:
    """What ``'auto'`` means for this size; refuse an in-memory array that cannot fit."""
    nbytes = n_obs * n_dims * n_genes * 4
    if storage == "auto":
        chosen = "full" if nbytes <= AUTO_MAX_BYTES else "none"
        if chosen == "none":
            logg.info(
                f"per-cell contributions ({nbytes / 2**20:.0f} MiB) are not stored: "
                "gb.get.contributions recomputes them from the model (contributions='full' or "
                "'lazy' stores them)."
            )
        return chosen
    if storage in ("full", "float16"):
        check_fits(
            nbytes // (2 if storage == "float16" else 1),
            f"storing per-cell contributions ({n_obs} x {n_dims} x {n_genes}, {storage})",
            "contributions='none' (the model recomputes them on demand), 'lazy' (a dask array "
            "written chunk by chunk), or fewer genes (mask_var)",
        )
    if storage == "lazy":
        try:
            import dask.array  # noqa: F401
        except ImportError as e:
            raise ImportError("contributions='lazy' needs dask: pip install 'dask[array]'") from e
    return storage


def contributions_and_summary(
    est: GlassBoxUMAP,
    X: object,
    *,
    storage: str,
    batch_size: int | None = None,
    share_cols: np.ndarray | None = None,
    share_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, dict]:
    """Embedding, per-cell contributions as stored, per-gene mean |C| and exactness figures.

    One streamed pass. ``exactness`` is that of the float32 contributions;
    ``exactness_stored`` that of what is stored (differs for ``'float16'``). With
    ``share_cols`` (the batch features), each cell's batch share is written to ``share_out``.
    Chunks hold ``batch_size`` cells, by default the estimator's ``inference_batch_size``
    lowered to fit :data:`~scglassbox._chunks.CHUNK_BYTES` (many genes).
    """
    n, d, g = X.shape[0], est.n_components, est.n_features_in_
    emb = np.empty((n, d), dtype=np.float32)
    out = None
    if storage in ("full", "float16"):
        out = np.empty((n, d, g), dtype=np.float16 if storage == "float16" else np.float32)
    abs_sum = np.zeros((g, d), dtype=np.float64)
    worst = worst_stored = 0.0
    for rows, y, c in stream_contributions(
        est.encoder_,
        X,
        est.input_map_,
        batch_size=batch_size or cells_per_chunk(d, g, est.inference_batch_size),
        progress=logg.progress_enabled(est.quiet) and n > 50_000,
    ):
        emb[rows] = y
        if share_cols is not None:
            share_out[rows] = batch_share(c, share_cols)
        scale = float(np.abs(y).max())
        worst = max(worst, exactness(y, c) * scale)
        if out is not None:
            out[rows] = c
            if storage == "float16":
                worst_stored = max(worst_stored, exactness(y, out[rows]) * scale)
        abs_sum += np.abs(c, out=c).sum(axis=0).T  # c is this chunk's own array: no copy
    top = max(float(np.abs(emb).max()), 1e-30)
    figures = {"exactness": worst / top}
    if storage == "float16":
        figures["exactness_stored"] = worst_stored / top
    return emb, out, (abs_sum / n).astype(np.float32), figures


class _LazyContributions:
    """Array-like that computes rows of contributions from the model when dask asks."""

    def __init__(self, est: GlassBoxUMAP, X: ColumnView) -> None:
        self.est, self.X = est, X
        self.shape = (X.shape[0], est.n_components, est.n_features_in_)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __getitem__(self, index: tuple) -> np.ndarray:
        rows, rest = index[0], index[1:]
        rows = rows if isinstance(rows, slice) else slice(rows, rows + 1)
        block = self.X.rows(rows)
        if block.shape[0] == 0:
            return np.empty((0, *self.shape[1:]), np.float32)[(slice(None), *rest)]
        ((_, _, c),) = stream_contributions(
            self.est.encoder_, block, self.est.input_map_, batch_size=block.shape[0]
        )
        return c.astype(np.float32, copy=False)[(slice(None), *rest)]


def lazy_contributions(est: GlassBoxUMAP, X: ColumnView, chunk: int | None = None) -> object:
    """A dask array of the contributions: computed, and written, one chunk at a time.

    Chunks hold as many cells as fit :data:`~scglassbox._chunks.CHUNK_BYTES`
    (:func:`~scglassbox._chunks.cells_per_chunk`, uncapped) unless ``chunk`` says.
    """
    import dask.array as da

    source = _LazyContributions(est, X)
    chunk = chunk or cells_per_chunk(*source.shape[1:])
    # A fixed name: dask would otherwise hash the model and the matrix to name the array.
    return da.from_array(
        source, chunks=(chunk, *source.shape[1:]), name=f"glassbox-{uuid.uuid4().hex}"
    )


def write_results(
    adata: AnnData,
    key: str,
    *,
    emb: np.ndarray,
    contrib: object | None,
    summary: np.ndarray | None,
    uns: dict,
    share: np.ndarray | None = None,
) -> None:
    """Write every output together: on any error or interrupt, restore what was there.

    ``summary`` rows follow ``uns['var_names']``; they are placed in ``varm`` by gene name
    (genes of ``.raw`` or of a reference that ``adata.var`` lacks get no row). ``None``
    (features that are not genes) removes an earlier ``varm`` entry of ``key``. ``share``,
    each cell's batch share, goes to ``obs[key + '_batch_share']`` (``None`` removes it).
    """
    varm = None
    if summary is not None:
        varm = np.zeros((adata.n_vars, emb.shape[1]), dtype=np.float32)
        pos = adata.var_names.get_indexer(uns["var_names"])
        varm[pos[pos >= 0]] = summary[pos >= 0]
    ckey = _keys.contributions_key(key)
    slots = [
        (adata.obsm, _keys.embedding_key(key), emb),
        (adata.obsm, ckey, contrib),
        (adata.varm, ckey, varm),
        (adata.uns, key, uns),
        (adata.obs, share_key(key), share),
    ]
    before = [(m, k, m[k] if k in m else None) for m, k, _ in slots]
    try:
        for mapping, k, value in slots:
            if value is not None:
                mapping[k] = value
            elif k in mapping:
                del mapping[k]
    except BaseException:
        for mapping, k, old in before:
            if old is not None:
                mapping[k] = old
            elif k in mapping:
                del mapping[k]
        raise
