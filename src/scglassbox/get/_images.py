"""Per-pixel contributions of a fit on images (``use_rep`` naming an N-D ``obsm`` entry)."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from .. import _keys
from .._docs import doc_params
from . import _access as acc
from ._aggregate import aggregate, membership


def image_shape(adata: AnnData, key: str) -> tuple[int, ...]:
    """The shape of one image the model reads, or a clear error for a fit on other input."""
    shape = acc.key_info(adata, key).get("model", {}).get("input_shape")
    if shape is None or len(np.atleast_1d(shape)) < 2:
        raise ValueError(
            f"the fit under {key!r} did not read images: run gb.tl.glassbox_umap(adata, "
            "use_rep=<obsm key of (n, H, W) or (n, C, H, W) images>) first."
        )
    return tuple(int(s) for s in np.atleast_1d(shape))


@doc_params
def image_contributions(
    adata: AnnData, key: str = _keys.DEFAULT_KEY, *, obs: object = None
) -> np.ndarray:
    """Per-cell, per-pixel contributions of a fit on images, in the images' shape.

    For :func:`~scglassbox.tl.glassbox_umap` with ``use_rep`` naming images in ``obsm``:
    :func:`contributions` with the pixels put back in place. Summed over the pixels (and
    channels) they give each cell's coordinates; they are relative to the mean image.

    Parameters
    ----------
    {adata}
    {key}
    {obs}

    Returns
    -------
    ``(n_cells, n_components, H, W)`` or ``(n_cells, n_components, C, H, W)`` float32, as the
    images were.

    Examples
    --------
    >>> import numpy as np, scanpy as sc, scglassbox as gb
    >>> adata = gb.datasets.digits_images()
    >>> sc.pp.neighbors(adata, n_neighbors=15, use_rep="X")
    >>> gb.tl.glassbox_umap(adata, use_rep="X_image", encoder="conv", epochs=5, quiet=True)
    >>> C = gb.get.image_contributions(adata, obs=[0, 1])
    >>> C.shape
    (2, 2, 1, 8, 8)
    >>> bool(np.allclose(C.sum(axis=(2, 3, 4)), adata.obsm["X_glassbox_umap"][:2], atol=1e-4))
    True
    """
    from ._contributions import gather

    shape = image_shape(adata, key)
    n_dims = acc.embedding(adata, key).shape[1]
    return gather(adata, key, (n_dims, *shape),
                  lambda block: block.reshape(len(block), n_dims, *shape),
                  "image contributions", obs=obs)  # fmt: skip


def group_images(
    adata: AnnData, key: str, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: mean image, mean per-pixel contributions ``(groups, dims, *shape)``, counts.

    One streamed pass over the cells; codes < 0 belong to no group.
    """
    from ._contributions import iter_contributions

    shape = image_shape(adata, key)
    rep = acc.rep_name(acc.source(adata, key))
    images = acc.rep_array(adata, rep)
    n_dims = acc.embedding(adata, key).shape[1]

    def chunks():
        for pos, block in iter_contributions(adata, key):
            flat = np.asarray(images[pos], dtype=np.float64).reshape(len(pos), -1)
            both = np.concatenate([flat, block.reshape(len(pos), -1)], axis=1)
            yield membership(codes[pos], n_groups), both

    stats = aggregate(chunks(), n_groups)
    n_pix = int(np.prod(shape))
    mean_image = stats.mean[:, :n_pix].reshape(n_groups, *shape)
    mean_contrib = stats.mean[:, n_pix:].reshape(n_groups, n_dims, *shape)
    return mean_image.astype(np.float32), mean_contrib.astype(np.float32), stats.count
