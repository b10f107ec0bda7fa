"""Neighbours for users who have none yet (CLI, tutorials), with a known scanpy pitfall fixed."""

from __future__ import annotations

import scanpy as sc
from anndata import AnnData

from . import _logging


def ensure_neighbors(adata: AnnData, *, n_pcs: int = 50, n_neighbors: int = 15) -> bool:
    """Compute PCA and ``sc.pp.neighbors`` with scanpy's defaults when missing.

    Returns whether anything was computed. scanpy 1.11 with pynndescent 0.7 fails from 8,192
    cells up (``'csr_array' object has no attribute 'getnnz'``); the package pins
    ``pynndescent<0.7``, and should an incompatible pair still be installed, this falls back
    to scanpy's ``transformer=`` path with an exact kNN search.
    """
    if "neighbors" in adata.uns:
        return False
    if adata.n_vars > 50 and "X_pca" not in adata.obsm:
        _logging.info(f"no PCA found: running sc.pp.pca(n_comps={n_pcs})")
        sc.pp.pca(adata, n_comps=min(n_pcs, adata.n_obs - 1, adata.n_vars - 1))
    _logging.info(f"no neighbour graph found: running sc.pp.neighbors(n_neighbors={n_neighbors})")
    try:
        sc.pp.neighbors(adata, n_neighbors=n_neighbors)
    except AttributeError as e:
        if "getnnz" not in str(e):
            raise
        from sklearn.neighbors import KNeighborsTransformer

        _logging.warning(f"scanpy/pynndescent mismatch ({e}): using an exact kNN search instead.")
        sc.pp.neighbors(
            adata,
            n_neighbors=n_neighbors,
            transformer=KNeighborsTransformer(n_neighbors=n_neighbors, mode="distance"),
        )
    return True
