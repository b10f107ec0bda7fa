"""``gb.tl.glassbox_transform``: map new cells into a stored embedding (like ``sc.tl.ingest``)."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from anndata import AnnData
from scipy import sparse

from .._docs import doc_params
from .._estimator import GlassBoxUMAP
from .._views import str_array
from ._glassbox_umap import (
    ContributionStorage,
    _check_storage,
    contributions_and_summary,
    write_results,
)

logger = logging.getLogger(__name__)


def _query_matrix(
    adata: AnnData, genes: np.ndarray, source: str, missing_genes: str
) -> tuple[np.ndarray | sparse.csr_matrix, np.ndarray]:
    """The query's expression for the model's genes, in the model's order."""
    if source == "raw":
        if adata.raw is None:
            raise ValueError("The model was fitted on .raw, but the query has no .raw.")
        X, names = adata.raw.X, adata.raw.var_names
    elif source.startswith("layers/"):
        layer = source.split("/", 1)[1]
        if layer not in adata.layers:
            raise ValueError(f"The model was fitted on layer {layer!r}, missing in the query.")
        X, names = adata.layers[layer], adata.var_names
    else:
        X, names = adata.X, adata.var_names
    pos = names.get_indexer(genes)
    missing = genes[pos < 0]
    if missing.size and missing_genes == "error":
        shown = ", ".join(missing[:20]) + (" ..." if missing.size > 20 else "")
        raise ValueError(
            f"{missing.size} of the model's {genes.size} genes are missing from the query: "
            f"{shown}. Pass missing_genes='zero' to treat them as zero expression."
        )
    if missing.size:
        logger.warning("%d model genes are missing from the query; set to 0.", missing.size)
    present = pos >= 0
    if sparse.issparse(X):
        X = sparse.csr_matrix(X)
        cols = sparse.csr_matrix(X[:, pos[present]])
        out = sparse.lil_matrix((X.shape[0], genes.size), dtype=X.dtype)
        out[:, np.flatnonzero(present)] = cols
        return sparse.csr_matrix(out), missing
    out = np.zeros((X.shape[0], genes.size), dtype=np.asarray(X).dtype)
    out[:, present] = np.asarray(X)[:, pos[present]]
    return out, missing


@doc_params
def glassbox_transform(
    adata: AnnData,
    adata_ref: AnnData,
    *,
    key: str = "glassbox_umap",
    missing_genes: Literal["error", "zero"] = "error",
    contributions: ContributionStorage = "full",
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Map new cells into a reference's glass-box embedding, with their contributions.

    The model stored in ``adata_ref.uns[key]`` embeds the query; genes are aligned by name.

    Parameters
    ----------
    adata
        The query cells, with the same kind of expression as the reference (same
        normalisation; the same layer or ``.raw`` the model was fitted on).
    adata_ref
        The reference, on which :func:`~scglassbox.tl.glassbox_umap` was run.
    {key}
    missing_genes
        ``'error'``: fail listing the model genes the query lacks. ``'zero'``: treat them as
        zero expression (their contributions are then relative to the reference mean).
    contributions
        ``'full'``, ``'float16'`` or ``'none'``, as in :func:`~scglassbox.tl.glassbox_umap`.
    key_added
        Results go under this key in the query (default: ``key``).
    {copy}

    Returns
    -------
    ``adata`` copy if ``copy`` else ``None``; writes the same fields as
    :func:`~scglassbox.tl.glassbox_umap` (``obsm['X_' + key]``, ``obsm[key +
    '_contributions']``, ``varm[key + '_contributions']``, ``uns[key]`` with the model and
    ``params['mapped_from_reference'] = True``).
    """
    _check_storage(contributions)
    if missing_genes not in ("error", "zero"):
        raise ValueError(f"missing_genes must be 'error' or 'zero', got {missing_genes!r}.")
    est = GlassBoxUMAP.from_adata(adata_ref, key)
    ref = adata_ref.uns[key]
    genes = str_array(ref["var_names"])
    source = str(ref["params"].get("source", "X"))
    X, missing = _query_matrix(adata, genes, source, missing_genes)
    emb, contrib, summary, exact = contributions_and_summary(est, X, storage=contributions)
    uns = {
        "params": {**dict(ref["params"]), "contributions": contributions,
                   "mapped_from_reference": True, "n_missing_genes": int(missing.size)},
        "var_names": genes,
        "loss_history": np.asarray(ref.get("loss_history", [])),
        "exactness": float(exact),
        "input": str(ref.get("input", "")),
        "model": ref["model"],
    }  # fmt: skip
    if copy:
        adata = adata.copy()
    write_results(adata, key_added or key, emb=emb, contrib=contrib, summary=summary, uns=uns)
    return adata if copy else None
