"""Group means and standard errors, streamed over chunks of cells.

One implementation for every summary (``tl.rank_contributions``, seed ensembles, plotted
selections, the explorer): per chunk, a sparse membership matrix gives each group's sum and
sum of squares; chunks are merged with Chan et al.'s update, so memory holds one chunk and the
outputs, and groups may overlap (selections). The SEM of a group of one cell is NaN: it is
undefined, and a plot that wants no error bar there draws none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass
class GroupStats:
    """Per-group ``count`` ``(n_groups,)``, ``mean`` and ``var`` (ddof=1) ``(n_groups, ...)``."""

    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    @property
    def sem(self) -> np.ndarray:
        """Standard error of each mean; NaN for groups of fewer than two cells."""
        n = self.count.reshape((-1,) + (1,) * (self.mean.ndim - 1)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 1, np.sqrt(self.var / n), np.nan)


def membership(codes: np.ndarray, n_groups: int) -> sparse.csr_matrix:
    """Sparse ``(n_groups, n)`` indicator of integer group codes; codes < 0 belong nowhere."""
    codes = np.asarray(codes)
    keep = np.flatnonzero(codes >= 0)
    ones = np.ones(keep.size, dtype=np.float64)
    return sparse.csr_matrix((ones, (codes[keep], keep)), shape=(n_groups, codes.size))


def masks_membership(masks: np.ndarray) -> sparse.csr_matrix:
    """Sparse indicator of (possibly overlapping) boolean masks ``(n_groups, n)``."""
    return sparse.csr_matrix(np.asarray(masks, dtype=np.float64))


def aggregate(chunks: Iterable[tuple[sparse.csr_matrix, np.ndarray]], n_groups: int) -> GroupStats:
    """Merge ``(membership (n_groups, b), values (b, ...))`` chunks into per-group statistics."""
    count = np.zeros(n_groups, dtype=np.float64)
    mean = m2 = None
    for member, values in chunks:
        v = np.asarray(values, dtype=np.float64)
        shape = v.shape[1:]
        v = v.reshape(v.shape[0], -1)
        if mean is None:
            mean = np.zeros((n_groups, v.shape[1]))
            m2 = np.zeros_like(mean)
        n_b = np.asarray(member.sum(axis=1)).ravel()
        if not n_b.any():
            continue
        sums = member @ v
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_b = np.where(n_b[:, None] > 0, sums / n_b[:, None], 0.0)
        m2_b = np.maximum(member @ (v * v) - n_b[:, None] * mean_b**2, 0.0)
        total = count + n_b
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(total > 0, n_b / total, 0.0)[:, None]
        delta = mean_b - mean
        mean += delta * w
        m2 += m2_b + delta**2 * (count[:, None] * w)
        count = total
    if mean is None:
        raise ValueError("no cells to summarise.")
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(count[:, None] > 1, m2 / np.maximum(count[:, None] - 1, 1), np.nan)
        mean = np.where(count[:, None] > 0, mean, np.nan)
    full = (n_groups, *shape)
    return GroupStats(count.astype(np.int64), mean.reshape(full), var.reshape(full))
