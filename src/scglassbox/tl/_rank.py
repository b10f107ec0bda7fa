"""Per-group contribution rankings (the publication's analysis) and marker overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._docs import doc_params
from .._views import categorical
from ..get import contribution_view


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


def de_markers(
    adata: AnnData, groupby: str, rank_genes_key: str, *, required: bool
) -> pd.DataFrame | None:
    """Marker names stored by ``sc.tl.rank_genes_groups`` for ``groupby`` (groups as columns).

    Missing or computed for another ``groupby``: an error when ``required``, else ``None``.
    """
    rg = adata.uns.get(rank_genes_key)
    todo = f"run sc.tl.rank_genes_groups(adata, {groupby!r}" + (
        "" if rank_genes_key == "rank_genes_groups" else f", key_added={rank_genes_key!r}"
    )
    if rg is None or "names" not in rg:
        if required:
            raise KeyError(f"adata.uns[{rank_genes_key!r}] not found: {todo}) first.")
        return None
    rg_groupby = str(rg.get("params", {}).get("groupby", groupby))
    if rg_groupby != groupby:
        if required:
            raise ValueError(
                f"adata.uns[{rank_genes_key!r}] was computed for groupby={rg_groupby!r}, not "
                f"{groupby!r}: {todo}) first."
            )
        return None
    return pd.DataFrame(rg["names"])


def overlap_rows(
    top: dict[str, list[str]], markers: pd.DataFrame, used: set[str], n_genes: int
) -> list[dict]:
    """Per group: top contributors against the top ``n_genes`` markers among ``used`` genes."""
    rows = []
    for g, genes in top.items():
        if g not in markers.columns:
            continue
        de = [m for m in markers[g].astype(str) if m in used][:n_genes]
        shared = [m for m in genes if m in set(de)]
        rows.append({
            "group": g, "overlap": len(shared), "fraction": len(shared) / max(len(genes), 1),
            "shared": shared, "top_contributors": list(genes), "markers": de,
        })  # fmt: skip
    return rows


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
        Default ``key + '_rank_' + groupby``.
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
    cats = categorical(adata, groupby)
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
    markers = de_markers(adata, groupby, rank_genes_key, required=False)
    if markers is not None:
        top = {g: list(mean_df[g].sort_values(ascending=False).index[:n_genes]) for g in groups}
        rows = overlap_rows(top, markers, set(genes), n_genes)
        if rows:
            table = pd.DataFrame(rows).set_index("group")
            for col in ("shared", "top_contributors", "markers"):  # lists do not round-trip
                table[col] = table[col].map(", ".join)
            result["marker_overlap"] = table
    if copy:
        adata = adata.copy()
    adata.uns[key_added or f"{key}_rank_{groupby}"] = result
    return adata if copy else None
