"""``uns[key]['quality']``: how faithful the map is, against the space the graph was built on."""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from scipy import sparse

from .._quality import MAX_CELLS, N_NEIGHBORS, embedding_quality, sample
from ._pca import _rep_of_graph


def graph_space(adata: AnnData, params: dict) -> tuple[str, object] | None:
    """``(name, matrix)`` of the representation scanpy built the graph on, or ``None``."""
    rep, n_pcs = _rep_of_graph(adata, params)
    if rep is None:
        return "X", adata.X
    if rep not in adata.obsm:
        return None
    rows = adata.obsm[rep]
    if n_pcs is not None:
        rows = np.asarray(rows)[:, :n_pcs]
    return f"obsm[{rep!r}]", rows


def quality(
    adata: AnnData, params: dict, embedding: np.ndarray, space: tuple | None = None
) -> dict:
    """The kNN preservation and trustworthiness of ``embedding`` (and of ``obsm['X_umap']``).

    Both on the same fixed sample of at most :data:`~scglassbox._quality.MAX_CELLS` cells,
    with :data:`~scglassbox._quality.N_NEIGHBORS` neighbours among the sampled cells, in
    ``space`` (``(name, matrix)``; default: the representation the graph was built on).
    """
    space = graph_space(adata, params) if space is None else space
    if space is None:
        return {"note": "the graph's representation is not in obsm: not computed"}
    name, X = space
    idx = sample(adata.n_obs)
    rows = X[idx]
    rows = rows.toarray() if sparse.issparse(rows) else np.asarray(rows, dtype=np.float64)
    if not np.isfinite(rows).all():
        return {"note": f"{name} holds NaN or infinite values: not computed"}
    out: dict = {"representation": name, "max_cells": MAX_CELLS}
    out |= embedding_quality(rows, embedding[idx], n_neighbors=N_NEIGHBORS)
    umap = adata.obsm.get("X_umap")
    if umap is not None and np.shape(umap)[0] == adata.n_obs:
        ref = embedding_quality(rows, np.asarray(umap)[idx], n_neighbors=N_NEIGHBORS)
        out["X_umap"] = {k: ref[k] for k in ("knn_preservation", "trustworthiness")}
    return out


def describe(q: dict) -> str:
    """One line for the log and the CLI."""
    if "note" in q:
        return f"map quality: {q['note']}"
    line = (
        f"map quality ({q['n_neighbors']} neighbours in {q['representation']}, "
        f"{q['n_cells']} cells): kNN preservation {q['knn_preservation']:.3f}, "
        f"trustworthiness {q['trustworthiness']:.3f}"
    )
    if "X_umap" in q:
        u = q["X_umap"]
        line += f" (obsm['X_umap']: {u['knn_preservation']:.3f}, {u['trustworthiness']:.3f})"
    return line
