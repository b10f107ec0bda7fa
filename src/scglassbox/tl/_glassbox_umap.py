"""``gb.tl.glassbox_umap``: fit on scanpy's neighbour graph and store everything in AnnData."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from anndata import AnnData
from scipy import sparse

from .._contributions import InputMap, column_mean, exactness, stream_contributions
from .._docs import doc_params
from .._estimator import GlassBoxUMAP

logger = logging.getLogger(__name__)

ContributionStorage = Literal["full", "float16", "none"]
#: |(x - mean) @ PCs - X_pca| / max|X_pca| above this means scanpy's PCA cannot be reused.
PCA_MATCH_RTOL = 1e-3
_DEFAULT_MASK = "highly_variable"


@dataclass
class Expression:
    """The expression matrix that contributions are attributed to."""

    X: np.ndarray | sparse.csr_matrix  # (n_obs, n_genes_used)
    var_names: np.ndarray  # genes used, in column order
    var_mask: np.ndarray  # boolean over adata.var_names (or raw's)
    source: str  # 'X', 'raw' or 'layers/<name>'


def _neighbors(adata: AnnData, neighbors_key: str | None) -> tuple[sparse.csr_matrix, dict]:
    nk = neighbors_key or "neighbors"
    if nk not in adata.uns:
        raise ValueError(
            f"No neighbour graph found in adata.uns[{nk!r}]: run sc.pp.neighbors(adata"
            + ("" if neighbors_key is None else f", key_added={nk!r}")
            + ") first."
        )
    conn_key = adata.uns[nk].get("connectivities_key", "connectivities")
    if conn_key not in adata.obsp:
        raise ValueError(f"adata.obsp[{conn_key!r}] (from uns[{nk!r}]) is missing.")
    return sparse.csr_matrix(adata.obsp[conn_key]), dict(adata.uns[nk].get("params", {}))


def _mask(var, mask_var: object) -> np.ndarray:
    n = var.shape[0]
    if mask_var is _DEFAULT_MASK:
        if _DEFAULT_MASK in var.columns:
            return var[_DEFAULT_MASK].to_numpy(bool)
        return np.ones(n, dtype=bool)
    if mask_var is None:
        return np.ones(n, dtype=bool)
    if isinstance(mask_var, str):
        if mask_var not in var.columns:
            raise ValueError(f"mask_var={mask_var!r} is not a column of var.")
        return var[mask_var].to_numpy(bool)
    mask = np.asarray(mask_var)
    if mask.dtype != bool or mask.shape != (n,):
        raise ValueError(f"mask_var must be a column name or a boolean array of length {n}.")
    return mask


def get_expression(
    adata: AnnData, *, layer: str | None, use_raw: bool, mask_var: object
) -> Expression:
    """Select the expression (``.X``, a layer or ``.raw``) and genes that contributions use."""
    if use_raw and layer is not None:
        raise ValueError("Pass either layer or use_raw=True, not both.")
    if use_raw:
        if adata.raw is None:
            raise ValueError("use_raw=True but adata.raw is None.")
        X, var, source = adata.raw.X, adata.raw.var, "raw"
    elif layer is not None:
        if layer not in adata.layers:
            raise ValueError(f"layer {layer!r} not found; available: {list(adata.layers)}.")
        X, var, source = adata.layers[layer], adata.var, f"layers/{layer}"
    else:
        X, var, source = adata.X, adata.var, "X"
    if X is None:
        raise ValueError(f"adata.{source} is empty.")
    mask = _mask(var, mask_var)
    if not mask.any():
        raise ValueError("mask_var selects no genes.")
    X = X[:, mask] if not mask.all() else X
    X = sparse.csr_matrix(X) if sparse.issparse(X) else np.asarray(X)
    return Expression(X, np.asarray(var.index[mask]).astype(str), mask, source)


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
) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """Reuse scanpy's PCA as the encoder's input map when that is exact; else say why not.

    scanpy never stores the centring mean, so it is recomputed from the expression and the
    projection ``(x - mean) @ PCs`` is checked against the stored scores.
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
    for rows, _, z in imap.chunks(expr.X, 8192):
        err = max(err, float(np.abs(z - scores[rows]).max()))
    if not err <= PCA_MATCH_RTOL * top:  # also catches NaN
        return None, (
            f"(x - mean) @ varm['PCs'] differs from obsm[{rep!r}] by {err / top:.1e} (relative): "
            f"the PCA was computed on other values than {expr.source} (scaled or changed since?)"
        )
    return (imap.mean, components), f"reused scanpy's PCA (obsm[{rep!r}], {k} components)"


def contributions_and_summary(
    est: GlassBoxUMAP, X: object, *, storage: ContributionStorage, batch_size: int | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, float]:
    """Embedding, per-cell contributions (as stored), per-gene mean |C| and the exactness.

    Exactness is measured on the float32 contributions before any down-cast.
    """
    n, d, g = X.shape[0], est.n_components, est.n_features_in_
    emb = np.empty((n, d), dtype=np.float32)
    out = None
    if storage != "none":
        dtype = np.float16 if storage == "float16" else np.float32
        out = np.empty((n, d, g), dtype=dtype)
        mib = out.nbytes / 2**20
        logger.info("per-cell contributions take %.1f MiB (%s)", mib, np.dtype(dtype).name)
    abs_sum = np.zeros((g, d), dtype=np.float64)
    worst = 0.0
    for rows, y, c in stream_contributions(
        est.encoder_,
        X,
        est.input_map_,
        batch_size=batch_size or est._inference_batch,
        progress=not est.quiet and n > 50_000,
    ):
        emb[rows] = y
        worst = max(worst, exactness(y, c) * float(np.abs(y).max()))
        abs_sum += np.abs(c).sum(axis=0).T
        if out is not None:
            out[rows] = c
    rel = worst / max(float(np.abs(emb).max()), 1e-30)
    return emb, out, (abs_sum / n).astype(np.float32), rel


def _check_storage(contributions: object) -> None:
    if contributions not in ("full", "float16", "none"):
        raise ValueError(
            f"contributions must be 'full', 'float16' or 'none', got {contributions!r}."
        )


def write_results(
    adata: AnnData,
    key: str,
    *,
    emb: np.ndarray,
    contrib: np.ndarray | None,
    summary: np.ndarray,
    uns: dict,
) -> None:
    """Write every output at once (only after all computation succeeded).

    ``summary`` rows follow ``uns['var_names']``; they are placed in ``varm`` by gene name
    (genes of ``.raw`` or of a reference that ``adata.var`` lacks get no row).
    """
    varm = np.zeros((adata.n_vars, emb.shape[1]), dtype=np.float32)
    pos = adata.var_names.get_indexer(uns["var_names"])
    varm[pos[pos >= 0]] = summary[pos >= 0]
    adata.obsm[f"X_{key}"] = emb
    if contrib is not None:
        adata.obsm[f"{key}_contributions"] = contrib
    elif f"{key}_contributions" in adata.obsm:
        del adata.obsm[f"{key}_contributions"]
    adata.varm[f"{key}_contributions"] = varm
    adata.uns[key] = uns


def prepare(
    adata: AnnData,
    *,
    neighbors_key: str | None,
    layer: str | None,
    use_raw: bool,
    mask_var: object,
    use_pca: bool | None,
    n_pcs: int,
    **est_kwargs: Any,
) -> tuple[GlassBoxUMAP, Expression, sparse.csr_matrix, tuple | None, str]:
    """Everything a fit needs: estimator, expression, graph and the encoder's input map."""
    graph, nn_params = _neighbors(adata, neighbors_key)
    expr = get_expression(adata, layer=layer, use_raw=use_raw, mask_var=mask_var)
    est = GlassBoxUMAP(**est_kwargs)
    est._check_params()  # fail before any work
    projection, how = None, "the centred genes (no PCA)"
    if use_pca is not False:
        projection, why = scanpy_projection(adata, expr, nn_params)
        if projection is not None:
            how = why
        elif use_pca or expr.X.shape[1] > n_pcs:
            logger.warning("Not reusing scanpy's PCA: %s. Fitting a PCA of its own.", why)
            est.pca_components = min(n_pcs, *expr.X.shape)
            how = f"a PCA of its own ({est.pca_components} components), since {why}"
    logger.info("glassbox_umap: %d cells x %d genes; encoder reads %s", *expr.X.shape, how)
    return est, expr, graph, projection, how


@doc_params
def glassbox_umap(
    adata: AnnData,
    *,
    neighbors_key: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    mask_var: str | np.ndarray | None = _DEFAULT_MASK,
    use_pca: bool | None = None,
    n_pcs: int = 50,
    contributions: ContributionStorage = "full",
    min_dist: float = 0.5,
    spread: float = 1.0,
    n_components: int = 2,
    encoder: str = "default",
    epochs: int | None = None,
    random_state: int | None = 0,
    key_added: str | None = None,
    copy: bool = False,
    quiet: bool = False,
    **kwargs: Any,
) -> AnnData | None:
    """Glass-box UMAP on scanpy's neighbour graph, with exact per-gene contributions.

    Reuses the graph of :func:`scanpy.pp.neighbors` (never recomputes it) and, when the graph
    was built on ``X_pca`` and ``varm['PCs']`` reproduces it, scanpy's PCA as the encoder's
    fixed input projection (also on a subset of the cells the PCA was fitted on, whose scores
    differ by a constant shift). Contributions are per gene of the chosen expression, relative to
    the mean cell, and sum exactly to each cell's embedding coordinates.

    Parameters
    ----------
    {adata}
    neighbors_key
        Where the neighbour graph is: ``adata.uns[neighbors_key]`` (default ``'neighbors'``).
    layer
        Attribute contributions to this layer instead of ``.X``.
    use_raw
        Attribute contributions to ``adata.raw``.
    mask_var
        Genes to use: a boolean var column name or mask. Default: ``var['highly_variable']``
        when present, else all genes; ``None`` for all genes.
    use_pca
        ``None``: reuse scanpy's PCA when it reproduces the graph's representation, else fit a
        PCA of ``n_pcs`` components when more than ``n_pcs`` genes are used. ``False``: the
        encoder reads the centred genes directly. ``True``: always a PCA (scanpy's if exact).
    n_pcs
        Components of the PCA fitted here when scanpy's cannot be reused.
    contributions
        Per-cell storage: ``'full'`` (float32), ``'float16'`` (half the memory) or ``'none'``
        (only the per-gene summary in ``varm``).
    min_dist, spread, n_components, encoder, epochs, random_state
        As for :class:`~scglassbox.GlassBoxUMAP` (``min_dist`` defaults to scanpy's 0.5).
    key_added
        Results go under this key (default ``'glassbox_umap'``).
    {copy}
    {quiet}
    **kwargs
        Further :class:`~scglassbox.GlassBoxUMAP` parameters (``lr``, ``batch_size``,
        ``accelerator``, ``trainer_kwargs``...).

    Returns
    -------
    ``adata`` copy if ``copy`` else ``None``; writes

    ``adata.obsm['X_glassbox_umap' | 'X_' + key_added]``
        Embedding, ``(n_obs, n_components)`` float32.
    ``adata.obsm[key + '_contributions']``
        Per-cell contributions ``(n_obs, n_components, n_genes_used)`` (not with
        ``contributions='none'``); genes are ``uns[key]['var_names']``.
    ``adata.varm[key + '_contributions']``
        Mean absolute contribution per gene and dimension ``(n_vars, n_components)``; zero
        for genes not used.
    ``adata.uns[key]``
        ``params``, ``var_names``, ``loss_history``, ``exactness``
        (``max|sum of contributions - embedding| / max|embedding|``), ``input`` (how the
        encoder reads the genes) and
        ``model`` (the fitted network as numpy arrays; see
        :meth:`~scglassbox.GlassBoxUMAP.from_adata`).
    """
    _check_storage(contributions)
    key = key_added or "glassbox_umap"
    est, expr, graph, projection, how = prepare(
        adata, neighbors_key=neighbors_key, layer=layer, use_raw=use_raw, mask_var=mask_var,
        use_pca=use_pca, n_pcs=n_pcs, min_dist=min_dist, spread=spread,
        n_components=n_components, encoder=encoder, epochs=epochs,
        random_state=random_state, quiet=quiet, **kwargs,
    )  # fmt: skip
    est.fit(expr.X, graph=graph, projection=projection)
    emb, contrib, summary, exact = contributions_and_summary(est, expr.X, storage=contributions)
    model = est.to_dict()
    model["var_names"] = expr.var_names
    uns = {
        "params": {
            **{k: v for k, v in model["params"].items() if k != "random_state"},
            "random_state": -1 if random_state is None else int(random_state),
            "encoder": str(est.encoder) if isinstance(est.encoder, str) else "custom",
            "neighbors_key": neighbors_key or "neighbors",
            # The graph is scanpy's: record its settings, not the estimator's unused defaults.
            **{
                k: v.item() if isinstance(v, np.ndarray) and v.size == 1 else v
                for k, v in dict(adata.uns[neighbors_key or "neighbors"].get("params", {})).items()
                if k in ("n_neighbors", "metric")
            },
            "contributions": contributions,
            "source": expr.source,
        },
        "var_names": expr.var_names,
        "loss_history": est.loss_history_,
        "exactness": float(exact),
        "input": how,
        "model": model,
    }
    logger.info("glassbox_umap: exactness %.2e (max relative reconstruction error)", exact)
    if copy:
        adata = adata.copy()
    write_results(adata, key, emb=emb, contrib=contrib, summary=summary, uns=uns)
    return adata if copy else None
