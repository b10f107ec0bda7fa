"""Read what :func:`scglassbox.tl.glassbox_umap` stored, for the plotting functions.

Every plot goes through :func:`contribution_view`, which reduces the per-cell contributions
``(n_obs, n_components, n_genes_used)`` to one value per cell and gene with the project-wide
:func:`scglassbox._views.view_of`, in chunks of cells so that large data sets never need a
second full-size copy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._views import categorical as categorical  # re-exported for the plot modules
from .._views import contributions as contributions  # re-exported for the plot modules
from .._views import key_info as key_info  # re-exported for the plot modules
from .._views import parse_view, view_of

#: Cells reduced at once (bounds the float32 temporaries of float16 storage).
CHUNK_CELLS = 16_384


def embedding(adata: AnnData, key: str) -> np.ndarray:
    """The embedding ``obsm['X_' + key]`` (``obsm[key]`` is accepted too)."""
    for k in (f"X_{key}", key):
        if k in adata.obsm:
            return np.asarray(adata.obsm[k])
    raise KeyError(f"adata.obsm['X_{key}'] not found: run gb.tl.glassbox_umap(adata) first.")


def gene_names(adata: AnnData, key: str) -> np.ndarray:
    """Names of the genes along the last axis of the contributions."""
    uns = key_info(adata, key)
    if "var_names" in uns:
        return np.asarray(uns["var_names"]).astype(str)
    c = adata.obsm.get(f"{key}_contributions")
    if c is not None and c.shape[-1] == adata.n_vars:
        return np.asarray(adata.var_names).astype(str)
    raise KeyError(f"adata.uns[{key!r}]['var_names'] is missing.")


def n_components(adata: AnnData, key: str) -> int:
    """Dimension of the embedding."""
    return embedding(adata, key).shape[1]


def check_view(adata: AnnData, view: str, key: str) -> int | None:
    """Validate ``view``; return its dimension index (``None`` for the L2 views)."""
    return parse_view(view, n_components(adata, key))


def is_signed(view: str) -> bool:
    """Whether a view holds signed values (the ``'dimK'`` views)."""
    return view not in ("l2", "normed_l2")


def view_label(view: str) -> str:
    """Human-readable name of a view, for axis labels and titles."""
    if view == "l2":
        return "L2 contribution"
    if view == "normed_l2":
        return "normed L2 contribution"
    return f"contribution to dim {view[3:]}"


def gene_index(names: np.ndarray, genes: str | Sequence[str]) -> np.ndarray:
    """Positions of ``genes`` in ``names``; unknown genes raise one error naming them all."""
    genes = [genes] if isinstance(genes, str) else list(genes)
    index = pd.Index(names).get_indexer(genes)
    missing = [g for g, i in zip(genes, index, strict=True) if i < 0]
    if missing:
        raise KeyError(
            f"{len(missing)} gene(s) not among the {len(names)} genes of the model: "
            f"{missing}. Available genes are in adata.uns[key]['var_names']."
        )
    return index


def obs_mask(adata: AnnData, mask: object) -> np.ndarray:
    """A boolean cell mask from a boolean array / Series or the name of a boolean obs column."""
    if isinstance(mask, str):
        if mask not in adata.obs.columns:
            raise KeyError(f"mask={mask!r} is not a column of adata.obs.")
        mask = adata.obs[mask]
    if isinstance(mask, pd.Series):
        mask = mask.reindex(adata.obs_names).to_numpy()
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (adata.n_obs,):
        raise ValueError(f"mask must be a boolean array of length n_obs={adata.n_obs}.")
    if not mask.any():
        raise ValueError("mask selects no cells.")
    return mask


def contribution_view(
    adata: AnnData,
    view: str = "l2",
    key: str = "glassbox_umap",
    *,
    genes: str | Sequence[str] | None = None,
    cells: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell contributions reduced to one float32 value per cell and gene.

    Parameters
    ----------
    adata
        Annotated data matrix with the results of :func:`~scglassbox.tl.glassbox_umap`.
    view
        ``'l2'``, ``'normed_l2'`` or ``'dim1'``, ``'dim2'``, ...
    key
        The ``key_added`` of the fit.
    genes
        Only these genes (in this order); unknown genes raise a :class:`KeyError`.
    cells
        Only these cells (boolean mask or integer positions).

    Returns
    -------
    ``(values, genes)``: a ``(n_cells, n_genes)`` float32 array and the gene names.
    ``'normed_l2'`` is always normalised by the sum over *all* genes used.
    """
    names = gene_names(adata, key)
    check_view(adata, view, key)
    contrib = contributions(adata, key)
    cols = None if genes is None else gene_index(names, genes)
    rows = np.arange(adata.n_obs) if cells is None else np.arange(adata.n_obs)[cells]
    n_genes = len(names) if cols is None else len(cols)
    out = np.empty((len(rows), n_genes), dtype=np.float32)
    dim = parse_view(view, contrib.shape[1])
    for start in range(0, len(rows), CHUNK_CELLS):
        r = rows[start : start + CHUNK_CELLS]
        if dim is not None:  # signed: no need to touch the other dimensions or genes
            block = np.asarray(contrib[r, dim, :] if cols is None else contrib[r, dim][:, cols])
            out[start : start + len(r)] = block
            continue
        block = view_of(np.asarray(contrib[r]), view)
        out[start : start + len(r)] = block if cols is None else block[:, cols]
    return out, names if cols is None else names[cols]


def selection_stats(
    adata: AnnData, view: str, key: str, masks: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and SEM per gene over each boolean cell mask, streaming over chunks of cells.

    Returns
    -------
    ``(mean, sem, n_cells, genes)`` with ``mean`` and ``sem`` of shape ``(n_masks, n_genes)``.
    """
    names = gene_names(adata, key)
    masks = [np.asarray(m, dtype=bool) for m in masks]
    sums = np.zeros((len(masks), len(names)), dtype=np.float64)
    sqs = np.zeros_like(sums)
    counts = np.array([m.sum() for m in masks], dtype=np.int64)
    if (counts == 0).any():
        raise ValueError("a selection holds no cells.")
    for start in range(0, adata.n_obs, CHUNK_CELLS):
        rows = np.arange(start, min(start + CHUNK_CELLS, adata.n_obs))
        any_rows = np.logical_or.reduce([m[rows] for m in masks])
        if not any_rows.any():
            continue
        values, _ = contribution_view(adata, view, key, cells=rows[any_rows])
        values = values.astype(np.float64)
        for i, m in enumerate(masks):
            sel = values[m[rows[any_rows]]]
            sums[i] += sel.sum(axis=0)
            sqs[i] += np.square(sel).sum(axis=0)
    n = counts[:, None].astype(np.float64)
    mean = sums / n
    var = np.clip(sqs - n * mean**2, 0, None) / np.maximum(n - 1, 1)
    sem = np.where(n > 1, np.sqrt(var / n), 0.0)
    return mean, sem, counts, names


def in_top_k(adata: AnnData, view: str, key: str, genes: Sequence[str], k: int) -> np.ndarray:
    """Whether each gene is among each cell's ``k`` largest contributors (by absolute value).

    Returns a ``(n_obs, len(genes))`` boolean array.
    """
    names = gene_names(adata, key)
    cols = gene_index(names, genes)
    k = int(min(max(k, 1), len(names)))
    out = np.empty((adata.n_obs, len(cols)), dtype=bool)
    for start in range(0, adata.n_obs, CHUNK_CELLS):
        rows = np.arange(start, min(start + CHUNK_CELLS, adata.n_obs))
        values = np.abs(contribution_view(adata, view, key, cells=rows)[0])
        thr = np.partition(values, values.shape[1] - k, axis=1)[:, values.shape[1] - k]
        out[rows] = values[:, cols] >= thr[:, None]
    return out
