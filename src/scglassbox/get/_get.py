"""Accessors for what :func:`scglassbox.tl.glassbox_umap` and friends stored."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys
from .._docs import doc_params
from ._access import gene_names, key_info, str_array
from ._batch import batch_of
from ._contributions import contribution_view


@doc_params
def contributions_df(
    adata: AnnData,
    view: str = "l2",
    *,
    key: str = _keys.DEFAULT_KEY,
    genes: list[str] | None = None,
) -> pd.DataFrame:
    """Per-cell contributions as a cells x genes DataFrame (index: ``obs_names``).

    Parameters
    ----------
    {adata}
    {view}
    {key}
    genes
        Keep only these genes (in this order).

    Returns
    -------
    Cells x genes float32 values of ``view``, from the stored cache or the model.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> df = gb.get.contributions_df(adata, "l2", genes=["CST3", "NKG7"])
    >>> df.shape
    (700, 2)
    >>> df.head()  # doctest: +SKIP
    """
    values, names = contribution_view(adata, view, key, genes=genes)
    return pd.DataFrame(values, index=adata.obs_names, columns=names)


@doc_params
def gene_importance_df(adata: AnnData, *, key: str = _keys.DEFAULT_KEY) -> pd.DataFrame:
    """Global per-gene importance: mean absolute contribution per embedding dimension.

    Parameters
    ----------
    {adata}
    {key}

    Returns
    -------
    One row per gene used, columns ``dim1``, ``dim2``, ... and ``total`` (their sum), sorted
    by ``total`` in decreasing order.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> df = gb.get.gene_importance_df(adata)
    >>> list(df.columns)
    ['dim1', 'dim2', 'total']
    >>> df.head()  # doctest: +SKIP
    """
    genes = gene_names(adata, key)
    vkey = _keys.contributions_key(key)
    info = key_info(adata, key)
    if "importance" in info:  # a latent use_rep: its features are not genes of var
        rows = np.asarray(info["importance"])
    elif vkey in adata.varm:
        pos = adata.var_names.get_indexer(genes)
        genes, rows = genes[pos >= 0], np.asarray(adata.varm[vkey])[pos[pos >= 0]]
        batch = batch_of(info)
        if batch is not None:  # batch_key's features: no var row, their summary is in uns
            genes = np.concatenate([genes, batch.names])
            rows = np.concatenate([rows, np.asarray(info["batch"]["importance"], rows.dtype)])
    else:
        raise KeyError(f"adata.varm[{vkey!r}] not found: run gb.tl.glassbox_umap(adata) first.")
    df = pd.DataFrame(rows, index=pd.Index(genes, name="gene"),
                      columns=[f"dim{i + 1}" for i in range(rows.shape[1])])  # fmt: skip
    df["total"] = df.sum(axis=1)
    return df.sort_values("total", ascending=False)


@doc_params
def group_contributions(
    adata: AnnData,
    groupby: str | None = None,
    *,
    key: str = _keys.DEFAULT_KEY,
    uns_key: str | None = None,
    reference: str | None = None,
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
    reference
        The ``reference`` of a :func:`~scglassbox.tl.rank_contributions` comparison: its
        result is stored under a key of its own.

    Returns
    -------
    ``(mean, sem)``.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.tl.rank_contributions(adata, "bulk_labels")
    >>> mean, sem = gb.get.group_contributions(adata, "bulk_labels")
    >>> mean["CD19+ B"].nlargest(3)  # doctest: +SKIP
    """
    res = ranking_result(adata, groupby, key=key, uns_key=uns_key, reference=reference)
    return genes_by_groups(res, "mean"), genes_by_groups(res, "sem")


def ranking_result(
    adata: AnnData,
    groupby: str | None,
    *,
    key: str,
    uns_key: str | None,
    reference: str | None,
) -> dict:
    """The ``uns`` entry of a ranking, or a :class:`KeyError` that says how to make it."""
    ukey = uns_key or _keys.rank_key(key, groupby, reference)
    if ukey not in adata.uns:
        ref = "" if reference is None else f", reference={reference!r}"
        raise KeyError(
            f"adata.uns[{ukey!r}] not found: "
            f"run gb.tl.rank_contributions(adata, {groupby!r}{ref}) first."
        )
    return adata.uns[ukey]


def genes_by_groups(res: dict, field: str) -> pd.DataFrame:
    """A ``(groups, genes)`` array of a ranking result as a genes x groups DataFrame."""
    genes, groups = str_array(res["genes"]), str_array(res["groups"])
    return pd.DataFrame(np.asarray(res[field]).T, index=genes, columns=groups)


@doc_params
def rank_contributions_df(
    adata: AnnData,
    groupby: str,
    *,
    group: str | list[str] | None = None,
    key: str = _keys.DEFAULT_KEY,
    n_genes: int | None = None,
    uns_key: str | None = None,
    reference: str | None = None,
) -> pd.DataFrame:
    """Tidy per-group gene ranking stored by :func:`~scglassbox.tl.rank_contributions`.

    Parameters
    ----------
    {adata}
    {ranked}
    {key}
    n_genes
        Top genes per group (default: all).
    uns_key
        As for :func:`group_contributions`.
    reference
        As for :func:`group_contributions`.

    Returns
    -------
    Columns ``group``, ``rank`` (1 = largest), ``gene``, ``mean``, ``sem`` and, for a ranking
    without ``reference``, ``toward``: the gene's pull along the line from the mean cell to
    the group's mean position (positive: it moves the group to where it lies; negative: it
    holds it back; over all genes it sums to that distance).

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.tl.rank_contributions(adata, "bulk_labels")
    >>> df = gb.get.rank_contributions_df(adata, "bulk_labels", group="CD19+ B", n_genes=3)
    >>> list(df.columns)
    ['group', 'rank', 'gene', 'mean', 'sem', 'toward']
    >>> df  # doctest: +SKIP
    """
    res = ranking_result(adata, groupby, key=key, uns_key=uns_key, reference=reference)
    mean, sem = genes_by_groups(res, "mean"), genes_by_groups(res, "sem")
    toward = genes_by_groups(res, "toward") if "toward" in res else None
    groups = list(mean.columns) if group is None else ([group] if isinstance(group, str) else group)
    frames = []
    for g in groups:
        if g not in mean.columns:
            raise KeyError(f"group {g!r} not in {list(mean.columns)}.")
        order = mean[g].sort_values(ascending=False).index[:n_genes]
        frame = pd.DataFrame({
            "group": g, "rank": np.arange(1, len(order) + 1), "gene": order,
            "mean": mean.loc[order, g].to_numpy(), "sem": sem.loc[order, g].to_numpy(),
        })  # fmt: skip
        if toward is not None:
            frame["toward"] = toward.loc[order, g].to_numpy()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
