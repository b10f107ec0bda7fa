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
# # Several batches: explanations of biology, not of batch
#
# Most datasets hold several samples, donors or technologies, and their expression differs
# for technical reasons. The usual scanpy workflow integrates them (Harmony, scVI, BBKNN),
# builds the neighbour graph on the integrated data and draws the UMAP. A glass-box UMAP
# follows that graph too, but its explanations are per gene of whatever the encoder reads:
# if it reads the *uncorrected* expression, the network has to undo the batch shifts itself,
# and genes that only differ between batches can show up among the genes that "place" a
# cell type. This tutorial:
#
# 1. simulates 3 batches with strong gene-wise batch effects (seeded, no download);
# 2. integrates them with Harmony and fits the glass box on the corrected PCA
#    (`use_rep`): contributions are then per gene of the **corrected** expression;
# 3. compares the gene rankings with a fit on the uncorrected expression;
# 4. with graph-only integration (BBKNN), splits each cell's coordinates into genes plus a
#    batch term (`batch_key`), and says what happens with latent spaces (scVI).
#
# It needs `harmonypy` and `bbknn`: `pip install "scglassbox[integration]"`.

# %%
import harmonypy
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scanpy as sc

import scglassbox as gb

sc.settings.set_figure_params(dpi=80, frameon=False, facecolor="white")
adata = gb.datasets.synthetic_scrna(
    n_obs=1500, n_vars=800, n_types=5, n_markers=15, n_batches=3, batch_effect=0.8, seed=0
)
adata

# %% [markdown]
# Each batch multiplies half of the genes (`var['batch_affected']`) by its own random factor
# (log-fold standard deviation 0.8); 15 genes per cell type are planted markers
# (`var['marker_of']`). The usual preprocessing, then a UMAP without integration: the
# batches lie apart.

# %% tags=["remove-stderr"]
sc.pp.normalize_total(adata, target_sum=1e4)
sc.pp.log1p(adata)
sc.pp.highly_variable_genes(adata, n_top_genes=500)
sc.pp.pca(adata, n_comps=30)

raw = adata.copy()
sc.pp.neighbors(raw)
sc.tl.umap(raw, random_state=0)
sc.pl.umap(raw, color=["batch", "cell_type"], title=["no integration: batch", "cell type"])

# %% [markdown]
# ## Harmony, then the glass box on the corrected PCA
#
# Harmony corrects the PCA scores (`obsm['X_pca_harmony']`, as wide as the PCA). We call
# `harmonypy` directly: scanpy 1.11's `sc.external.pp.harmony_integrate` stores harmonypy
# 2.1's output with the wrong shape. Then the neighbour graph on the corrected scores, as
# usual.

# %% tags=["remove-stderr"]
out = harmonypy.run_harmony(adata.obsm["X_pca"], adata.obs, "batch", random_state=0, verbose=False)
Z = np.asarray(out.Z_corr)
adata.obsm["X_pca_harmony"] = Z if Z.shape[0] == adata.n_obs else Z.T
sc.pp.neighbors(adata, use_rep="X_pca_harmony")

# %% [markdown]
# `gb.tl.glassbox_umap` sees that the graph was built on `X_pca_harmony`, a representation
# as wide as the PCA whose gene loadings `varm['PCs']` holds, and reads it as a *corrected
# PCA* (`use_rep=None`, the default; `use_rep='X_pca_harmony'` says it explicitly). The
# encoder's input is the corrected scores `z`; the contributions are per gene of the
# corrected expression `mean + V z` that those scores stand for. Because the loadings are
# orthonormal (`V^T V = I`) this expression maps back to `z` exactly, so the contributions
# still sum to the embedding, and the batch shifts that Harmony removed are not in them.

# %%
sc.settings.verbosity = 2  # show what the fit reads
gb.tl.glassbox_umap(adata, random_state=0, quiet=True)
sc.settings.verbosity = 1
print(adata.uns["glassbox_umap"]["input"])
print("exactness (max relative error):", adata.uns["glassbox_umap"]["exactness"])
gb.pl.glassbox_umap(
    adata, color=["batch", "cell_type"], title=["Harmony + glass box: batch", "cell type"]
)

# %% [markdown]
# The batches are mixed and the cell types apart, as with `sc.tl.umap` on the same graph.
# Each cell's coordinates are still an exact sum over genes:

# %%
C = gb.get.contributions(adata)  # cells x 2 x genes
emb = adata.obsm["X_glassbox_umap"]
print("largest |sum over genes - embedding|:", float(np.abs(C.sum(-1) - emb).max()))

# %% [markdown]
# ## Rankings before and after
#
# For comparison, a fit on the same graph that reads the uncorrected expression
# (`use_rep='X'`, what the glass box did before `use_rep`). It warns that its explanations
# are of the uncorrected expression.

# %%
uncorrected = adata.copy()
gb.tl.glassbox_umap(uncorrected, use_rep="X", random_state=0, quiet=True)

# %% [markdown]
# How much weight do *batch-only* genes (batch-affected, not a planted marker) carry, next
# to the other non-marker genes? `gb.get.gene_importance_df` gives each gene's mean absolute
# contribution. A ratio above 1 means the explanation leans on batch: in the fit that reads
# the uncorrected expression, the network spends batch-only genes on undoing the batch
# shifts. The batch effects simulated here are moderate, and so is the difference; the
# stronger the batch effects an integration removes, the larger it gets.


# %%
def weights(a):
    imp = gb.get.gene_importance_df(a)["total"]
    imp = imp[imp.index.isin(a.var_names)]  # genes only (batch_key adds batch features)
    var = a.var.loc[imp.index]
    marker = var["marker_of"].astype(str) != "none"
    batch_only = var["batch_affected"] & ~marker
    other = ~var["batch_affected"] & ~marker
    return pd.Series(
        {
            "markers": imp[marker].mean(),
            "batch-only genes": imp[batch_only].mean(),
            "other non-markers": imp[other].mean(),
            "batch-only / other": imp[batch_only].mean() / imp[other].mean(),
        }
    )


pd.DataFrame({"use_rep (Harmony)": weights(adata), "use_rep='X'": weights(uncorrected)}).round(3)

# %% [markdown]
# The per-cell-type rankings (`gb.tl.rank_contributions`): what the top 20 genes of every
# type are, in both fits, by what the simulation planted (a marker of that type, a
# batch-only gene, anything else).


# %%
def top20(a):
    gb.tl.rank_contributions(a, "cell_type")
    df = gb.get.rank_contributions_df(a, "cell_type", n_genes=20)
    var = a.var.reindex(df["gene"])  # a batch feature (batch_key) has no row: NaN
    planted = var["marker_of"].astype(str).to_numpy()
    batch_only = var["batch_affected"].eq(True).to_numpy() & (planted == "none")
    marker = planted == df["group"].astype(str).to_numpy()
    kind = np.where(marker, "marker", np.where(batch_only, "batch-only", "other"))
    df["kind"] = np.where(var["marker_of"].isna().to_numpy(), "batch term", kind)
    return df


tops = {"use_rep (Harmony)": top20(adata), "use_rep='X'": top20(uncorrected)}
pd.DataFrame({name: df["kind"].value_counts() for name, df in tops.items()}).fillna(0)

# %% [markdown]
# Below, the top 10 genes of one cell type. A batch-only gene can rank high even after
# correction: Harmony corrects the PCA scores cluster by cluster, so the corrected expression
# of a strongly batch-affected gene keeps small differences between cell types, and the
# network may use them. `use_rep` explains the data the map was built from: what the
# integration removed is not in the explanation, what it left is.

# %%
group = adata.obs["cell_type"].cat.categories[0]
colours = {"marker": "#4C72B0", "batch-only": "#C44E52", "other": "#8C8C8C"}
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, (title, df) in zip(axes, tops.items(), strict=True):
    df = df[df["group"] == group].head(10)[::-1]
    ax.barh(df["gene"], df["mean"], color=[colours[k] for k in df["kind"]])
    ax.set_title(f"{group}: {title}", fontsize=10)
    ax.set_xlabel("mean share of the cell's contributions")
handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
fig.legend(handles, list(colours), loc="lower center", ncol=3, frameon=False)
fig.tight_layout(rect=(0, 0.08, 1, 1))

# %% [markdown]
# ## Graph-only integration: BBKNN
#
# BBKNN corrects the *graph*, not the data: neighbours are found within each batch and
# joined. The glass box follows that graph (the map mixes the batches as the graph does) and
# reuses scanpy's PCA of the expression, which is uncorrected. Its explanations are then of
# the uncorrected expression, like the `use_rep='X'` fit above: the network has to undo the
# batch shifts with genes, and batch-only genes can weigh more than they should.

# %% tags=["remove-stderr"]
import bbknn

bb = adata.copy()
bbknn.bbknn(bb, batch_key="batch")
gb.tl.glassbox_umap(bb, random_state=0, quiet=True)
print(bb.uns["glassbox_umap"]["input"])
gb.pl.glassbox_umap(
    bb, color=["batch", "cell_type"], title=["BBKNN + glass box: batch", "cell type"]
)
weights(bb).round(3)

# %% [markdown]
# `batch_key="batch"` gives the encoder the batch itself, as one indicator column per batch
# next to the genes. The network stays exact, so each cell's coordinates split into its
# genes' contributions plus one **batch term**: what its batch adds
# (`gb.get.batch_contributions`). The network can undo a batch's shift with that term instead
# of with genes. `obs['glassbox_umap_batch_share']` holds each cell's batch share (the term's
# L2 norm over the sum of all features'), and `gb.pl.batch_share` draws it: where it is high,
# the map places cells by batch rather than by genes.

# %% tags=["remove-stderr"]
bk = adata.copy()
bbknn.bbknn(bk, batch_key="batch")
gb.tl.glassbox_umap(bk, batch_key="batch", random_state=0, quiet=True)
gb.pl.batch_share(bk)
term = gb.get.batch_contributions(bk)
genes_part = gb.get.contributions(bk).sum(-1) - term
print("largest |genes + batch term - embedding|:",
      float(np.abs(genes_part + term - bk.obsm["X_glassbox_umap"]).max()))  # fmt: skip
print("median batch share:", float(bk.obs["glassbox_umap_batch_share"].median()))

# %% [markdown]
# The batch features appear in the rankings like genes (`batch=batch_0`, ...), so a cell type
# whose place depends on its batch says so. Next to the BBKNN fit without `batch_key`, the
# batch term takes places among each type's top 20 that went to batch-only and other
# non-marker genes, while the planted markers keep theirs:

# %%
bbtops = {"BBKNN": top20(bb), "BBKNN + batch_key": top20(bk)}
pd.DataFrame({name: df["kind"].value_counts() for name, df in bbtops.items()}).fillna(0)

# %% [markdown]
# Which to use: an integration that corrects the data (Harmony, read through `use_rep`)
# leaves batch out of the explanation altogether; with a graph-only integration,
# `batch_key` keeps batch in one visible, exact term instead of spreading it over genes. A
# model fitted with `batch_key` maps new cells only from the batches it was trained on.

# %% [markdown]
# ## Latent spaces without gene loadings (scVI)
#
# A representation that is not a corrected PCA, such as scVI's `X_scVI`, has no gene
# loadings. `gb.tl.glassbox_umap(adata, use_rep="X_scVI")` then reads it as is, and the
# contributions are per latent dimension (`X_scVI_1`, `X_scVI_2`, ...), not per gene; the
# per-dimension importance is in `adata.uns['glassbox_umap']['importance']` and
# `gb.get.gene_importance_df` and `gb.pl.ranking` show it. Such contributions say which
# latent factors place a cell, and are still exact.
#
# ## New cells
#
# `gb.tl.glassbox_transform(query, adata)` maps new cells with the stored model. A model fitted
# on `X_pca_harmony` reads the query's own `query.obsm['X_pca_harmony']`, so the query must
# be integrated into the same space first (for Harmony, corrected together with the
# reference); without it the call stops with a clear error and changes nothing.
