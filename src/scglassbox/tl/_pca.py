"""Reuse scanpy's PCA as the encoder's fixed input map, when it reproduces the graph's input."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from .._chunks import INFERENCE_CELLS
from .._contributions import InputMap, column_mean
from ..get._access import Expression

#: |(x - mean) @ PCs - X_pca| / max|X_pca| above this means scanpy's PCA cannot be reused.
PCA_MATCH_RTOL = 1e-3


def _rep_of_graph(adata: AnnData, params: dict) -> tuple[str | None, int | None]:
    """Which obsm key scanpy built the graph on (None: ``.X``), and how many PCs."""
    use_rep, n_pcs = params.get("use_rep"), params.get("n_pcs")
    if use_rep is None:
        if adata.n_vars <= 50:
            return None, None
        use_rep = "X_pca" if "X_pca" in adata.obsm else "pca"
    if use_rep == "X":
        return None, None
    return str(use_rep), None if n_pcs is None else int(n_pcs)


def scanpy_projection(
    adata: AnnData, expr: Expression, params: dict
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray] | None, str]:
    """Reuse scanpy's PCA as the encoder's input map when that is exact; else say why not.

    scanpy never stores the centring mean, so it is recomputed from the expression and the
    projection ``(x - mean) @ PCs`` is checked against the stored scores. Returns
    ``(mean, components, inputs)`` (``inputs``: that projection, float32, the encoder's
    input) and a sentence, or ``None`` and why not.
    """
    rep, n_pcs = _rep_of_graph(adata, params)
    if rep is None:
        return None, "the neighbour graph was built on .X, not on a PCA"
    if rep not in ("X_pca", "pca") or rep not in adata.obsm:
        return None, f"the neighbour graph was built on obsm[{rep!r}], which is not a PCA"
    loadings_key = "PCs" if "PCs" in adata.varm else None
    if loadings_key is None:
        return None, "varm['PCs'] (the PCA loadings) is missing"
    scores = np.asarray(adata.obsm[rep], dtype=np.float64)
    k = scores.shape[1] if n_pcs is None else min(n_pcs, scores.shape[1])
    # Compare centred scores: a subset of the cells a PCA was fitted on has another mean,
    # which shifts all its scores by one vector and leaves the neighbour graph unchanged.
    scores = scores[:, :k] - scores[:, :k].mean(axis=0)
    if expr.source == "raw":
        return None, "contributions use .raw, but scanpy's PCA was computed on .X"
    pcs = np.asarray(adata.varm[loadings_key])[:, :k]
    # Some files store NaN (not 0) loadings for genes outside the PCA's mask.
    outside = ~expr.var_mask & (np.nan_to_num(np.abs(pcs)).sum(axis=1) > 0)
    if outside.any():
        return None, f"{int(outside.sum())} genes with PCA loadings are outside mask_var"
    components = pcs[expr.var_mask].astype(np.float32)
    if not np.isfinite(components).all():
        return None, "varm['PCs'] holds NaN or infinite loadings for genes in mask_var"
    mean = column_mean(expr.X)
    imap = InputMap(mean, components)
    err, top = 0.0, np.abs(scores).max()
    # The projection is the encoder's input: kept, so the fit does not compute it again.
    inputs = np.empty((expr.X.shape[0], k), dtype=np.float32)
    for rows, _, z in imap.chunks(expr.X, INFERENCE_CELLS):
        err = max(err, float(np.abs(z - scores[rows]).max()))
        inputs[rows] = z
    if not err <= PCA_MATCH_RTOL * top:  # also catches NaN
        return None, (
            f"(x - mean) @ varm['PCs'] differs from obsm[{rep!r}] by {err / top:.1e} (relative): "
            f"the PCA was computed on other values than {expr.source} (scaled or changed since?)"
        )
    return (imap.mean, components, inputs), f"reused scanpy's PCA (obsm[{rep!r}], {k} components)"
