"""Plots of glass-box UMAP results (``gb.pl``).

matplotlib plots follow scanpy's conventions (``show``, ``ax``, ``return_fig``) and never
modify the AnnData they are given; :func:`explore` builds an interactive Bokeh view
(optional extra ``scglassbox[interactive]``).
"""

from ._bars import contribution_bars, loss, rank_contributions, ranking
from ._embedding import batch_share, contributions, glassbox_umap, top_feature
from ._explore import explore, save_html
from ._images import image_contributions
from ._markers import compare_markers
from ._matrix import contribution_dotplot, contribution_matrixplot
from ._programs import program_contributions, rank_programs

__all__ = [
    "batch_share",
    "compare_markers",
    "contribution_bars",
    "contribution_dotplot",
    "contribution_matrixplot",
    "contributions",
    "explore",
    "glassbox_umap",
    "image_contributions",
    "loss",
    "program_contributions",
    "rank_contributions",
    "rank_programs",
    "ranking",
    "save_html",
    "top_feature",
]
