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
# # Gene programs and modalities: exact attribution to pathways and to RNA vs protein
#
# A glass-box UMAP splits every cell's coordinates exactly into per-gene contributions. The
# split is additive, so summing it over any set of genes is exact too: a cell's position is
# the sum of its **programs'** contributions (interferon response, cytotoxicity, ...) plus the
# rest of the genes. And when the encoder reads several modalities at once (RNA and surface
# protein in CITE-seq), summing per modality says how much of each cell's place is RNA's and
# how much protein's. This tutorial:
#
# 1. ranks gene programs per cell type on scanpy's bundled PBMCs
#    (`gb.tl.rank_programs`, `gb.pl.rank_programs`, `gb.pl.program_contributions`);
# 2. fits one map on a simulated CITE-seq MuData with muon's WNN graph and splits it per
#    modality (`gb.get.modality_contributions`).
#
# Part 2 needs `mudata` and `muon`: `pip install "scglassbox[multimodal]"`.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scanpy as sc

import scglassbox as gb

sc.settings.set_figure_params(dpi=80, frameon=False, facecolor="white")
adata = sc.datasets.pbmc68k_reduced()
gb.tl.glassbox_umap(adata, quiet=True)

# %% [markdown]
# ## 1. Gene programs on PBMCs
#
# Gene sets come as a dict, a GMT file or a decoupler-style table with `source` and
# `target` columns (a `weight` column is ignored: a weighted sum would not split the
# coordinates). Here, a few short textbook sets that ship with the package; genes the model
# does not use are skipped.

# %%
sets = gb.datasets.pbmc_gene_sets()
sets
values, names = gb.get.program_contributions(adata, sets)
err = np.abs(values.sum(-1) - adata.obsm["X_glassbox_umap"]).max()
print(names, values.shape, f"max |sets + rest - embedding| = {err:.1e}")

# %% [markdown]
# `values[:, d, j]` is set `j`'s push along dimension `d`; with `'rest'` (every modelled gene
# in no set) the sets add up to the embedding. On the map, each set's share of the cells'
# explanation (its L2 norm over the two dimensions, divided by the sum over the sets and
# `'rest'`):

# %%
gb.pl.program_contributions(adata, sets, ncols=3)

# %% [markdown]
# Per cell type, the same shares averaged with their standard errors: `gb.tl.rank_programs`
# is `gb.tl.rank_contributions` with genes summed into sets, streamed over the cells once.

# %%
gb.tl.rank_programs(adata, "bulk_labels", sets)
gb.pl.rank_programs(adata, "bulk_labels")

# %%
df = gb.get.rank_programs_df(adata, "bulk_labels")
df[df["rank"] == 1].set_index("group")[["program", "mean", "sem", "toward"]]

# %% [markdown]
# The cytotoxic set tops NK cells, the B-cell set B cells and MHC-II dendritic cells.
# `toward` is a set's mean push projected on the direction from the mean cell (the origin
# of the contributions) to the group's mean position: positive when it moves the group to
# where it lies. Summed over the sets and `'rest'` it is exactly that distance.

# %% [markdown]
# ## 2. RNA and protein: which modality places each cell type?
#
# `gb.datasets.synthetic_citeseq` simulates RNA counts for 6 cell types and 20 surface
# proteins. `type_0` is split into `type_0a` and `type_0b`, which differ **only in protein**
# (`prot_0` high in one, `prot_1` in the other), as CD4 and CD8 T cells can look alike in RNA.
# The usual preprocessing per modality, then muon's weighted-nearest-neighbour graph:

# %% tags=["remove-stderr"]
import muon as mu

mdata = gb.datasets.synthetic_citeseq(2000, 800, seed=0)
rna, prot = mdata["rna"], mdata["prot"]
sc.pp.normalize_total(rna)
sc.pp.log1p(rna)
sc.pp.highly_variable_genes(rna, n_top_genes=400)
sc.pp.pca(rna, n_comps=30)
sc.pp.neighbors(rna)
mu.prot.pp.clr(prot)
sc.pp.neighbors(prot, use_rep="X")
mu.pp.neighbors(mdata)
mdata

# %% [markdown]
# `gb.tl.glassbox_umap` on the MuData reads both modalities side by side: RNA through its
# PCA (the one its graph was built on), protein as centred CLR values, each block scaled to
# the same total variance. The map follows the WNN graph; the results go to `mdata.obsm`,
# `mdata.uns` and `mdata.varm`.

# %% tags=["remove-stderr"]
gb.tl.glassbox_umap(mdata, quiet=True)
print(mdata.uns["glassbox_umap"]["input"])
mu.pl.embedding(mdata, basis="X_glassbox_umap", color="cell_type")

# %%
values, mods = gb.get.modality_contributions(mdata)
emb = mdata.obsm["X_glassbox_umap"]
print(mods, f"max |rna + prot - embedding| = {np.abs(values.sum(-1) - emb).max():.1e}")

# %% [markdown]
# Each cell's coordinates are exactly its RNA term plus its protein term. Drawn as two maps
# beside the embedding: each cell at its RNA term, and at its protein term (its
# coordinates summed over that modality's features only).

# %%
types = mdata.obs["cell_type"].astype(str).to_numpy()
fig, axs = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
for ax, (title, xy) in zip(
    axs,
    [("map", emb), ("RNA term", values[..., 0]), ("protein term", values[..., 1])],
    strict=True,
):
    for t in mdata.obs["cell_type"].cat.categories:
        ax.scatter(*xy[types == t].T, s=3, label=t)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
axs[0].legend(markerscale=4, fontsize=7, loc="best")

# %% [markdown]
# The protein term sets `type_0a` and `type_0b` clearly apart; their RNA terms overlap.
# They are not identical: the encoder is piecewise linear, and which linear piece a cell
# falls in depends on all of its inputs, protein included, so the same RNA can be weighed a
# little differently in the two subtypes. The split is still exact, and says how much of
# the subtypes' separation is each modality's: the distance between their mean positions,
# split per modality (each modality's mean difference projected on the line joining them;
# the parts sum to the distance):

# %%
a, b = values[types == "type_0a"].mean(0), values[types == "type_0b"].mean(0)
shift = a.sum(-1) - b.sum(-1)
u = shift / np.linalg.norm(shift)
parts = pd.Series(u @ (a - b), index=mods)
print(
    f"distance {np.linalg.norm(shift):.2f} =",
    " + ".join(f"{v:.2f} ({k})" for k, v in parts.items()),
)

# %% [markdown]
# Per cell type, each modality's pull toward where the type lies: a modality is a gene set
# like any other, so `gb.tl.rank_programs` ranks modalities too.

# %%
by_modality = {
    m: list(
        mdata[m].var_names[np.isin(mdata[m].var_names, mdata.uns["glassbox_umap"]["var_names"])]
    )
    for m in mods
}
gb.tl.rank_programs(mdata, "cell_type", by_modality, key_added="modality_rank")
gb.get.rank_programs_df(mdata, "cell_type", uns_key="modality_rank").pivot(
    index="group", columns="program", values="toward"
)

# %% [markdown]
# Per-feature contributions stay available per modality: the proteins and genes that place
# cells most, across the map, and the proteins' contributions on it.

# %%
gb.get.gene_importance_df(mdata).head(8)

# %%
gb.pl.contributions(mdata, ["prot_0", "prot_1"], view="normed_l2")
