"""Read glass-box results back from AnnData as arrays and tidy DataFrames.

This is the package's one AnnData access layer: tools, plots, the explorer and the CLI read
contributions through :func:`contributions` / :func:`iter_contributions`, which use the stored
cache when present and the model otherwise.
"""

from ._batch import batch_contributions
from ._contributions import contribution_view, contributions, iter_contributions
from ._get import (
    contributions_df,
    gene_importance_df,
    group_contributions,
    rank_contributions_df,
)
from ._images import image_contributions
from ._modalities import modality_contributions
from ._programs import program_contributions, rank_programs_df

__all__ = [
    "batch_contributions",
    "contribution_view",
    "contributions",
    "contributions_df",
    "gene_importance_df",
    "group_contributions",
    "image_contributions",
    "iter_contributions",
    "modality_contributions",
    "program_contributions",
    "rank_contributions_df",
    "rank_programs_df",
]
