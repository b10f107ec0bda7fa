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
# # Images: which pixels place each cell where
#
# Cells are not only measured by expression: imaging flow cytometry, Cell Painting and the
# image patch under each spot or segmented cell of a spatial assay give one small image per
# cell. Stored as an array of shape `(n_cells, C, H, W)` in `obsm`, such images can be the
# glass box's input: `encoder="conv"` builds a convolutional encoder that is bias-free and
# piecewise linear like the MLP, so each cell's coordinates are an **exact sum of per-pixel
# contributions** (relative to the mean image).
#
# Here on scikit-learn's 1,797 handwritten digits (8 x 8 pixels, bundled, no download), as
# an AnnData: `X` the 64 pixels, `obsm['X_image']` the same as `(n, 1, 8, 8)` images.

# %%
import matplotlib.pyplot as plt
import numpy as np
import scanpy as sc

import scglassbox as gb

sc.settings.set_figure_params(dpi=80, frameon=False, facecolor="white")
adata = gb.datasets.digits_images()
adata

# %% [markdown]
# The neighbour graph comes from scanpy as usual (here on the 64 pixels); the encoder reads
# the images through `use_rep`.

# %%
sc.pp.neighbors(adata, n_neighbors=15, use_rep="X")
gb.tl.glassbox_umap(adata, use_rep="X_image", encoder="conv", quiet=True)
print(adata.uns["glassbox_umap"]["input"])
q = adata.uns["glassbox_umap"]["quality"]
print(f"kNN preservation {q['knn_preservation']:.3f}, trustworthiness {q['trustworthiness']:.3f}")
gb.pl.glassbox_umap(adata, color="digit", legend_loc="on data")

# %% [markdown]
# `gb.get.image_contributions` returns every cell's contributions in the images' shape,
# `(n_cells, n_components, C, H, W)`; over the pixels they add up to the coordinates.

# %%
C = gb.get.image_contributions(adata)
emb = adata.obsm["X_glassbox_umap"]
err = np.abs(C.sum(axis=(2, 3, 4)) - emb).max() / np.abs(emb).max()
print(C.shape, f"relative error of the sum: {err:.1e}")

# %% [markdown]
# Per digit, the mean image and each pixel's mean push along each dimension of the map: red
# pixels move the digit's cells along the dimension, blue ones against it. The pixels that
# matter are those where a digit differs from the mean image: the open centre of a 0, the
# stroke of a 7's diagonal, the closed loop of a 9.

# %%
gb.pl.image_contributions(adata, "digit")

# %% [markdown]
# The same for single cells: three 3s that the map puts in different places, and the pixels
# that put them there.

# %%
threes = np.flatnonzero(adata.obs["digit"] == "3")
x = emb[threes, 0]
picked = threes[[np.argmin(x), np.argsort(x)[len(x) // 2], np.argmax(x)]]
gb.pl.image_contributions(adata, obs=picked)

# %% [markdown]
# How the convolutional map compares with an MLP reading the same 64 pixels as a vector
# (`encoder="default"` on the same `use_rep`): 15-nearest-neighbour label accuracy in the
# map (5-fold cross-validated) and the map's quality figures. On images this small the MLP
# keeps more of the neighbourhoods: a convolution's shared, local filters pay off on larger
# images, where a pattern can appear anywhere; both splits are exact. Choose by the quality
# figures that `uns[key]['quality']` records for every fit.

# %%
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

gb.tl.glassbox_umap(adata, use_rep="X_image", quiet=True, key_added="mlp")
for key in ("glassbox_umap", "mlp"):
    acc = cross_val_score(
        KNeighborsClassifier(15), adata.obsm[f"X_{key}"], adata.obs["digit"], cv=5
    ).mean()
    q = adata.uns[key]["quality"]
    print(f"{key:>14}: label accuracy {acc:.3f}, kNN preservation {q['knn_preservation']:.3f}")

# %%
fig, axs = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
for ax, key in zip(axs, ["glassbox_umap", "mlp"], strict=True):
    gb.pl.glassbox_umap(adata, key=key, color="digit", ax=ax, show=False, legend_loc="on data")
    ax.set_title(f"encoder: {adata.uns[key]['params']['encoder']}")
