"""Per-pixel contributions of a fit on images: which pixels place the cells where."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.figure import Figure

from .. import _keys
from .._docs import doc_params
from ..get import _access as acc
from ..get import _images as gi
from ._utils import finish


def _as_rgb_or_grey(img: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` (or ``(H, W)``) to something imshow draws: RGB for 3 channels, else mean."""
    if img.ndim == 2:
        return img
    if img.shape[0] == 3:
        rgb = np.moveaxis(img, 0, -1)
        lo, hi = rgb.min(), rgb.max()
        return (rgb - lo) / (hi - lo) if hi > lo else np.zeros_like(rgb)
    return img.mean(axis=0)


@doc_params
def image_contributions(
    adata: AnnData,
    groupby: str | None = None,
    *,
    groups: Sequence[str] | None = None,
    obs: object = None,
    key: str = _keys.DEFAULT_KEY,
    cmap: str = "RdBu_r",
    show: bool | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
) -> Figure | list | None:
    """Which pixels place the cells where: mean image and per-pixel contributions.

    For a fit on images (``use_rep`` naming ``(n, H, W)`` or ``(n, C, H, W)`` images in
    ``obsm``). One column per group of ``groupby`` (means over its cells) or per cell of
    ``obs``: the (mean) image on top, then for each embedding dimension the (mean)
    contribution of every pixel, summed over channels, red pushing along the dimension and
    blue against it, on one symmetric colour scale per dimension so that columns compare.
    Over the pixels, a cell's contributions sum to its coordinate (relative to the mean
    image).

    Parameters
    ----------
    {adata}
    groupby
        A categorical ``obs`` column: one row per group (streamed over all cells).
    groups
        Only these groups.
    obs
        Instead of ``groupby``: these cells, one row each (mask, positions or names).
    {key}
    cmap
        Diverging colour map of the contributions.
    {show_save}

    Returns
    -------
    {plot_returns}

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = gb.datasets.digits_images()
    >>> sc.pp.neighbors(adata, n_neighbors=15, use_rep="X")
    >>> gb.tl.glassbox_umap(adata, use_rep="X_image", encoder="conv", quiet=True)
    >>> gb.pl.image_contributions(adata, "digit")

    .. image:: /_static/plots/image_contributions.png
    """
    import matplotlib.pyplot as plt

    if (groupby is None) == (obs is None):
        raise ValueError("pass either groupby (one row per group) or obs (one row per cell).")
    if groupby is not None:
        cats = acc.categorical(adata, groupby)
        names = [str(c) for c in cats.categories]
        chosen = names if groups is None else [str(g) for g in groups]
        unknown = [g for g in chosen if g not in names]
        if unknown:
            raise ValueError(f"groups {unknown} are not groups of {groupby!r}: {names}.")
        images, contrib, _ = gi.group_images(adata, key, np.asarray(cats.codes), len(names))
        idx = [names.index(g) for g in chosen]
        images, contrib, labels = images[idx], contrib[idx], chosen
    else:
        positions = acc.obs_positions(adata, obs)
        contrib = gi.image_contributions(adata, key, obs=positions)
        rep = acc.rep_name(acc.source(adata, key))
        images = np.asarray(acc.rep_array(adata, rep)[positions], dtype=np.float32)
        labels = [str(n) for n in adata.obs_names[positions]]
    if contrib.ndim == 5:  # (rows, dims, C, H, W): channels add up exactly
        contrib = contrib.sum(axis=2)
    n_cols, n_dims = contrib.shape[:2]  # one column per group or cell, one row per panel kind
    size = (1.2 * n_cols + 1.6, 1.25 * (n_dims + 1) + 0.3)
    fig, axs = plt.subplots(n_dims + 1, n_cols, figsize=size, squeeze=False, layout="constrained")
    limits = [float(np.abs(contrib[:, d]).max()) or 1.0 for d in range(n_dims)]
    for j in range(n_cols):
        axs[0, j].imshow(_as_rgb_or_grey(images[j]), cmap="gray_r")
        axs[0, j].set_title(labels[j], fontsize=9)
        for d in range(n_dims):
            axs[d + 1, j].imshow(contrib[j, d], cmap=cmap, vmin=-limits[d], vmax=limits[d])
    for d in range(n_dims):
        fig.colorbar(axs[d + 1, -1].images[0], ax=axs[d + 1, :], shrink=0.9, pad=0.01)
    axs[0, 0].set_ylabel("mean image" if groupby is not None else "image")
    for d in range(n_dims):
        axs[d + 1, 0].set_ylabel(f"push along\n{key}{d + 1}")
    for a in axs.ravel():
        a.set_xticks([])
        a.set_yticks([])
    return finish(fig, list(axs.ravel()), "gb_image_contributions", show=show,
                  return_fig=return_fig, save=save)  # fmt: skip
