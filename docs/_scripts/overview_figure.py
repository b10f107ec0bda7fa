"""Draw ``docs/_static/overview.png``, the figure of the documentation's front page.

    python docs/_scripts/overview_figure.py

Bundled data only (scanpy's pbmc68k_reduced); well under a minute on two CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc

import scglassbox as gb

OUT = Path(__file__).resolve().parents[1] / "_static" / "overview.png"


def main() -> None:
    sc.settings.set_figure_params(dpi=100, frameon=False, facecolor="white", fontsize=10)
    adata = sc.datasets.pbmc68k_reduced()
    sc.pp.pca(adata, n_comps=50)
    sc.pp.neighbors(adata, n_neighbors=15)
    gb.tl.glassbox_umap(adata, random_state=0, quiet=True)

    fig = plt.figure(figsize=(13, 9.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 0.8], wspace=0.75, hspace=0.3)
    ax1, ax2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax3 = fig.add_subplot(grid[1, :])

    gb.pl.glassbox_umap(adata, color="bulk_labels", ax=ax1, show=False, legend_fontsize=8,
                        title="glass-box UMAP of 700 PBMCs")  # fmt: skip
    gb.pl.top_feature(adata, n_top=8, ax=ax2, show=False)
    ax2.set_title("each cell's top contributing gene")

    # One cell's x-coordinate, gene by gene: the bars add up exactly to its position.
    emb = adata.obsm["X_glassbox_umap"]
    contrib = adata.obsm["glassbox_umap_contributions"]
    genes = np.asarray(adata.uns["glassbox_umap"]["var_names"])
    cell = int(np.argmax(np.abs(emb[:, 0]) * (adata.obs["bulk_labels"] == "CD19+ B")))
    c = contrib[cell, 0]
    order = np.argsort(-np.abs(c))[:10]
    rest = c.sum() - c[order].sum()
    labels = [*genes[order], f"{len(genes) - len(order)} other genes"]
    values = np.append(c[order], rest)
    starts = np.concatenate([[0.0], np.cumsum(values)[:-1]])
    colors = ["#c0392b" if v > 0 else "#2e86c1" for v in values]
    y = np.arange(len(values))[::-1]
    ax3.barh(y, values, left=starts, color=colors, height=0.7)
    ax3.axvline(0, color="k", lw=0.8)
    ax3.axvline(emb[cell, 0], color="k", lw=1.2, ls="--")
    ax3.set_yticks(y, labels)
    ax3.set_xlabel("cumulative contribution to dimension 1 (red: pushes right, blue: pushes left)")
    ax3.set_title(
        f"the circled B cell: its coordinate x = {emb[cell, 0]:.2f} "
        "is the sum of its genes' contributions",
        fontsize=11,
    )
    ax3.grid(False)
    for side in ("top", "right"):
        ax3.spines[side].set_visible(False)
    # Mark the cell on the embedding.
    for ax in (ax1, ax2):
        ax.scatter(*emb[cell], s=120, facecolor="none", edgecolor="k", lw=1.5)
    fig.savefig(OUT, dpi=110, bbox_inches="tight")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
