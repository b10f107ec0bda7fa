"""Per-group contribution rankings (the publication's analysis) and marker overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import doc_params
from ..get import contribution_view


def _groups(adata: AnnData, groupby: str) -> pd.Categorical:
    if groupby not in adata.obs.columns:
        raise ValueError(f"groupby={groupby!r} is not a column of adata.obs.")
    return pd.Categorical(adata.obs[groupby].astype(str))


def group_stats(values: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, ...]:
    """Per-group mean and standard error over rows: arrays ``(n_genes, n_groups)``."""
    onehot = np.zeros((n_groups, values.shape[0]), dtype=np.float64)
    onehot[codes, np.arange(values.shape[0])] = 1.0
    counts = onehot.sum(axis=1)
    v = values.astype(np.float64, copy=False)
    mean = (onehot @ v) / counts[:, None]
    var = np.maximum((onehot @ (v * v)) / counts[:, None] - mean**2, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sem = np.sqrt(var * counts[:, None] / np.maximum(counts[:, None] - 1, 1) / counts[:, None])
    sem[counts < 2] = np.nan
    return mean.T, sem.T


def _marker_overlap(
    adata: AnnData, mean: pd.DataFrame, rank_genes_key: str, groupby: str, n_genes: int
) -> pd.DataFrame | None:
    rg = adata.uns.get(rank_genes_key)
    if rg is None or rg.get("params", {}).get("groupby") != groupby:
        return None
    names = pd.DataFrame(rg["names"])
    used = set(mean.index)
    rows = []
    for g in mean.columns:
        if g not in names.columns:
            continue
        markers = [m for m in names[g].astype(str) if m in used][:n_genes]
        top = list(mean[g].sort_values(ascending=False).index[:n_genes])
        shared = [m for m in top if m in set(markers)]
        rows.append({
            "group": g, "n_genes": n_genes, "overlap": len(shared),
            "fraction": len(shared) / max(len(top), 1), "shared": ", ".join(shared),
            "top_contributors": ", ".join(top), "markers": ", ".join(markers),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("group") if rows else None


@doc_params
def rank_contributions(
    adata: AnnData,
    groupby: str,
    *,
    view: str = "normed_l2",
    key: str = "glassbox_umap",
    rank_genes_key: str = "rank_genes_groups",
    n_genes: int = 20,
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Rank genes per group by their mean contribution, with standard errors.

    This is the per-cell-type summary of the glass-box UMAP publication: per cell, the
    contribution view (by default the L2 norm over embedding dimensions, normalised to sum to
    1), averaged per group. When ``sc.tl.rank_genes_groups`` was run with the same
    ``groupby``, the overlap of each group's top ``n_genes`` contributors with its top
    ``n_genes`` differential-expression markers (among the genes the model used) is added.

    Parameters
    ----------
    {adata}
    groupby
        Categorical ``obs`` column.
    {view}
    {key}
    rank_genes_key
        Where ``sc.tl.rank_genes_groups`` stored its result.
    n_genes
        How many top contributors and markers to compare.
    key_added
        Default ``f'{key}_rank_{groupby}'``.
    {copy}

    Returns
    -------
    ``adata`` copy if ``copy`` else ``None``; writes ``adata.uns[key_added]`` with ``mean``
    and ``sem`` (arrays, groups x genes), ``groups``, ``genes``, ``n_cells`` per group,
    ``params`` and, when DE markers are available, ``marker_overlap`` (DataFrame indexed by
    group: ``overlap``, ``fraction``, ``shared``, ``top_contributors``, ``markers``). Read it
    with :func:`scglassbox.get.rank_contributions_df` or
    :func:`scglassbox.get.group_contributions`.
    """
    values, genes = contribution_view(adata, view, key=key)
    cats = _groups(adata, groupby)
    mean, sem = group_stats(values, cats.codes, len(cats.categories))
    groups = np.asarray(cats.categories.astype(str))
    # Arrays plus name arrays, not DataFrames with group columns: group names such as
    # "CD4+/CD25 T Reg" hold '/', which h5ad and zarr refuse as keys.
    result = {
        "params": {"groupby": groupby, "view": view, "key": key, "n_genes": int(n_genes)},
        "groups": groups,
        "genes": genes,
        "mean": mean.T.astype(np.float32),
        "sem": sem.T.astype(np.float32),
        "n_cells": np.bincount(cats.codes, minlength=len(groups)),
    }
    mean_df = pd.DataFrame(mean, index=genes, columns=groups)
    overlap = _marker_overlap(adata, mean_df, rank_genes_key, groupby, n_genes)
    if overlap is not None:
        result["marker_overlap"] = overlap
    if copy:
        adata = adata.copy()
    adata.uns[key_added or f"{key}_rank_{groupby}"] = result
    return adata if copy else None
