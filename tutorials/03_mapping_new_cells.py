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
# # Saving models and mapping new cells
#
# A glass-box UMAP is a trained network, so it can embed cells it has never seen, like
# `sc.tl.ingest` but with the same exact per-gene contributions for the new cells. This
# tutorial:
#
# 1. fits a model on a *reference* set of cells;
# 2. saves it: inside the `.h5ad` file (`adata.uns['glassbox_umap']['model']`) and as a
#    standalone `.npz` file (`GlassBoxUMAP.save` / `GlassBoxUMAP.load`); neither is ever
#    pickled, so loading a file never runs code;
# 3. maps held-out *query* cells with `gb.tl.glassbox_transform`, and checks where they land.
#
# The data are simulated with `gb.datasets.synthetic_scrna` (seeded, no download): counts of
# 1,600 cells and 500 genes in 6 cell types, each with 15 planted marker genes.

# %%
import tempfile
from pathlib import Path

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc

import scglassbox as gb

sc.settings.set_figure_params(dpi=80, frameon=False, facecolor="white")
adata = gb.datasets.synthetic_scrna(n_obs=1600, n_vars=500, n_types=6, n_markers=15, seed=0)
adata

# %% [markdown]
# ## A reference and a query
#
# We hold out a random 25% of the cells as the query. Preprocess the reference as usual.
# Per-cell steps (library-size normalisation, `log1p`) can be applied to the query in the
# same way later; anything fitted on the reference (the choice of highly variable genes,
# PCA, scaling) must **not** be refitted on the query: the model's stored centring mean and
# PCA loadings take care of it.

# %% tags=["remove-stderr"]
rng = np.random.default_rng(0)
is_query = rng.random(adata.n_obs) < 0.25
ref, query = adata[~is_query].copy(), adata[is_query].copy()

for a in (ref, query):
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)

sc.pp.highly_variable_genes(ref, n_top_genes=300)
sc.pp.pca(ref, n_comps=30)
sc.pp.neighbors(ref, n_neighbors=15)
print(f"reference: {ref.n_obs} cells, query: {query.n_obs} cells")

# %% [markdown]
# Fit on the reference:

# %%
gb.tl.glassbox_umap(ref, random_state=0, quiet=True)
print(ref.uns["glassbox_umap"]["input"])
gb.pl.glassbox_umap(ref, color="cell_type", title="reference")

# %% [markdown]
# With planted markers we know the right answer: the top contributors of each type should be
# its own markers. `gb.tl.rank_contributions` checks it:

# %%
gb.tl.rank_contributions(ref, "cell_type")
top = gb.get.rank_contributions_df(ref, "cell_type", n_genes=10)
planted = ref.uns["planted_markers"]
top["planted marker"] = [
    g in set(planted[t]) for t, g in zip(top["group"], top["gene"], strict=True)
]
top.groupby("group")["planted marker"].mean().rename(
    "share of top-10 contributors that are planted markers"
)

# %% [markdown]
# ## Saving and loading
#
# ### In the `.h5ad` file
#
# `gb.tl.glassbox_umap` stores the fitted network in `uns['glassbox_umap']['model']` as plain
# numpy arrays and numbers (weights, the centring mean, the PCA loadings, the
# hyperparameters), so the model travels with the data through `.h5ad` (and `.zarr`).

# %%
workdir = Path(tempfile.mkdtemp())
ref.write_h5ad(workdir / "reference.h5ad")
ref_loaded = ad.read_h5ad(workdir / "reference.h5ad")
sorted(ref_loaded.uns["glassbox_umap"]["model"])

# %% [markdown]
# `GlassBoxUMAP.from_adata` rebuilds the estimator. Its genes are the model's genes, in
# order (`feature_names_in_`), and on the same machine it reproduces the stored embedding
# bit for bit:

# %%
est = gb.GlassBoxUMAP.from_adata(ref_loaded)
print(est)
genes = est.feature_names_in_
X_ref = ref_loaded[:, genes].X
print("identical embedding:", np.array_equal(est.transform(X_ref), ref.obsm["X_glassbox_umap"]))

# %% [markdown]
# ### As a standalone file
#
# `est.save` writes one `.npz` file: arrays plus JSON metadata, read back with
# `allow_pickle=False`. Note that the file does not record the gene names; keep them (here
# `genes`) alongside, or use the `.h5ad` route above.

# %%
path = est.save(workdir / "reference_model.npz")
est2 = gb.GlassBoxUMAP.load(path)
print(path.name, f"{path.stat().st_size / 1024:.0f} KiB")
print("identical embedding:", np.array_equal(est2.transform(X_ref), ref.obsm["X_glassbox_umap"]))
c = est2.compute_contributions(X_ref[:5])
print("contributions of 5 cells:", c.shape)

# %% [markdown]
# ## Mapping new cells
#
# `gb.tl.glassbox_transform(query, reference)` aligns the query's genes with the model's by
# name, embeds the query and computes its contributions. It writes the same fields as
# `gb.tl.glassbox_umap`, so every function of `gb.get` and `gb.pl` works on the query too.

# %%
gb.tl.glassbox_transform(query, ref_loaded)
print(query.uns["glassbox_umap"]["params"]["mapped_from_reference"])
print(f"exactness on the query: {query.uns['glassbox_umap']['exactness']:.1e}")
query

# %%
fig, ax = plt.subplots(figsize=(6, 5))
types = ref.obs["cell_type"].cat.categories
colors = dict(zip(types, ref.uns["cell_type_colors"], strict=True))
ref_emb, query_emb = ref.obsm["X_glassbox_umap"], query.obsm["X_glassbox_umap"]
ax.scatter(*ref_emb.T, c="lightgrey", s=8, label="reference")
ax.scatter(*query_emb.T, c=query.obs["cell_type"].map(colors), s=14, edgecolor="k", lw=0.3)
for t in types:
    ax.scatter([], [], c=colors[t], label=f"query: {t}")
ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
ax.set_title("query cells mapped onto the reference")
ax.set_axis_off()
plt.show()

# %% [markdown]
# Do the query cells land among reference cells of their own type? A 15-nearest-neighbour
# vote in the embedding:

# %%
from sklearn.neighbors import KNeighborsClassifier

knn = KNeighborsClassifier(n_neighbors=15).fit(ref_emb, ref.obs["cell_type"])
accuracy = (knn.predict(query_emb) == query.obs["cell_type"].to_numpy()).mean()
print(f"label transfer accuracy: {accuracy:.3f}")

# %% [markdown]
# The query's contributions are relative to the **reference's** mean cell (the model's
# baseline), so they are directly comparable with the reference's:

# %%
gb.tl.rank_contributions(query, "cell_type")
gb.get.rank_contributions_df(query, "cell_type", n_genes=3)

# %% [markdown]
# ## Missing genes
#
# A query usually comes from another experiment with another gene list. By default
# `glassbox_transform` refuses a query that lacks some of the model's genes, and names them:

# %%
lacking = query[:, query.var_names[5:]].copy()
try:
    gb.tl.glassbox_transform(lacking, ref_loaded)
except ValueError as err:
    print("ValueError:", str(err)[:300])

# %% [markdown]
# With `missing_genes="zero"` the missing genes are set to zero expression (so they
# contribute `-mean` times their weight, relative to the reference's mean cell); check how
# many there were in `uns['glassbox_umap']['params']['n_missing_genes']` before trusting
# the result.

# %%
gb.tl.glassbox_transform(lacking, ref_loaded, missing_genes="zero")
print("missing genes:", lacking.uns["glassbox_umap"]["params"]["n_missing_genes"])

# %% [markdown]
# ## Without AnnData
#
# The same works with the estimator alone: fit on a matrix, `transform` new rows and
# `compute_contributions` for them.
#
# ```python
# est = gb.GlassBoxUMAP(pca_components=30, random_state=0).fit(X_train)
# est.save("model.npz")
# est = gb.GlassBoxUMAP.load("model.npz")
# embedding = est.transform(X_new)
# contributions = est.compute_contributions(X_new)  # (n_new, 2, n_features)
# ```

# %% tags=["remove-cell"]
# Remove this tutorial's temporary files.
import shutil

shutil.rmtree(workdir)
