import numpy as np
import pandas as pd
import pytest

from scglassbox import pl
from scglassbox.pl import _read as v


def group_means(adata, view, groupby="bulk_labels"):
    values, names = v.contribution_view(adata, view)
    df = pd.DataFrame(values, columns=names)
    return df.groupby(adata.obs[groupby].to_numpy()).mean()


def expected_top(means, n, signed=False, unique=True):
    """Each group's top ``n`` genes; ``unique``: among the genes it scores highest on."""
    score = means.abs() if signed else means
    top = {}
    for g in means.index:
        ranked = score.loc[g].sort_values(ascending=False, kind="stable")
        if unique:  # by hand: the genes whose largest score across groups is this group's
            ranked = ranked[[score[gene].max() == score.loc[g, gene] for gene in ranked.index]]
        top[g] = list(ranked.index[:n])
    return top


def group_labels(plot):
    groups = getattr(plot, "var_groups", None)  # scanpy >= 1.11
    return list(groups.labels if groups is not None else plot.var_group_labels)


def test_matrixplot(pbmc_gb):
    mp = pl.contribution_matrixplot(pbmc_gb, "bulk_labels", n_genes=3, return_fig=True)
    means = group_means(pbmc_gb, "normed_l2")
    top = expected_top(means, 3)
    cats = list(pbmc_gb.obs["bulk_labels"].cat.categories)
    assert group_labels(mp) == cats
    flat = [g for c in cats for g in top[c]]
    assert list(mp.var_names) == flat
    assert len(set(flat)) == len(flat)  # each gene once
    values = mp.values_df
    assert list(values.index) == cats
    np.testing.assert_allclose(
        values.to_numpy(), means.loc[cats, flat].to_numpy(), rtol=1e-4, atol=1e-8
    )
    mp.make_figure()
    main = mp.get_axes()["mainplot_ax"]
    assert [t.get_text() for t in main.get_xticklabels()] == flat
    assert mp.color_legend_title == "mean normed L2\ncontribution in group"


def test_matrixplot_signed_groups(pbmc_gb):
    groups = ["CD19+ B", "CD34+"]
    mp = pl.contribution_matrixplot(
        pbmc_gb, "bulk_labels", view="dim2", groups=groups, n_genes=4, return_fig=True
    )
    means = group_means(pbmc_gb, "dim2").loc[groups]
    top = expected_top(means, 4, signed=True)
    assert list(mp.values_df.index) == groups
    assert list(mp.var_names) == top["CD19+ B"] + top["CD34+"]
    assert mp.cmap == "RdBu_r"
    assert mp.vboundnorm.vcenter == 0


def test_dotplot(pbmc_gb):
    dp = pl.contribution_dotplot(pbmc_gb, "bulk_labels", n_genes=2, top_k=10, return_fig=True)
    means = group_means(pbmc_gb, "normed_l2")
    top = expected_top(means, 2)
    cats = list(pbmc_gb.obs["bulk_labels"].cat.categories)
    flat = [g for c in cats for g in top[c]]
    np.testing.assert_allclose(
        dp.dot_color_df.to_numpy(), means.loc[cats, flat].to_numpy(), rtol=1e-4, atol=1e-8
    )
    # dot size: fraction of the group's cells that have the gene in their own top 10
    values, names = v.contribution_view(pbmc_gb, "normed_l2")
    kth = -np.sort(-values, axis=1)[:, 9]
    cols = [list(names).index(g) for g in flat]
    hits = pd.DataFrame(values[:, cols] >= kth[:, None], columns=flat)
    frac = hits.groupby(pbmc_gb.obs["bulk_labels"].to_numpy()).mean().loc[cats]
    np.testing.assert_allclose(dp.dot_size_df.to_numpy(), frac.to_numpy())
    assert "top 10" in dp.size_title
    # unique=False: each group's own top genes, shared genes repeated
    dp = pl.contribution_dotplot(pbmc_gb, "bulk_labels", n_genes=5, unique=False, return_fig=True)
    own = expected_top(means, 5, unique=False)
    assert list(dp.dot_color_df.columns) == [g for c in cats for g in own[c]]
    assert len(set(dp.dot_color_df.columns)) < len(dp.dot_color_df.columns)  # CD52 & co.


def test_errors(pbmc_gb):
    with pytest.raises(KeyError, match="not a column"):
        pl.contribution_matrixplot(pbmc_gb, "nope", show=False)
    with pytest.raises(KeyError, match=r"not in adata\.obs"):
        pl.contribution_dotplot(pbmc_gb, "phase", groups=["G9"], show=False)
    with pytest.raises(ValueError, match="n_genes"):
        pl.contribution_matrixplot(pbmc_gb, "phase", n_genes=0, show=False)


def test_images(linear_gb, check_image):
    check_image(
        pl.contribution_matrixplot(linear_gb, "bulk_labels", n_genes=3, return_fig=True),
        "matrixplot",
    )
    check_image(
        pl.contribution_dotplot(linear_gb, "bulk_labels", n_genes=3, return_fig=True),
        "dotplot",
    )
    check_image(
        pl.contribution_matrixplot(
            linear_gb, "bulk_labels", view="dim2", n_genes=2, return_fig=True
        ),
        "matrixplot_dim2",
    )


def _inside(fig):
    """Every artist (labels included) lies inside the figure."""
    renderer = fig.canvas.get_renderer()
    bbox = fig.get_tightbbox(renderer)
    w, h = fig.get_size_inches()
    tol = 1e-3
    return bbox.x0 >= -tol and bbox.y0 >= -tol and bbox.x1 <= w + tol and bbox.y1 <= h + tol


@pytest.mark.parametrize("func", ["contribution_dotplot", "contribution_matrixplot"])
def test_labels_not_cut(linear_gb, func):
    """Long group and gene names stay inside the figure (were cut: 'CD4+/CD25 T Re')."""
    import matplotlib.pyplot as plt

    plot = getattr(pl, func)
    axes = plot(linear_gb, "bulk_labels", n_genes=3, show=False)
    fig = axes["mainplot_ax"].figure
    assert _inside(fig)
    texts = [t.get_text() for a in fig.axes for t in a.texts + a.get_yticklabels()]
    assert "CD8+/CD45RA+ Naive Cytotoxic" in texts
    # the axes keep their size in inches (the figure grew around them)
    main = axes["mainplot_ax"].get_window_extent()
    fig2 = getattr(pl, func)(linear_gb, "bulk_labels", n_genes=3, return_fig=True)
    fig2.make_figure()  # what .show() and .savefig() call
    assert _inside(fig2.fig)
    assert fig2.get_axes()["mainplot_ax"].get_window_extent().width == pytest.approx(main.width)
    # a figure the user passed in is left alone
    fig3, ax = plt.subplots(figsize=(4, 3))
    getattr(pl, func)(linear_gb, "bulk_labels", n_genes=3, ax=ax, show=False)
    assert tuple(fig3.get_size_inches()) == (4, 3)
