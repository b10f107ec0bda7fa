"""Draw ``docs/_static/trajectory.png``: a branching trajectory, ``sc.tl.umap`` and the glass box.

    python docs/_scripts/trajectory_figure.py

``gb.datasets.synthetic_trajectory`` (20,000 cells, seeded; no download), the standard scanpy
workflow, then ``sc.tl.umap`` and ``gb.tl.glassbox_umap`` at defaults on the same graph (the
routed encoder, as on a CPU from 10,000 cells). About a minute on two CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import scanpy as sc

import scglassbox as gb

OUT = Path(__file__).resolve().parents[1] / "_static" / "trajectory.png"


def main() -> None:
    adata = gb.datasets.synthetic_trajectory(20_000, 2000, seed=3)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=1000)
    sc.pp.pca(adata, n_comps=50)
    sc.pp.neighbors(adata)
    sc.tl.umap(adata, min_dist=0.1, random_state=0)
    gb.tl.glassbox_umap(adata, random_state=0, quiet=True)
    fig, axes = plt.subplots(2, 2, figsize=(9, 8))
    for row, (basis, title) in enumerate(
        (("X_umap", "sc.tl.umap"), ("X_glassbox_umap", "gb.tl.glassbox_umap (exact split)"))
    ):
        for col, colour in enumerate(("branch", "pseudotime")):
            sc.pl.embedding(
                adata, basis=basis, color=colour, ax=axes[row, col], show=False, frameon=False,
                title=f"{title}: {colour}",
            )  # fmt: skip
    fig.tight_layout()
    fig.savefig(OUT, dpi=80, facecolor="white")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
