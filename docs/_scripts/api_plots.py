"""Draw ``docs/_static/plots/*.png``, the figures under the Examples of the ``gb.pl`` API pages.

    python docs/_scripts/api_plots.py                    # all of them
    python docs/_scripts/api_plots.py batch_share.png    # only these

Each figure is drawn by the very call its docstring's Examples section shows (one default fit of
scanpy's bundled pbmc68k_reduced, so no download); about a minute on two CPU cores.
``explore.png`` is a browser screenshot of :func:`scglassbox.pl.explore` and is not drawn here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import scanpy as sc

import scglassbox as gb

OUT = Path(__file__).resolve().parents[1] / "_static" / "plots"
GENES = ["CST3", "NKG7", "HLA-DRA", "CD79A"]


def save(name: str, draw) -> None:
    """Run ``draw()`` (a plot call with ``show=False``) and write its figure as ``name``."""
    plt.close("all")
    draw()
    plt.gcf().savefig(OUT / name, dpi=80, bbox_inches="tight", facecolor="white")
    print(f"wrote {OUT / name}")


def main() -> None:
    adata = sc.datasets.pbmc68k_reduced()
    gb.tl.glassbox_umap(adata, quiet=True)
    sc.tl.rank_genes_groups(adata, "bulk_labels")
    gb.tl.rank_contributions(adata, "bulk_labels", groups=["CD14+ Monocyte"], reference="Dendritic")
    groups = ["CD14+ Monocyte", "CD56+ NK", "CD19+ B"]

    plots = {
        "glassbox_umap.png": lambda: gb.pl.glassbox_umap(
            adata, color=["bulk_labels", "louvain"], wspace=0.5, show=False
        ),
        "contributions_l2.png": lambda: gb.pl.contributions(adata, GENES, show=False),
        "contributions_dim1.png": lambda: gb.pl.contributions(
            adata, GENES, view="dim1", show=False
        ),
        "top_feature.png": lambda: gb.pl.top_feature(adata, show=False),
        "contribution_bars.png": lambda: gb.pl.contribution_bars(adata, n_genes=15, show=False),
        "contribution_bars_groups_dim1.png": lambda: gb.pl.contribution_bars(
            adata, groupby="bulk_labels", groups=groups, view="dim1", n_genes=10, show=False
        ),
        "ranking.png": lambda: gb.pl.ranking(adata, n_genes=15, show=False),
        "loss.png": lambda: gb.pl.loss(adata, show=False),
        "rank_contributions.png": lambda: gb.pl.rank_contributions(
            adata, "bulk_labels", reference="Dendritic", show=False
        ),
        "contribution_matrixplot.png": lambda: gb.pl.contribution_matrixplot(
            adata, "bulk_labels", n_genes=3, show=False
        ),
        "contribution_dotplot.png": lambda: gb.pl.contribution_dotplot(
            adata, "bulk_labels", n_genes=3, show=False
        ),
        "compare_markers.png": lambda: gb.pl.compare_markers(adata, "bulk_labels", show=False),
    }
    plots["batch_share.png"] = lambda: gb.pl.batch_share(_batches(), show=False)
    plots["program_contributions.png"] = lambda: gb.pl.program_contributions(
        adata, gb.datasets.pbmc_gene_sets(), show=False
    )
    plots["rank_programs.png"] = lambda: (
        gb.tl.rank_programs(adata, "bulk_labels", gb.datasets.pbmc_gene_sets()),
        gb.pl.rank_programs(adata, "bulk_labels", show=False),
    )[1]
    plots["image_contributions.png"] = lambda: gb.pl.image_contributions(
        _digits(), "digit", show=False
    )
    chosen = sys.argv[1:] or list(plots)
    for name in chosen:
        save(name, plots[name])


def _batches():
    """The data of ``gb.pl.batch_share``'s example: 3 simulated batches, fitted with batch_key."""
    adata = gb.datasets.synthetic_scrna(600, 200, n_batches=3, seed=0)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=20)
    sc.pp.neighbors(adata)
    gb.tl.glassbox_umap(adata, batch_key="batch", quiet=True)
    return adata


def _digits():
    """The data of ``gb.pl.image_contributions``' example: digits fitted as images."""
    adata = gb.datasets.digits_images()
    sc.pp.neighbors(adata, n_neighbors=15, use_rep="X")
    gb.tl.glassbox_umap(adata, use_rep="X_image", encoder="conv", quiet=True)
    return adata


if __name__ == "__main__":
    main()
