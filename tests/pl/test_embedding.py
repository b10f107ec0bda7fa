import matplotlib.colors as mcolors
import numpy as np
import pytest
from matplotlib.figure import Figure

from scglassbox import pl
from scglassbox.pl import _read as v
from scglassbox.pl._embedding import top_feature_labels


def cells_collection(ax, n):
    """The scatter holding all cells (scanpy adds empty ones for legends)."""
    (coll,) = [c for c in ax.collections if len(c.get_offsets()) == n]
    return coll


def sorted_rows(x):
    x = np.asarray(x, dtype=np.float64)
    return x[np.lexsort(x.T[::-1])]


def test_glassbox_umap(pbmc_gb):
    axs = pl.glassbox_umap(pbmc_gb, color=["bulk_labels", "n_counts"], show=False)
    assert [a.get_title() for a in axs] == ["bulk_labels", "n_counts"]
    emb = pbmc_gb.obsm["X_glassbox_umap"]
    coll = cells_collection(axs[0], pbmc_gb.n_obs)
    np.testing.assert_allclose(sorted_rows(coll.get_offsets()), sorted_rows(emb), rtol=1e-6)
    # categorical colours are those stored in uns, one per group
    cats = pbmc_gb.obs["bulk_labels"].cat.categories
    colors = dict(zip(cats, pbmc_gb.uns["bulk_labels_colors"], strict=True))
    face = coll.get_facecolors()[:, :3]
    offsets = np.asarray(coll.get_offsets())
    first = pbmc_gb.obs["bulk_labels"].iloc[0]
    i = np.flatnonzero(np.all(np.isclose(offsets, emb[0]), axis=1))[0]
    np.testing.assert_allclose(face[i], mcolors.to_rgb(colors[first]), atol=1e-6)
    legend = [t.get_text() for t in axs[0].get_legend().get_texts()]
    assert legend == list(pbmc_gb.obs["bulk_labels"].cat.categories)


def test_glassbox_umap_missing_fit(pbmc_gb):
    with pytest.raises(KeyError, match=r"run gb\.tl\.glassbox_umap"):
        pl.glassbox_umap(pbmc_gb, key="nope", show=False)


def test_contributions_l2(pbmc_gb):
    genes = ["CST3", "NKG7", "HLA-DRA"]
    fig = pl.contributions(pbmc_gb, genes, return_fig=True)
    assert isinstance(fig, Figure)
    axs = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in axs] == genes
    # the colour bars say what the colour means, in words
    bars = [a.collections[-1].colorbar for a in axs]
    assert all(b.ax.get_ylabel() == "contribution to the cell's position (L2)" for b in bars)
    values, _ = v.contribution_view(pbmc_gb, "l2", genes=genes)
    for i, a in enumerate(axs):
        coll = cells_collection(a, pbmc_gb.n_obs)
        drawn = np.asarray(coll.get_array())
        np.testing.assert_allclose(np.sort(drawn), np.sort(values[:, i]), rtol=1e-6)
        assert coll.get_cmap().name == "viridis"
        # highest values drawn last (on top)
        assert drawn[-1] == pytest.approx(values[:, i].max())


def test_contributions_signed(pbmc_gb):
    axs = pl.contributions(pbmc_gb, ["CST3", "LYZ"], view="dim2", show=False)
    values, _ = v.contribution_view(pbmc_gb, "dim2", genes=["CST3", "LYZ"])
    for i, a in enumerate(axs):
        assert a.get_title() == ["CST3", "LYZ"][i]
        label = a.collections[-1].colorbar.ax.get_ylabel()
        assert label == "push along glassbox_umap2 (red +, blue -)"
        coll = cells_collection(a, pbmc_gb.n_obs)
        assert coll.get_cmap().name == "RdBu_r"
        m = np.abs(values[:, i]).max()
        assert coll.norm.vmin == pytest.approx(-m)
        assert coll.norm.vmax == pytest.approx(m)
        drawn = np.asarray(coll.get_array())
        assert abs(drawn[-1]) == pytest.approx(m)  # strongest (either sign) on top
        np.testing.assert_allclose(np.sort(drawn), np.sort(values[:, i]), rtol=1e-6)


def test_contributions_single_ax_and_vmax(pbmc_gb):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    out = pl.contributions(pbmc_gb, "CST3", view="dim1", vmax=0.1, ax=ax, show=False)
    assert out is ax
    coll = cells_collection(ax, pbmc_gb.n_obs)
    assert (coll.norm.vmin, coll.norm.vmax) == pytest.approx((-0.1, 0.1))
    with pytest.raises(ValueError, match="single panel"):
        pl.contributions(pbmc_gb, ["CST3", "LYZ"], ax=ax, show=False)


def test_contributions_unknown_genes(pbmc_gb):
    with pytest.raises(KeyError, match=r"2 gene\(s\).*\['NOTAGENE', 'ALSO_NOT'\]"):
        pl.contributions(pbmc_gb, ["CST3", "NOTAGENE", "ALSO_NOT"], show=False)
    with pytest.raises(ValueError, match="view must be"):
        pl.contributions(pbmc_gb, "CST3", view="dim7", show=False)


def test_top_feature(pbmc_gb):
    ax = pl.top_feature(pbmc_gb, n_top=5, show=False)
    values, names = v.contribution_view(pbmc_gb, "l2")
    top = names[values.argmax(axis=1)]
    genes, counts = np.unique(top, return_counts=True)
    labels = top_feature_labels(pbmc_gb, n_top=5)
    kept = list(labels.categories[:-1])
    assert labels.categories[-1] == "other" and len(kept) == 5
    # The five most frequent top genes (ties between equal counts may go either way).
    kept_counts = np.array([counts[genes == g][0] for g in kept])
    assert kept_counts.min() >= counts[~np.isin(genes, kept)].max()
    assert np.all(np.diff(kept_counts) <= 0)  # most frequent first
    np.testing.assert_array_equal(np.asarray(labels), np.where(np.isin(top, kept), top, "other"))
    assert ax.get_title() == "top contributing gene"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [*kept, "other"]
    assert ax.get_legend().get_title().get_text() == "top gene (grey: rarer)"
    coll = cells_collection(ax, pbmc_gb.n_obs)
    face = coll.get_facecolors()[:, :3]
    n_other = int((np.asarray(labels) == "other").sum())
    # 'other' cells are grey and drawn first (underneath)
    np.testing.assert_allclose(face[:n_other], [mcolors.to_rgb("#d3d3d3")] * n_other)
    assert not np.isclose(face[n_other:], mcolors.to_rgb("#d3d3d3")).all(axis=1).any()


def test_top_feature_all_listed(linear_gb):
    labels = top_feature_labels(linear_gb, n_top=1000)
    assert "other" not in labels.categories
    with pytest.raises(ValueError, match="n_top"):
        top_feature_labels(linear_gb, n_top=0)


def test_images(linear_gb, check_image):
    check_image(pl.glassbox_umap(linear_gb, color="bulk_labels", return_fig=True), "glassbox_umap")
    genes = ["CST3", "NKG7", "HLA-DRA"]
    check_image(pl.contributions(linear_gb, genes, return_fig=True), "contributions_l2")
    check_image(
        pl.contributions(linear_gb, genes, view="dim1", return_fig=True), "contributions_dim1"
    )
    check_image(pl.top_feature(linear_gb, n_top=8, return_fig=True), "top_feature")


def test_image_comparison_is_sensitive(linear_gb, check_image):
    """A different plot must not pass as the baseline (the tolerance is not vacuous)."""
    import os

    if os.environ.get("SCGLASSBOX_UPDATE_BASELINES"):
        pytest.skip("updating baselines")
    fig = pl.contributions(linear_gb, ["CST3", "NKG7", "HLA-DRA"], view="dim2", return_fig=True)
    with pytest.raises(pytest.fail.Exception, match="images differ"):
        check_image(fig, "contributions_dim1")
