"""``gb.tl.glassbox_umap``: fit on scanpy's neighbour graph and store everything in AnnData."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from anndata import AnnData
from scipy import sparse

from .. import _keys
from .. import _logging as logg
from .._docs import doc_params
from ..get import _access as acc
from ..get._access import MASK_DEFAULT, Expression
from ._pca import scanpy_projection
from ._quality import describe, quality
from ._results import (
    ContributionStorage,
    check_storage,
    contributions_and_summary,
    lazy_contributions,
    resolve_storage,
    write_results,
)


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
) -> tuple[Any, Expression, sparse.csr_matrix, tuple | None, np.ndarray | None, str]:
    """Everything a fit needs: estimator, expression, graph and the encoder's input map.

    When scanpy's PCA is reused, also the encoder's inputs (its check computed them).
    """
    from .._estimator import GlassBoxUMAP

    if isinstance(n_pcs, bool) or not isinstance(n_pcs, numbers.Integral) or n_pcs < 1:
        raise ValueError(f"n_pcs must be an integer >= 1, got {n_pcs!r}.")
    if use_pca not in (None, True, False):
        raise ValueError(f"use_pca must be None, True or False, got {use_pca!r}.")
    est = GlassBoxUMAP(**est_kwargs)
    est._check_params()  # fail before any work
    graph, nn_params = acc.neighbors(adata, neighbors_key)
    expr = acc.expression(adata, layer=layer, use_raw=use_raw, mask_var=mask_var)
    projection, inputs, how = None, None, "the centred genes (no PCA)"
    said = how  # the log line: the reason for a PCA of its own is in the warning, once
    if use_pca is not False:
        reused, why = scanpy_projection(adata, expr, nn_params)
        if reused is not None:
            *projection, inputs = reused
            how, said = why, why.replace("reused ", "", 1)
        elif use_pca or expr.X.shape[1] > n_pcs:
            est.pca_components = min(n_pcs, *expr.X.shape)
            said = f"a PCA of its own ({est.pca_components} components)"
            how = f"{said}, since {why}"
            logg.warning(f"Not reusing scanpy's PCA: {why}. Fitting {said}.")
    logg.info(
        f"glassbox_umap: {expr.X.shape[0]} cells x {expr.X.shape[1]} genes; encoder reads {said}"
    )
    return est, expr, graph, projection, inputs, how


@doc_params
def glassbox_umap(
    adata: AnnData,
    *,
    neighbors_key: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    mask_var: str | np.ndarray | None = MASK_DEFAULT,
    use_pca: bool | None = None,
    n_pcs: int = 50,
    contributions: ContributionStorage = "auto",
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
        Per-cell cache in ``obsm``: ``'auto'`` (``'full'`` up to 256 MiB, else ``'none'``),
        ``'full'`` (float32), ``'float16'`` (half the memory), ``'lazy'`` (a dask array that
        computes, and is written, chunk by chunk) or ``'none'``. The model is the source of
        truth: :func:`scglassbox.get.contributions` returns the same numbers without a cache.
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
        Per-cell contributions ``(n_obs, n_components, n_genes_used)`` when cached (see
        ``contributions``); genes are ``uns[key]['var_names']``.
    ``adata.varm[key + '_contributions']``
        Mean absolute contribution per gene and dimension ``(n_vars, n_components)``; zero
        for genes not used.
    ``adata.uns[key]``
        ``params``, ``var_names``, ``loss_history``, ``exactness``
        (``max|sum of contributions - embedding| / max|embedding|``; with ``'float16'`` also
        ``exactness_stored``, that of the stored values), ``input`` (how the
        encoder reads the genes), ``quality`` (``knn_preservation`` and
        ``trustworthiness`` with 15 neighbours, on a fixed sample of at most 5,000 cells,
        against the representation the graph was built on, e.g. ``obsm['X_pca']``; the same
        two figures under ``'X_umap'`` for ``obsm['X_umap']`` when it exists, to compare) and
        ``model`` (the fitted network as numpy arrays; see
        :meth:`~scglassbox.GlassBoxUMAP.from_adata`).

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> sc.pl.embedding(adata, basis="glassbox_umap", color="bulk_labels")  # doctest: +SKIP
    >>> gb.get.contributions(adata, genes=["CST3"]).shape
    (700, 2, 1)
    """
    check_storage(contributions)
    key = _keys.check_key_added(key_added)
    est, expr, graph, projection, inputs, how = prepare(
        adata, neighbors_key=neighbors_key, layer=layer, use_raw=use_raw, mask_var=mask_var,
        use_pca=use_pca, n_pcs=n_pcs, min_dist=min_dist, spread=spread,
        n_components=n_components, encoder=encoder, epochs=epochs,
        random_state=random_state, quiet=quiet, **kwargs,
    )  # fmt: skip
    storage = resolve_storage(contributions, expr.X.shape[0], n_components, expr.X.shape[1])
    est._fit(expr.X, graph=graph, projection=projection, inputs=inputs)
    train_device = getattr(est, "_train_device", None)  # a GPU: the pass runs there too
    est.encoder_.to(train_device or "cpu")
    try:
        emb, contrib, summary, exact = contributions_and_summary(est, expr.X, storage=storage)
    finally:
        est.encoder_.cpu()
    fit_quality = quality(adata, acc.neighbors(adata, neighbors_key)[1], emb)
    model = est.to_dict()
    model["var_names"] = expr.var_names
    uns = {
        "params": {
            **{k: v for k, v in model["params"].items() if k != "random_state"},
            "random_state": -1 if random_state is None else int(random_state),
            "encoder": str(est.encoder) if isinstance(est.encoder, str) else "custom",
            "neighbors_key": _keys.neighbors_key(neighbors_key),
            # The graph is scanpy's: record its settings, not the estimator's unused defaults.
            **{
                k: acc.scalar(v)
                for k, v in acc.neighbors(adata, neighbors_key)[1].items()
                if k in ("n_neighbors", "metric")
            },
            "contributions": storage,
            "source": expr.source,
        },
        "var_names": expr.var_names,
        "loss_history": est.loss_history_,
        **{k: float(v) for k, v in exact.items()},
        "input": how,
        "quality": fit_quality,
        "model": model,
    }
    logg.info(f"glassbox_umap: exactness {exact['exactness']:.2e} (max relative error)")
    logg.info(f"glassbox_umap: {describe(fit_quality)}")
    if copy:
        adata = adata.copy()
    if storage == "lazy":
        view, _ = acc.aligned_expression(adata, expr.var_names, expr.source)
        contrib = lazy_contributions(est, view)
    write_results(adata, key, emb=emb, contrib=contrib, summary=summary, uns=uns)
    return adata if copy else None
