"""Read glass-box results back from AnnData as arrays and tidy DataFrames."""

from ._get import (
    contribution_view,
    contributions_df,
    gene_importance_df,
    group_contributions,
    rank_contributions_df,
)

__all__ = [
    "contribution_view",
    "contributions_df",
    "gene_importance_df",
    "group_contributions",
    "rank_contributions_df",
]
