"""Per-cell contribution views shared by ``tl``, ``get`` and ``pl``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData


def parse_view(view: str, n_components: int) -> int | None:
    """Return the dimension index of a ``'dimK'`` view, ``None`` for ``'l2'``/``'normed_l2'``."""
    if view in ("l2", "normed_l2"):
        return None
    if isinstance(view, str) and view.startswith("dim") and view[3:].isdigit():
        d = int(view[3:])
        if 1 <= d <= n_components:
            return d - 1
    dims = ", ".join(f"'dim{i + 1}'" for i in range(n_components))
    raise ValueError(f"view must be 'l2', 'normed_l2' or one of {dims}, got {view!r}.")


def view_of(contrib: np.ndarray, view: str) -> np.ndarray:
    """Reduce ``(n, n_components, n_genes)`` contributions to ``(n, n_genes)`` for a view."""
    dim = parse_view(view, contrib.shape[1])
    if dim is not None:
        return np.asarray(contrib[:, dim, :], dtype=np.float32)
    c = contrib.astype(np.float32, copy=False)
    l2 = np.sqrt(np.einsum("ndg,ndg->ng", c, c))
    if view == "l2":
        return l2
    total = l2.sum(axis=1, keepdims=True)
    return np.divide(l2, total, out=np.zeros_like(l2), where=total > 0)


def str_array(values: object) -> np.ndarray:
    """Names as a plain ``<U`` array (zarr may hand back numpy's variable-width StringDType)."""
    return np.asarray(values, dtype=object).astype(str)


def categorical(adata: AnnData, groupby: str) -> pd.Categorical:
    """``adata.obs[groupby]`` as a categorical in the user's order, unused categories removed."""
    if groupby not in adata.obs.columns:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs.")
    col = adata.obs[groupby]
    cat = col.cat if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category").cat
    return cat.remove_unused_categories().values
