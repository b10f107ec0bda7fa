# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Which genes place each cell type? PBMCs with scanpy
#
# This tutorial runs scglassbox inside a scanpy workflow on `sc.datasets.pbmc68k_reduced()`,
# the 700 peripheral blood mononuclear cells bundled with scanpy (no download), from the
# neighbour graph to per-gene explanations:
#
# 1. `gb.tl.glassbox_umap` fits the glass-box UMAP on scanpy's neighbour graph and stores the
#    embedding, the per-cell per-gene contributions and the model in the AnnData;
# 2. `gb.tl.rank_contributions` ranks the genes that place each cell type, and
#    `gb.get.rank_contributions_df` reads the ranking back as a table;
# 3. `gb.pl.*` plots them, and we compare them with the differential-expression markers of
#    `sc.tl.rank_genes_groups`;
# 4. we look at what separates sub-clusters of one cell type.
#
# All of it runs in about a minute on a laptop CPU.

# %%
import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc

import scglassbox as gb

sc.settings.set_figure_params(dpi=80, frameon=False, facecolor="white")
adata = sc.datasets.pbmc68k_reduced()
adata

# %% [markdown]
# ## From neighbours to contributions
#
# `pbmc68k_reduced` ships with a PCA and a neighbour graph, but its stored PCA was not
# computed on the `.X` it ships (which is scaled, log-normalised expression of 765 genes),
# so the stored scores cannot be reproduced from `.X`. We recompute the PCA (on the 309
# highly variable genes, scanpy's default) and the neighbour graph, as one does after any
# preprocessing, and a standard UMAP for comparison.

# %% tags=["remove-stderr"]
sc.pp.pca(adata, n_comps=50)
sc.pp.neighbors(adata, n_neighbors=15)
sc.tl.umap(adata)

# %% [markdown]
# `gb.tl.glassbox_umap` reads the graph of `sc.pp.neighbors` (it never recomputes it). Since
# that graph was built on `X_pca`, and `(x - mean) @ varm['PCs']` reproduces `X_pca`, the
# network reads scanpy's 50 principal components; the contributions are nevertheless
# attributed to the 309 genes, through the PCA loadings. `min_dist` defaults to scanpy's
# 0.5. Without `epochs`, the number of epochs is chosen for about 1,000 optimiser steps;
# `random_state=0` (the default) makes the fit reproducible on a given machine.

# %%
gb.tl.glassbox_umap(adata, random_state=0, quiet=True)
print(adata.uns["glassbox_umap"]["input"])
print("epochs:", adata.uns["glassbox_umap"]["params"]["epochs"])
adata

# %% [markdown]
# Everything lives in the AnnData (see {doc}`/storage`):
#
# - `obsm['X_glassbox_umap']`: the embedding, so every scanpy embedding plot works with
#   `basis='glassbox_umap'`;
# - `obsm['glassbox_umap_contributions']`: cells x dimensions x genes used;
# - `varm['glassbox_umap_contributions']`: mean absolute contribution per gene and dimension;
# - `uns['glassbox_umap']`: parameters, genes used, loss history, the exactness check and
#   the trained model.

# %%
C = adata.obsm["glassbox_umap_contributions"]
genes = adata.uns["glassbox_umap"]["var_names"]
print(f"contributions: {C.shape} (cells, dimensions, genes), {len(genes)} genes")
emb = adata.obsm["X_glassbox_umap"]
print(
    f"max relative |sum of contributions - embedding|: {adata.uns['glassbox_umap']['exactness']:.1e}"
)
assert np.allclose(C.sum(axis=-1), emb, atol=1e-5 * np.abs(emb).max())

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
sc.pl.umap(adata, color="bulk_labels", ax=axes[0], show=False, legend_loc=None, title="sc.tl.umap")
gb.pl.glassbox_umap(adata, color="bulk_labels", ax=axes[1], show=False, title="glass-box UMAP")
plt.show()

# %% [markdown]
# The training loss per epoch is stored too; `gb.pl.loss` draws it.

# %%
gb.pl.loss(adata)

# %% [markdown]
# ## Which genes place the cells?
#
# Globally, `varm['glassbox_umap_contributions']` holds the mean absolute contribution of
# each gene to each dimension; `gb.pl.ranking` and `gb.get.gene_importance_df` show it.

# %%
gb.pl.ranking(adata, n_genes=15)

# %%
gb.get.gene_importance_df(adata).head(10)

# %% [markdown]
# Per cell, the top contributing gene gives a map of what drives each region of the
# embedding:

# %%
gb.pl.top_feature(adata, n_top=8)

# %% [markdown]
# A single gene's contributions can be drawn on the embedding. The L2 view is how far the
# gene moves each cell (in any direction); the signed `'dim1'` view shows in which
# direction it pushes the cells along the first axis (red: right, blue: left).

# %%
top2 = list(gb.get.gene_importance_df(adata).index[:2])
gb.pl.contributions(adata, top2, view="l2")
gb.pl.contributions(adata, top2, view="dim1")

# %% [markdown]
# ## Per cell type: `rank_contributions`
#
# The analysis of the glass-box UMAP publication: for each cell, the L2 norm of each gene's
# contribution over the embedding dimensions, normalised to sum to 1 over genes (the share
# of the cell's placement due to that gene, `view='normed_l2'`), averaged per cell type
# with standard errors.
#
# We first run scanpy's Wilcoxon test on the same grouping, so that `rank_contributions`
# also reports how the top contributors overlap with the top differential-expression
# markers.

# %%
sc.tl.rank_genes_groups(adata, "bulk_labels", method="wilcoxon")
gb.tl.rank_contributions(adata, "bulk_labels")
gb.get.rank_contributions_df(adata, "bulk_labels", n_genes=3)

# %% [markdown]
# Per-group bars with standard errors (`gb.pl.contribution_bars`) and a matrix of each
# group's top genes across all groups (`gb.pl.contribution_matrixplot`, a
# `sc.pl.matrixplot` of contributions):

# %%
gb.pl.contribution_bars(
    adata,
    groupby="bulk_labels",
    groups=["CD14+ Monocyte", "CD19+ B", "CD56+ NK", "Dendritic"],
    view="normed_l2",
    n_genes=10,
)

# %%
gb.pl.contribution_matrixplot(adata, "bulk_labels", n_genes=3)

# %% [markdown]
# ## How stable are the rankings across fits?
#
# A network's training is stochastic, and so are its contributions. The publication averaged
# 16 independent fits; `gb.tl.glassbox_ensemble` does this in one call: it refits on the same
# graph with several seeds, streams each fit's per-group means (per-cell contributions are
# never stored) and reports the mean over seeds, its standard error, and a stability score
# per group (mean pairwise Spearman correlation of the gene importances between seeds; 1
# means identical rankings). Four seeds keep this tutorial short; use more in practice.

# %%
gb.tl.glassbox_ensemble(adata, "bulk_labels", seeds=(0, 1, 2, 3), quiet=True)
adata.uns["glassbox_ensemble_bulk_labels"]["stability"].round(3)

# %%
gb.get.rank_contributions_df(
    adata, "bulk_labels", uns_key="glassbox_ensemble_bulk_labels", n_genes=3
)

# %% [markdown]
# ## Contributions are not differential-expression markers
#
# A gene that separates a cell type from all others (a marker) need not be the gene that the
# embedding uses to place those cells, and vice versa: contributions measure what moves
# each cell **relative to the mean cell in this embedding**, which also reflects
# redundancy between correlated genes (the network may lean on one of several co-expressed
# markers), the geometry of the layout and the neighbours of the type. The publication found
# many Wilcoxon markers missing from the top contributors; here is the overlap of the top 20
# of each (the dashed line is the overlap expected by chance):

# %%
overlap = adata.uns["glassbox_umap_rank_bulk_labels"]["marker_overlap"]
overlap[["overlap", "fraction", "shared"]]

# %% tags=["remove-stderr"]
gb.pl.compare_markers(adata, "bulk_labels", n_genes=20)

# %% [markdown]
# ## Which genes separate two cell types?
#
# The question after "which genes place this type" is often "which genes separate A from
# B". With a `reference`, `rank_contributions` mirrors `sc.tl.rank_genes_groups`: per gene, the
# difference between the mean signed contributions of the group and of the reference. Summed
# over genes, these differences give exactly the difference of the two groups' mean positions
# in the embedding, so each gene's projection on the line joining them is its share of the
# distance between the two types (the shares add up to that distance).

# %%
gb.tl.rank_contributions(
    adata, "bulk_labels", groups=["CD14+ Monocyte"], reference="Dendritic", key_added="mono_vs_dc"
)
res = adata.uns["mono_vs_dc"]
print(f"distance between the two types' mean positions: {np.linalg.norm(res['displacement'][0]):.3f}")
print(f"sum of the genes' shares:                       {res['mean'][0].sum():.3f}")
gb.get.rank_contributions_df(adata, "bulk_labels", uns_key="mono_vs_dc", n_genes=8)

# %%
gb.pl.rank_contributions(adata, "bulk_labels", uns_key="mono_vs_dc", n_genes=12)

# %% [markdown]
# ## What separates sub-clusters of one cell type?
#
# The 240 cells labelled *Dendritic* fall into several Louvain clusters (stored with the
# dataset). The genes that place these sub-clusters are not those that place dendritic
# cells as a whole. Compare the top contributors of two of them, as a cohort selected by a
# boolean mask (any selection works, e.g. a region of the embedding):

# %%
dendritic = adata.obs["bulk_labels"] == "Dendritic"
print(adata.obs.loc[dendritic, "louvain"].value_counts().head(5))

adata.obs["Dendritic sub-cluster"] = (
    adata.obs["louvain"]
    .where(dendritic & adata.obs["louvain"].isin(["2", "7"]))
    .cat.remove_unused_categories()
)
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
gb.pl.glassbox_umap(
    adata,
    color="Dendritic sub-cluster",
    palette={"2": "#1f77b4", "7": "#d62728"},
    na_color="#e8e8e8",
    ax=axes[0],
    show=False,
)
for ax, cluster in zip(axes[1:], ["2", "7"], strict=True):
    gb.pl.contribution_bars(
        adata,
        mask=(adata.obs["Dendritic sub-cluster"] == cluster).to_numpy(),
        view="normed_l2",
        n_genes=10,
        ax=ax,
        show=False,
    )
    ax.set_title(f"Dendritic, louvain {cluster}")
fig.tight_layout()
plt.show()

# %% [markdown]
# In this run, the small cluster 7 is placed above all by *IRF8* and *CPVL* (genes of
# plasmacytoid dendritic cells), while the large cluster 2 is placed by *FCER1A*,
# *CLEC10A* and HLA class II genes, as the dendritic cells as a whole. To see the
# *direction* in which each gene pushes a cohort, use a signed view such as `view='dim1'`.

# %% [markdown]
# ## Interactive exploration
#
# `gb.pl.explore` (optional dependency Bokeh: `pip install 'scglassbox[interactive]'`) links
# the embedding to a bar chart of contributions. Above the scatter, **Colour by** a group, a
# gene (picked in the search box) or each cell's top gene; above the bars, choose the
# **View** (L2, normed L2, or the signed contribution to one dimension). Lasso or box-select
# a cohort of cells (tools on the right of the scatter) to see its mean contributions with
# standard errors; with nothing selected the bars summarise all cells.

# %% tags=["full-width"]
# In a notebook it displays itself, as sc.pl plots do (show=False returns the Bokeh layout).
gb.pl.explore(adata, groupby="bulk_labels", width=380, height=380, legend_width=170)

# %% [markdown]
# `gb.pl.save_html(gb.pl.explore(adata, groupby="bulk_labels", show=False), "pbmc.html")` writes
# the same view to one standalone HTML file (BokehJS inlined: it opens offline and can be
# shared).

# %% [markdown]
# ## Saving
#
# The AnnData holds the model as plain arrays (never pickled), so after
# `adata.write_h5ad("pbmc_glassbox.h5ad")` the file can be shared, and new cells mapped into
# this embedding later: see {doc}`03_mapping_new_cells`.
