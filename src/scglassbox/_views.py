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
    return l2_view(contrib.astype(np.float32, copy=False), normed=view == "normed_l2")


def l2_view(contrib: np.ndarray, *, normed: bool) -> np.ndarray:
    """L2 norm over embedding dimensions, ``(n, n_genes)``; ``normed``: divided by its row sum.

    Computed in the input's dtype (float64 keeps the PCA back-projection's precision).
    """
    l2 = np.sqrt(np.einsum("ndg,ndg->ng", contrib, contrib))
    if not normed:
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


def key_info(adata: AnnData, key: str) -> dict:
    """``adata.uns[key]``, or an error that says to run :func:`~scglassbox.tl.glassbox_umap`."""
    if key not in adata.uns:
        raise KeyError(
            f"adata.uns[{key!r}] not found: run gb.tl.glassbox_umap(adata"
            + ("" if key == "glassbox_umap" else f", key_added={key!r}")
            + ") first."
        )
    return adata.uns[key]


def contributions(adata: AnnData, key: str) -> np.ndarray:
    """The stored per-cell contributions ``(n_obs, n_components, n_genes_used)``."""
    key_info(adata, key)
    ckey = f"{key}_contributions"
    if ckey not in adata.obsm:
        raise KeyError(
            f"adata.obsm[{ckey!r}] not found: per-cell contributions were not stored "
            "(rerun gb.tl.glassbox_umap with contributions='full' or 'float16')."
        )
    return adata.obsm[ckey]
