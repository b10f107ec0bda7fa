"""Images in ``obsm`` as the encoder's input (``use_rep``, ``encoder='conv'``): per-pixel
contributions that sum to the map, on disk and for new cells, and their plot."""

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

import scglassbox as gb

RTOL = 1e-5


def exactness(total, emb):
    return np.abs(total - emb).max() / np.abs(emb).max()


@pytest.fixture(scope="module")
def digits():
    adata = gb.datasets.digits_images()[:700].copy()
    sc.pp.neighbors(adata, n_neighbors=15, use_rep="X")
    gb.tl.glassbox_umap(adata, use_rep="X_image", encoder="conv", epochs=8, quiet=True)
    return adata


def test_fit_on_images_is_exact_per_pixel(digits):
    uns = digits.uns["glassbox_umap"]
    assert "as images of shape (1, 8, 8)" in uns["input"]
    assert list(uns["model"]["input_shape"]) == [1, 8, 8]
    assert uns["params"]["encoder"] == "conv"
    names = np.asarray(uns["var_names"]).astype(str)
    assert names[0] == "X_image_c0_y0_x0" and names[9] == "X_image_c0_y1_x1"
    C = gb.get.image_contributions(digits)
    emb = digits.obsm["X_glassbox_umap"]
    assert C.shape == (digits.n_obs, 2, 1, 8, 8)
    assert exactness(C.sum(axis=(2, 3, 4), dtype=np.float64), emb) <= RTOL
    # the image layout is the flat one put back in place (C order)
    flat = gb.get.contributions(digits, obs=[3])
    np.testing.assert_array_equal(C[3].reshape(2, -1), flat[0])


def test_single_channel_images_keep_their_shape(digits):
    adata = digits.copy()
    adata.obsm["pixels2d"] = adata.obsm["X_image"][:, 0]  # (n, 8, 8)
    gb.tl.glassbox_umap(adata, use_rep="pixels2d", encoder="conv", epochs=2, quiet=True,
                        key_added="plain")  # fmt: skip
    C = gb.get.image_contributions(adata, "plain", obs=np.arange(5))
    assert C.shape == (5, 2, 8, 8)
    emb = adata.obsm["X_plain"][:5]
    assert exactness(C.sum(axis=(2, 3), dtype=np.float64), emb) <= RTOL


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_round_trip_recomputes_exact_pixels(digits, tmp_path, fmt):
    path = tmp_path / f"d.{fmt}"
    getattr(digits, f"write_{fmt}")(path)
    back = getattr(ad, f"read_{fmt}")(path)
    del back.obsm["glassbox_umap_contributions"]  # from the model and obsm['X_image']
    C = gb.get.image_contributions(back, obs=np.arange(50))
    np.testing.assert_allclose(C, gb.get.image_contributions(digits, obs=np.arange(50)),
                               atol=1e-5)  # fmt: skip
    total = C.sum(axis=(2, 3, 4), dtype=np.float64)
    assert exactness(total, back.obsm["X_glassbox_umap"][:50]) <= RTOL


def test_new_images_are_mapped(digits):
    query = gb.datasets.digits_images()[700:800].copy()
    gb.tl.glassbox_transform(query, digits)
    C = gb.get.image_contributions(query)
    assert C.shape == (100, 2, 1, 8, 8)
    assert exactness(C.sum(axis=(2, 3, 4), dtype=np.float64), query.obsm["X_glassbox_umap"]) <= RTOL
    same = digits[:20].copy()
    gb.tl.glassbox_transform(same, digits, key_added="again")
    np.testing.assert_allclose(same.obsm["X_again"], digits.obsm["X_glassbox_umap"][:20], atol=1e-4)


def test_plot_shows_group_means(digits):
    fig = gb.pl.image_contributions(digits, "digit", groups=["0", "7"], return_fig=True)
    axs = np.asarray(fig.axes[:6]).reshape(3, 2)  # image, dim1, dim2 rows x 2 groups
    labels = digits.obs["digit"].astype(str).to_numpy()
    C = gb.get.image_contributions(digits)
    for j, g in enumerate(["0", "7"]):
        mean = C[labels == g].mean(0)[:, 0]  # (dims, 8, 8), one channel
        np.testing.assert_allclose(axs[1, j].images[0].get_array(), mean[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(axs[2, j].images[0].get_array(), mean[1], rtol=1e-4, atol=1e-6)
        image = digits.obsm["X_image"][labels == g].mean(0)[0]
        np.testing.assert_allclose(axs[0, j].images[0].get_array(), image, rtol=1e-5)
    lo, hi = axs[1, 0].images[0].get_clim()
    assert lo == pytest.approx(-hi)
    fig = gb.pl.image_contributions(digits, obs=[0, 1, 2], return_fig=True)
    assert [a.get_title() for a in fig.axes[:3]] == list(digits.obs_names[:3])


def test_bad_inputs_are_refused(digits, pbmc_fitted):
    with pytest.raises(ValueError, match="did not read images"):
        gb.get.image_contributions(pbmc_fitted)
    with pytest.raises(ValueError, match="either groupby"):
        gb.pl.image_contributions(digits, "digit", obs=[0])
    adata = digits.copy()
    adata.obsm["X_5d"] = np.zeros((adata.n_obs, 1, 1, 2, 2), dtype=np.float32)
    before = set(adata.uns)
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        gb.tl.glassbox_umap(adata, use_rep="X_5d", quiet=True, key_added="bad")
    assert set(adata.uns) == before
