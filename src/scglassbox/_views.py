"""The one vocabulary for choosing what of a cell's contributions to look at.

Every public function of the package uses these two words:

``view``
    What one value per cell and gene is: ``'l2'`` (the norm over the embedding dimensions:
    how far the gene moves the cell, in any direction), ``'normed_l2'`` (that, divided per
    cell by its sum over all genes: a share) or ``'dim1'``, ``'dim2'``, ... (the signed
    contribution to that dimension, named as the columns of
    :func:`~scglassbox.get.gene_importance_df` and the plots' axes). ``None`` where a
    function can return every dimension unreduced.
``dims``
    Embedding dimensions selected by position, 0-based as numpy indices and scanpy's
    ``dimensions``.

The estimator's ``compute_contributions(reduction=...)`` keeps the reference package's word
for its subset (``None``, ``'l2'``, ``'normed_l2'``): :data:`REDUCTIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._validation import is_integer
from ._warnings import warn

Reduction = Literal["l2", "normed_l2"] | None
REDUCTIONS = (None, "l2", "normed_l2")
#: The L2 views, which reduce over dimensions; every other view names one dimension.
L2_VIEWS = ("l2", "normed_l2")


@dataclass(frozen=True)
class View:
    """A checked ``view``: its name and, for ``'dimK'``, the 0-based dimension."""

    name: str
    dim: int | None

    @property
    def signed(self) -> bool:
        """Whether values carry a sign (the ``'dimK'`` views)."""
        return self.dim is not None

    @property
    def normed(self) -> bool:
        return self.name == "normed_l2"

    @property
    def label(self) -> str:
        """Human-readable name, for axis labels and titles."""
        if self.dim is not None:
            return f"contribution to dim {self.dim + 1} (red: +, blue: -)"
        return "normed L2 contribution" if self.normed else "L2 contribution"

    def reduce(self, contrib: np.ndarray) -> np.ndarray:
        """``(n, n_dims, n_genes)`` contributions to ``(n, n_genes)`` values of this view.

        The L2 views are computed in the input's dtype (float64 keeps the PCA
        back-projection's precision).
        """
        if self.dim is not None:
            return contrib[:, self.dim, :]
        return l2_view(contrib, normed=self.normed)


def parse_view(view: object, n_components: int) -> View:
    """Check ``view`` against an embedding of ``n_components`` dimensions."""
    if view in L2_VIEWS:
        return View(str(view), None)
    if isinstance(view, str) and view.startswith("dim") and view[3:].isdigit():
        d = int(view[3:])
        if 1 <= d <= n_components:
            return View(view, d - 1)
    names = ", ".join(f"'dim{i + 1}'" for i in range(n_components))
    raise ValueError(f"view must be 'l2', 'normed_l2' or one of {names}, got {view!r}.")


def l2_view(contrib: np.ndarray, *, normed: bool) -> np.ndarray:
    """L2 norm over embedding dimensions, ``(n, n_genes)``; ``normed``: divided by its row sum."""
    l2 = np.sqrt(np.einsum("ndg,ndg->ng", contrib, contrib))
    if not normed:
        return l2
    total = l2.sum(axis=1, keepdims=True)
    return np.divide(l2, total, out=np.zeros_like(l2), where=total > 0)


def check_reduction(reduction: object) -> None:
    """Raise a clear error for an unknown ``reduction`` (the estimator's word)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")


def check_dims(dims: object, n_dims: int, name: str = "dims") -> list[int]:
    """0-based embedding dimensions as a list (``None``: all of them)."""
    if dims is None:
        return list(range(n_dims))
    chosen = [dims] if np.ndim(dims) == 0 else list(np.asarray(dims, dtype=object).ravel())
    for d in chosen:
        if not is_integer(d) or not 0 <= d < n_dims:
            raise ValueError(f"{name} must be integers in [0, {n_dims}), got {dims!r}.")
    return [int(d) for d in chosen]


def renamed(old: str, new: str, value: object, new_value: object) -> object:
    """Accept a parameter's old name for one release, with a :class:`FutureWarning`."""
    if value is None:
        return new_value
    if new_value is not None:
        raise ValueError(f"{old}= is the old name of {new}=: pass only {new}=.")
    warn(
        f"{old}= is deprecated and will be removed in the next release; use {new}= "
        "(see 'Views and dimensions' in the API docs).",
        FutureWarning,
    )
    return value


def dims_from_dimensions(dimensions: int | Sequence[int]) -> list[int]:
    """The old 1-based ``dimensions=`` of :func:`~scglassbox.pl.ranking` as 0-based ``dims``."""
    one_based = [dimensions] if np.ndim(dimensions) == 0 else list(dimensions)
    return [d - 1 if is_integer(d) else d for d in one_based]
