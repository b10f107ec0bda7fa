"""``gb.tl.glassbox_transform``: map new cells into a stored embedding (like ``sc.tl.ingest``)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from anndata import AnnData
from scipy import sparse

from .. import _keys
from .. import _logging as logg
from .._docs import doc_params
from ..get import _access as acc
from ..get._batch import WithBatch, batch_codes, batch_of
from ._results import (
    ContributionStorage,
    check_storage,
    contributions_and_summary,
    lazy_contributions,
    resolve_storage,
    write_results,
)

#: ``missing_genes='zero'`` refuses a query that lacks more than this share of the model's
#: genes: with most genes set to the reference mean every cell lands near one point.
MAX_MISSING_SHARE = 0.5


def _query_matrix(
    adata: AnnData, genes: np.ndarray, source: str, missing_genes: str
) -> tuple[np.ndarray | sparse.csr_matrix, np.ndarray]:
    """The query's expression for the model's genes in the model's order, checked."""
    view, missing = acc.aligned_expression(adata, genes, source, missing=missing_genes)
    if missing.size > MAX_MISSING_SHARE * genes.size:
        raise ValueError(
            f"{missing.size} of the model's {genes.size} genes are missing from the query "
            f"(more than {MAX_MISSING_SHARE:.0%}): its cells would collapse towards one point. "
            "Is the query annotated with the same gene names (symbols vs. Ensembl IDs)?"
        )
    if missing.size:
        logg.warning(f"{missing.size} model genes are missing from the query; set to 0.")
    if view.shape[0] == 0:
        raise ValueError("the query holds no cells.")
    X = view.materialise()
    acc.check_finite(X, source)  # what the float32 encoder will see
    return X, missing


@doc_params
def glassbox_transform(
    adata: AnnData,
    adata_ref: AnnData,
    *,
    key: str = _keys.DEFAULT_KEY,
    missing_genes: Literal["error", "zero"] = "error",
    contributions: ContributionStorage = "auto",
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Map new cells into a reference's glass-box embedding, with their contributions.

    The model stored in ``adata_ref.uns[key]`` embeds the query; genes are aligned by name.

    Parameters
    ----------
    adata
        The query cells, with the same kind of expression as the reference (same
        normalisation; the same layer or ``.raw`` the model was fitted on); for a reference
        MuData, a MuData with the same modalities (features aligned by name in each). A model
        fitted with ``use_rep`` reads the query's ``obsm[use_rep]``: the query's cells in the
        same integrated space (e.g. Harmony run on reference and query together, or a reference
        mapping such as symphony's); the query's expression is not read.
    adata_ref
        The reference, on which :func:`~scglassbox.tl.glassbox_umap` was run.
    {key}
    missing_genes
        ``'error'``: fail listing the model genes the query lacks. ``'zero'``: treat them as
        zero expression (their contributions are then relative to the reference mean).
    contributions
        Per-cell cache, as in :func:`~scglassbox.tl.glassbox_umap` (default ``'auto'``).
    key_added
        Results go under this key in the query (default: ``key``).
    {copy}

    Returns
    -------
    ``adata`` copy if ``copy`` else ``None``; writes the same fields as
    :func:`~scglassbox.tl.glassbox_umap` (``obsm['X_' + key]``, ``obsm[key +
    '_contributions']``, ``varm[key + '_contributions']``, ``uns[key]`` with the model and
    ``params['mapped_from_reference'] = True``).

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> ref = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(ref)
    >>> query = ref[:100].copy()  # new cells, same genes and normalisation
    >>> gb.tl.glassbox_transform(query, ref)
    >>> query.obsm["X_glassbox_umap"].shape
    (100, 2)
    """
    check_storage(contributions)
    if missing_genes not in ("error", "zero"):
        raise ValueError(f"missing_genes must be 'error' or 'zero', got {missing_genes!r}.")
    out_key = _keys.check_key_added(key_added or key)
    from .._estimator import GlassBoxUMAP

    est = GlassBoxUMAP.from_adata(adata_ref, key)
    ref = adata_ref.uns[key]
    genes = acc.gene_names(adata_ref, key)  # checked against the model's own list
    source = acc.source(adata_ref, key)
    batch = batch_of(ref)
    if source.startswith("obsm/"):  # the query's own integrated representation
        X = acc.model_rows(adata, ref, key)
        missing = np.empty(0, dtype=str)
        if X.shape[0] == 0:
            raise ValueError("the query holds no cells.")
    elif source == "mudata":  # each of the query's modalities, aligned by feature name
        X = acc.model_rows(adata, ref, key, missing=missing_genes)
        missing = X.absent
        if X.shape[0] == 0:
            raise ValueError("the query holds no cells.")
    else:
        n_genes = genes.size - (0 if batch is None else len(batch.levels))
        X, missing = _query_matrix(adata, genes[:n_genes], source, missing_genes)
        if batch is not None:
            codes = batch_codes(adata, batch.key, batch.levels)
            X = WithBatch(acc.ColumnView(X, np.arange(X.shape[1])), codes, batch)
    share = None if batch is None else np.empty(X.shape[0], dtype=np.float32)
    storage = resolve_storage(contributions, X.shape[0], est.n_components, genes.size)
    share_cols = None if batch is None else batch.columns(genes.size)
    emb, contrib, summary, exact = contributions_and_summary(
        est, X, storage=storage, share_cols=share_cols, share_out=share
    )
    uns = {
        "params": {**dict(ref["params"]), "contributions": storage,
                   "mapped_from_reference": True, "n_missing_genes": int(missing.size)},
        "var_names": genes,
        "loss_history": np.asarray(ref.get("loss_history", [])),
        **{k: float(v) for k, v in exact.items()},
        "input": str(acc.scalar(ref.get("input", ""))),
        # A copy: the query must not share (and so edit) the reference's arrays.
        "model": copy_tree(ref["model"]),
    }  # fmt: skip
    if copy:
        adata = adata.copy()
    if batch is not None:
        uns["batch"] = {**batch.to_dict(), "importance": summary[share_cols]}
    if "modalities" in ref:
        uns["modalities"] = copy_tree(ref["modalities"])
    if "importance" in ref:  # a latent representation: per dimension, not per gene
        uns["importance"], summary = summary, None
    if storage == "lazy":
        contrib = lazy_contributions(est, acc.model_rows(adata, uns, key, missing=missing_genes))
    write_results(adata, out_key, emb=emb, contrib=contrib, summary=summary, uns=uns, share=share)
    return adata if copy else None


def copy_tree(block: dict) -> dict:
    """A deep copy of a model block (dicts and arrays; other values are immutable)."""
    return {
        k: copy_tree(v) if isinstance(v, dict) else (v.copy() if isinstance(v, np.ndarray) else v)
        for k, v in block.items()
    }
