"""What the plots read, all through the access layer :mod:`scglassbox.get`.

Per-cell contributions come from :func:`scglassbox.get.contribution_view` and
:func:`~scglassbox.get._contributions.iter_views` (stored cache or the model, chunk by chunk);
views are :mod:`scglassbox._views`. This module adds only what is specific to drawing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from .._views import View, parse_view
from ..get import _access, _aggregate
from ..get._contributions import contribution_view as contribution_view
from ..get._contributions import iter_views as iter_views

# Re-exported for the plot modules: one implementation each, in the access layer.
categorical = _access.categorical
embedding = _access.embedding
gene_index = _access.gene_index
gene_names = _access.gene_names
key_info = _access.key_info
obs_mask = _access.obs_mask


def n_components(adata: AnnData, key: str) -> int:
    """Dimension of the embedding."""
    return embedding(adata, key).shape[1]


def check_view(adata: AnnData, view: str, key: str) -> View:
    """``view`` checked against the embedding stored under ``key``."""
    return parse_view(view, n_components(adata, key))


def selection_stats(
    adata: AnnData, view: str, key: str, masks: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and SEM per gene over each boolean cell mask (masks may overlap).

    Returns
    -------
    ``(mean, sem, n_cells, genes)`` with ``mean`` and ``sem`` of shape ``(n_masks, n_genes)``;
    the SEM of a one-cell selection is NaN.
    """
    names = gene_names(adata, key)
    masks = np.asarray([np.asarray(m, dtype=bool) for m in masks])
    if (masks.sum(axis=1) == 0).any():
        raise ValueError("a selection holds no cells.")
    cells = np.flatnonzero(masks.any(axis=0))

    def chunks():
        for part, values in iter_views(adata, view, key, obs=cells):
            yield _aggregate.masks_membership(masks[:, part]), values

    stats = _aggregate.aggregate(chunks(), len(masks))
    return stats.mean, stats.sem, stats.count, names


def in_top_k(adata: AnnData, view: str, key: str, genes: Sequence[str], k: int) -> np.ndarray:
    """Whether each gene is among each cell's ``k`` largest contributors (by absolute value).

    Returns a ``(n_obs, len(genes))`` boolean array.
    """
    names = gene_names(adata, key)
    cols = gene_index(names, genes)
    k = int(min(max(k, 1), len(names)))
    out = np.empty((adata.n_obs, len(cols)), dtype=bool)
    for rows, values in iter_views(adata, view, key):
        values = np.abs(values)
        thr = np.partition(values, values.shape[1] - k, axis=1)[:, values.shape[1] - k]
        out[rows] = values[:, cols] >= thr[:, None]
    return out
