"""Accessors for what :func:`scglassbox.tl.glassbox_umap` and friends stored."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import doc_params
from .._views import contributions, key_info, str_array, view_of


@doc_params
def contribution_view(
    adata: AnnData, view: str = "l2", *, key: str = "glassbox_umap"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell contributions reduced to one value per cell and gene.

    Parameters
    ----------
    {adata}
    {view}
    {key}

    Returns
    -------
    ``(values, genes)``: a ``(n_obs, n_genes_used)`` float32 array and the gene names.
    """
    stored = np.asarray(contributions(adata, key))
    return view_of(stored, view), str_array(key_info(adata, key)["var_names"])


@doc_params
def contributions_df(
    adata: AnnData, view: str = "l2", *, key: str = "glassbox_umap", genes: list[str] | None = None
) -> pd.DataFrame:
    """Per-cell contributions as a cells x genes DataFrame (index: ``obs_names``).

    Parameters
    ----------
    {adata}
    {view}
    {key}
    genes
        Keep only these genes (in this order).
    """
    values, names = contribution_view(adata, view, key=key)
    df = pd.DataFrame(values, index=adata.obs_names, columns=names)
    if genes is not None:
        missing = [g for g in genes if g not in df.columns]
        if missing:
            raise KeyError(f"genes not among the model's genes: {missing}")
        df = df[list(genes)]
    return df


@doc_params
def gene_importance_df(adata: AnnData, *, key: str = "glassbox_umap") -> pd.DataFrame:
    """Global per-gene importance: mean absolute contribution per embedding dimension.

    Parameters
    ----------
    {adata}
    {key}

    Returns
    -------
    One row per gene used, columns ``dim1``, ``dim2``, ... and ``total`` (their sum), sorted
    by ``total`` in decreasing order.
    """
    genes = str_array(key_info(adata, key)["var_names"])
    varm = np.asarray(adata.varm[f"{key}_contributions"])
    pos = adata.var_names.get_indexer(genes)
    genes, rows = genes[pos >= 0], varm[pos[pos >= 0]]
    df = pd.DataFrame(rows, index=pd.Index(genes, name="gene"),
                      columns=[f"dim{i + 1}" for i in range(rows.shape[1])])  # fmt: skip
    df["total"] = df.sum(axis=1)
    return df.sort_values("total", ascending=False)


@doc_params
def group_contributions(
    adata: AnnData,
    groupby: str | None = None,
    *,
    key: str = "glassbox_umap",
    uns_key: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-group mean contributions and their standard errors as genes x groups DataFrames.

    Parameters
    ----------
    {adata}
    groupby
        The ``groupby`` of :func:`~scglassbox.tl.rank_contributions`.
    {key}
    uns_key
        Read this ``uns`` entry instead, e.g. the result of
        :func:`~scglassbox.tl.glassbox_ensemble` (``'glassbox_ensemble_' + groupby``).

    Returns
    -------
    ``(mean, sem)``.
    """
    ukey = uns_key or f"{key}_rank_{groupby}"
    if ukey not in adata.uns:
        raise KeyError(
            f"adata.uns[{ukey!r}] not found: "
            f"run gb.tl.rank_contributions(adata, {groupby!r}) first."
        )
    res = adata.uns[ukey]
    genes, groups = str_array(res["genes"]), str_array(res["groups"])
    mean = pd.DataFrame(np.asarray(res["mean"]).T, index=genes, columns=groups)
    sem = pd.DataFrame(np.asarray(res["sem"]).T, index=genes, columns=groups)
    return mean, sem


@doc_params
def rank_contributions_df(
    adata: AnnData,
    groupby: str,
    *,
    group: str | list[str] | None = None,
    key: str = "glassbox_umap",
    n_genes: int | None = None,
    uns_key: str | None = None,
) -> pd.DataFrame:
    """Tidy per-group gene ranking stored by :func:`~scglassbox.tl.rank_contributions`.

    Parameters
    ----------
    {adata}
    groupby
        The ``groupby`` used for the ranking.
    group
        One or more groups (default: all).
    {key}
    n_genes
        Top genes per group (default: all).
    uns_key
        As for :func:`group_contributions`.

    Returns
    -------
    Columns ``group``, ``rank`` (1 = largest), ``gene``, ``mean``, ``sem``.
    """
    mean, sem = group_contributions(adata, groupby, key=key, uns_key=uns_key)
    groups = list(mean.columns) if group is None else ([group] if isinstance(group, str) else group)
    frames = []
    for g in groups:
        if g not in mean.columns:
            raise KeyError(f"group {g!r} not in {list(mean.columns)}.")
        order = mean[g].sort_values(ascending=False).index[:n_genes]
        frames.append(pd.DataFrame({
            "group": g, "rank": np.arange(1, len(order) + 1), "gene": order,
            "mean": mean.loc[order, g].to_numpy(), "sem": sem.loc[order, g].to_numpy(),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)
