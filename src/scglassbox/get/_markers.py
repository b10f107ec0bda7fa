"""Differential-expression markers stored by ``sc.tl.rank_genes_groups``, for comparisons."""

from __future__ import annotations

import pandas as pd
from anndata import AnnData


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
