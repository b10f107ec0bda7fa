"""``gb.tl.glassbox_umap``: fit on scanpy's neighbour graph and store everything in AnnData."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from anndata import AnnData
from scipy import sparse

from .. import _keys
from .. import _logging as logg
from .._docs import doc_params
from .._validation import check_int
from ..get import _access as acc
from ..get._access import MASK_DEFAULT
from ..get._batch import BatchInfo, batch_codes, share_key
from ..get._modalities import Modalities, is_mudata
from ._batch import augment, check_batch
from ._mudata import check_mudata_options, mudata_plan
from ._pca import scanpy_projection
from ._quality import describe, quality
from ._rep import graph_rep, rep_input
from ._results import (
    ContributionStorage,
    check_storage,
    contributions_and_summary,
    lazy_contributions,
    resolve_storage,
    write_results,
)

if TYPE_CHECKING:
    from .._estimator import GlassBoxUMAP


@dataclass
class Plan:
    """What a fit on ``adata`` trains on and attributes to (from :func:`prepare`)."""

    est: GlassBoxUMAP
    graph: sparse.csr_matrix
    X: object  # what the estimator validates: the expression (or the latent representation)
    rows: object  # row blocks contributions are computed from (``X``, or rebuilt expression)
    projection: tuple | None
    inputs: np.ndarray | None  # the encoder's inputs, when already computed
    var_names: np.ndarray
    source: str  # 'X', 'raw', 'layers/<name>' or 'obsm/<rep>'
    on_genes: bool  # False for a latent representation without loadings
    how: str
    batch: BatchInfo | None = None  # with batch_key: its indicator columns come last
    modalities: Modalities | None = None  # a MuData's modalities, in column order

    def with_batch(self, adata: AnnData, batch_key: str) -> Plan:
        """The plan with ``batch_key``'s indicator columns after the features."""
        codes, levels = check_batch(adata, batch_key, self.var_names)
        X, rows, projection, inputs, info = augment(
            self.X, self.rows, self.projection, self.inputs, self.est.pca_components,
            self.est.random_state, codes, batch_key, levels,
        )  # fmt: skip
        self.est.pca_components = None  # fitted on the genes alone, inside the projection
        how = f"{self.how}, plus one indicator column per {batch_key} ({len(levels)} batches)"
        return Plan(self.est, self.graph, X, rows, projection, inputs,
                    np.concatenate([self.var_names, info.names]), self.source, self.on_genes,
                    how, info)  # fmt: skip


def _check_use_rep(adata: AnnData, use_rep: object, nn_params: dict, source: str) -> str | None:
    """The ``obsm`` key the encoder reads, or ``None`` for the expression; say when guessed."""
    if use_rep == "X":
        return None
    if use_rep is not None:
        if not isinstance(use_rep, str):
            raise ValueError(f"use_rep must be an obsm key, 'X' or None, got {use_rep!r}.")
        if use_rep not in adata.obsm:
            raise KeyError(f"use_rep={use_rep!r} is not in adata.obsm (keys: {list(adata.obsm)}).")
        built_on = graph_rep(nn_params)
        if built_on is not None and built_on != use_rep:
            logg.warning(
                f"the neighbour graph was built on obsm[{built_on!r}] but the encoder reads "
                f"obsm[{use_rep!r}]: the map follows the graph."
            )
        return use_rep
    # By default a corrected PCA that the graph was built on (Harmony and the like): the
    # encoder then reads what the graph saw, and explanations leave out what was corrected.
    built_on = graph_rep(nn_params)
    if (
        built_on is None
        or built_on not in adata.obsm
        or source != "X"
        or "PCs" not in adata.varm
        or np.shape(adata.obsm[built_on])[1:] != (adata.varm["PCs"].shape[1],)
    ):
        return None
    logg.info(
        f"glassbox_umap: the graph was built on obsm[{built_on!r}], as wide as the PCA in "
        "varm['PCs']: reading it as a corrected PCA (use_rep='X' reads the expression instead)."
    )
    return built_on


def prepare(adata: AnnData, *, batch_key: str | None = None, **kwargs: Any) -> Plan:
    """Everything a fit needs: estimator, graph, what the encoder reads, what it explains.

    ``kwargs`` are those of :func:`_plan` (the data options and the estimator's parameters).
    When scanpy's PCA is reused, also the encoder's inputs (its check computed them).
    With ``batch_key``, the batch's indicator columns follow the features (:func:`augment`).
    """
    if batch_key is not None:
        batch_codes(adata, batch_key)  # a wrong column fails before any work
    plan = _plan(adata, **kwargs)
    return plan if batch_key is None else plan.with_batch(adata, batch_key)


def _plan_mudata(
    mdata: object,
    *,
    neighbors_key: str | None,
    n_pcs: int,
    modalities: Sequence[str] | None,
    **est_kwargs: Any,
) -> Plan:
    """:func:`prepare` for a MuData: every modality's features side by side."""
    from .._estimator import GlassBoxUMAP

    check_int(n_pcs, "n_pcs", min=1)

    est = GlassBoxUMAP(**est_kwargs)
    est._check_params()
    graph, nn_params = acc.neighbors(mdata, neighbors_key)
    X, rows, projection, inputs, names, mods, how = mudata_plan(
        mdata, params=nn_params, est=est, n_pcs=n_pcs, modalities=modalities
    )
    return Plan(est, graph, X, rows, projection, inputs, names, "mudata", True, how,
                modalities=mods)  # fmt: skip


def _plan(
    adata: AnnData,
    *,
    neighbors_key: str | None,
    layer: str | None,
    use_raw: bool,
    mask_var: object,
    use_pca: bool | None,
    n_pcs: int,
    use_rep: str | None = None,
    rep_loadings: object = "auto",
    **est_kwargs: Any,
) -> Plan:
    """:func:`prepare` without the batch."""
    from .._estimator import GlassBoxUMAP

    check_int(n_pcs, "n_pcs", min=1)
    if use_pca not in (None, True, False):
        raise ValueError(f"use_pca must be None, True or False, got {use_pca!r}.")
    est = GlassBoxUMAP(**est_kwargs)
    est._check_params()  # fail before any work
    graph, nn_params = acc.neighbors(adata, neighbors_key)
    src = acc.source_name(layer, use_raw)
    rep = _check_use_rep(adata, use_rep, nn_params, src)
    if rep is not None:
        if use_pca is not None:
            raise ValueError(f"use_pca applies to the expression; use_rep={rep!r} is read as is.")
        r = rep_input(adata, rep, rep_loadings=rep_loadings, source=src, mask_var=mask_var)
        logg.info(f"glassbox_umap: {r.X.shape[0]} cells; encoder reads {r.how}")
        return Plan(est, graph, r.X, r.source, r.projection, r.inputs, r.var_names,
                    f"obsm/{rep}", r.on_genes, r.how)  # fmt: skip
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
            hint = ""
            if graph_rep(nn_params) in adata.obsm:
                hint = (
                    f" Explanations are of the uncorrected expression: use_rep="
                    f"{graph_rep(nn_params)!r} reads that representation instead."
                )
            logg.warning(f"Not reusing scanpy's PCA: {why}. Fitting {said}.{hint}")
    logg.info(
        f"glassbox_umap: {expr.X.shape[0]} cells x {expr.X.shape[1]} genes; encoder reads {said}"
    )
    return Plan(est, graph, expr.X, expr.X, projection, inputs, expr.var_names, expr.source,
                True, how)  # fmt: skip


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
    use_rep: str | None = None,
    rep_loadings: str | None = "auto",
    batch_key: str | None = None,
    modalities: Sequence[str] | None = None,
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
    use_rep
        An ``obsm`` key for the encoder to read instead of the expression, e.g. an integrated
        representation (``'X_pca_harmony'``, ``'X_scVI'``); ``'X'`` for the expression.
        ``None``: the representation the graph was built on when it is a corrected PCA (as
        wide as ``varm['PCs']``), else the expression. A corrected PCA is read through its
        loadings (see ``rep_loadings``): contributions are per gene of the corrected
        expression ``mean + V z``, so batch effects that the integration removed do not
        reappear in them; they sum exactly to the map. Any other representation is read as
        is, and contributions are per dimension of it (``<rep>_1``, ``<rep>_2``...), not per
        gene. See :doc:`/tutorials/04_multi_batch`.
    rep_loadings
        ``varm`` key of ``use_rep``'s gene loadings. ``'auto'``: ``'PCs'`` when it is as wide
        as the representation. ``None``: read it as a latent space without loadings.
    batch_key
        An ``obs`` column of batches (samples, donors) for the encoder to read besides the
        genes, as one indicator column per batch. Each cell's coordinates then split exactly
        into its genes' contributions plus a *batch term* (what its batch adds): see
        :func:`scglassbox.get.batch_contributions` and ``obs[key + '_batch_share']``. For
        graph-only integration (BBKNN) or an uncorrected graph; with a corrected
        representation prefer ``use_rep``. Cells mapped later must come from these batches.
    modalities
        For a :class:`mudata.MuData`: the modalities to read (default: all). Each modality is
        read from its own ``.X`` (its ``var['highly_variable']`` genes when present; its PCA
        when that reproduces what its graph was built on, else a PCA of ``n_pcs`` components
        when it has more features, else its centred features), each block scaled to the same
        total variance; the graph is the MuData's (``mdata.obsp``, e.g. muon's WNN). Results
        go to ``mdata.obsm``/``mdata.uns``/``mdata.varm``, and
        :func:`scglassbox.get.modality_contributions` splits each cell's coordinates exactly
        into one term per modality. ``layer``, ``use_raw``, ``mask_var``, ``use_pca``,
        ``use_rep`` and ``batch_key`` apply to an AnnData only.
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
    est_kwargs = dict(min_dist=min_dist, spread=spread, n_components=n_components,
                      encoder=encoder, epochs=epochs, random_state=random_state, quiet=quiet,
                      **kwargs)  # fmt: skip
    if is_mudata(adata):
        check_mudata_options(
            layer=(layer, None), use_raw=(use_raw, False), mask_var=(mask_var, MASK_DEFAULT),
            use_pca=(use_pca, None), use_rep=(use_rep, None), batch_key=(batch_key, None),
        )  # fmt: skip
        plan = _plan_mudata(adata, neighbors_key=neighbors_key, n_pcs=n_pcs,
                            modalities=modalities, **est_kwargs)  # fmt: skip
    elif modalities is not None:
        raise ValueError("modalities= applies to a MuData; adata is an AnnData.")
    else:
        plan = prepare(
            adata, neighbors_key=neighbors_key, layer=layer, use_raw=use_raw,
            mask_var=mask_var, use_pca=use_pca, n_pcs=n_pcs, use_rep=use_rep,
            rep_loadings=rep_loadings, batch_key=batch_key, **est_kwargs,
        )  # fmt: skip
    est, n_obs, n_features = plan.est, *plan.rows.shape
    storage = resolve_storage(contributions, n_obs, n_components, n_features)
    est._fit(plan.X, graph=plan.graph, projection=plan.projection, inputs=plan.inputs)
    share, share_cols = None, None
    if plan.batch is not None:
        share = np.empty(n_obs, dtype=np.float32)
        share_cols = plan.batch.columns(n_features)
    train_device = getattr(est, "_train_device", None)  # a GPU: the pass runs there too
    est.encoder_.to(train_device or "cpu")
    try:
        emb, contrib, summary, exact = contributions_and_summary(
            est, plan.rows, storage=storage, share_cols=share_cols, share_out=share
        )
    finally:
        est.encoder_.cpu()
    space = None
    if plan.modalities is not None:  # no one matrix of the MuData: the scaled blocks
        space = ("the modalities' inputs, scaled", plan.inputs)
    fit_quality = quality(adata, acc.neighbors(adata, neighbors_key)[1], emb, space=space)
    model = est.to_dict()
    model["var_names"] = plan.var_names
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
            "source": plan.source,
            "batch_key": "none" if plan.batch is None else plan.batch.key,
        },
        "var_names": plan.var_names,
        "loss_history": est.loss_history_,
        **{k: float(v) for k, v in exact.items()},
        "input": plan.how,
        "quality": fit_quality,
        "model": model,
    }
    logg.info(f"glassbox_umap: exactness {exact['exactness']:.2e} (max relative error)")
    logg.info(f"glassbox_umap: {describe(fit_quality)}")
    if copy:
        adata = adata.copy()
    if plan.modalities is not None:
        uns["modalities"] = plan.modalities.to_dict()
    if plan.batch is not None:
        uns["batch"] = {**plan.batch.to_dict(), "importance": summary[share_cols]}
        logg.info(
            f"glassbox_umap: the batch term is {float(np.median(share)):.1%} of a cell's "
            f"explanation (median; obs[{share_key(key)!r}])"
        )
    if not plan.on_genes:  # per latent dimension: no row of var to hold it
        uns["importance"], summary = summary, None
    if storage == "lazy":
        # The caller's copy, read as any stored model is (genes or obsm[rep], then the batch).
        contrib = lazy_contributions(est, acc.model_rows(adata, uns, key))
    write_results(adata, key, emb=emb, contrib=contrib, summary=summary, uns=uns, share=share)
    return adata if copy else None
