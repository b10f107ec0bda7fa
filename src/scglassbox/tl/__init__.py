"""Tools: fit glass-box UMAP on AnnData, map new cells, summarise contributions per group."""

from ._ensemble import glassbox_ensemble
from ._glassbox_umap import glassbox_umap
from ._programs import rank_programs
from ._rank import rank_contributions
from ._transform import glassbox_transform

__all__ = [
    "glassbox_ensemble",
    "glassbox_transform",
    "glassbox_umap",
    "rank_contributions",
    "rank_programs",
]
