import numpy as np
import pytest
from matplotlib.patches import Rectangle

import scglassbox as gb
from scglassbox import pl
from scglassbox.get import gene_importance_df
from scglassbox.pl import _read as v


def bars_of(ax):
    """(gene labels top to bottom, bar widths top to bottom)."""
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    rects.sort(key=lambda r: -r.get_y())
    ticks = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=True), key=lambda t: -t[0])
    labels = [t.get_text() for _, t in ticks]
    return labels, np.array([r.get_width() for r in rects])


def test_bars_all_cells(pbmc_gb):
    ax = pl.contribution_bars(pbmc_gb, n_genes=12, show=False)
    values, names = v.contribution_view(pbmc_gb, "l2")
    mean = values.mean(axis=0)
    order = np.argsort(-mean, kind="stable")[:12]
    labels, widths = bars_of(ax)
    assert labels == list(names[order])
    np.testing.assert_allclose(widths, mean[order], rtol=1e-5)
    assert ax.get_title() == f"all cells (n={pbmc_gb.n_obs})"
    assert ax.get_xlabel() == "mean L2 contribution"
    # SEM error bars: one segment per bar with half-length = SEM
    (err,) = [c for c in ax.collections if len(c.get_segments()) == 12]
    half = np.array([abs(s[1, 0] - s[0, 0]) / 2 for s in err.get_segments()])
    sem = values.std(axis=0, ddof=1) / np.sqrt(pbmc_gb.n_obs)
    np.testing.assert_allclose(np.sort(half), np.sort(sem[order]), rtol=1e-4)


def test_bars_groups_signed(pbmc_gb):
    groups = ["CD14+ Monocyte", "CD56+ NK"]
    axs = pl.contribution_bars(
        pbmc_gb, groupby="bulk_labels", groups=groups, view="dim1", n_genes=8, show=False
    )
    assert len(axs) == 2
    values, names = v.contribution_view(pbmc_gb, "dim1")
    for g, ax in zip(groups, axs, strict=True):
        sel = (pbmc_gb.obs["bulk_labels"] == g).to_numpy()
        mean = values[sel].mean(axis=0)
        order = np.argsort(-np.abs(mean), kind="stable")[:8]
        labels, widths = bars_of(ax)
        assert labels == list(names[order])
        np.testing.assert_allclose(widths, mean[order], rtol=1e-4, atol=1e-7)
        assert ax.get_title() == f"bulk_labels: {g} (n={sel.sum()})"
        colors = {tuple(np.round(p.get_facecolor()[:3], 3)) for p in ax.patches}
        assert colors <= {(0.698, 0.094, 0.169), (0.129, 0.4, 0.675)}  # red / blue


def test_bars_all_groups_and_mask(pbmc_gb):
    axs = pl.contribution_bars(pbmc_gb, groupby="phase", n_genes=5, show=False)
    assert len(axs) == pbmc_gb.obs["phase"].nunique()
    mask = (pbmc_gb.obs["n_counts"] > pbmc_gb.obs["n_counts"].median()).to_numpy()
    ax = pl.contribution_bars(pbmc_gb, mask=mask, view="normed_l2", n_genes=5, show=False)
    values, names = v.contribution_view(pbmc_gb, "normed_l2")
    mean = values[mask].mean(axis=0)
    labels, _ = bars_of(ax)
    assert labels == list(names[np.argsort(-mean, kind="stable")[:5]])
    assert ax.get_title() == f"selected cells (n={mask.sum()})"


def test_bars_errors(pbmc_gb):
    mask = np.ones(pbmc_gb.n_obs, bool)
    with pytest.raises(ValueError, match="either mask or groupby"):
        pl.contribution_bars(pbmc_gb, mask=mask, groupby="phase", show=False)
    with pytest.raises(ValueError, match="groups needs groupby"):
        pl.contribution_bars(pbmc_gb, groups="G1", show=False)
    with pytest.raises(KeyError, match=r"not in adata\.obs"):
        pl.contribution_bars(pbmc_gb, groupby="phase", groups=["G7"], show=False)
    with pytest.raises(ValueError, match="boolean array"):
        pl.contribution_bars(pbmc_gb, mask=np.ones(3, bool), show=False)
    with pytest.raises(ValueError, match="selects no cells"):
        pl.contribution_bars(pbmc_gb, mask=~mask, show=False)


def test_ranking(pbmc_gb):
    axs = pl.ranking(pbmc_gb, n_genes=10, show=False)
    df = gene_importance_df(pbmc_gb)
    assert [a.get_title() for a in axs] == ["dim 1", "dim 2"]
    for d, ax in enumerate(axs, start=1):
        top = df[f"dim{d}"].sort_values(ascending=False, kind="stable").iloc[:10]
        labels, widths = bars_of(ax)
        assert labels == list(top.index)
        np.testing.assert_allclose(widths, top.to_numpy(), rtol=1e-6)
    # varm row of a top gene = mean |contribution| over cells
    c = pbmc_gb.obsm["glassbox_umap_contributions"]
    names = list(v.gene_names(pbmc_gb, "glassbox_umap"))
    g = bars_of(axs[0])[0][0]
    assert bars_of(axs[0])[1][0] == pytest.approx(np.abs(c[:, 0, names.index(g)]).mean(), 1e-4)
    ax = pl.ranking(pbmc_gb, dims=1, n_genes=3, show=False)
    assert ax.get_title() == "dim 2"
    with pytest.raises(ValueError, match=r"dims must be integers in \[0, 2\)"):
        pl.ranking(pbmc_gb, dims=[2], show=False)


def test_ranking_old_dimensions_name(pbmc_gb):
    """``dimensions=`` (1-based) still works for one release, with a FutureWarning."""
    with pytest.warns(FutureWarning, match="dimensions= is deprecated.*dims="):
        ax = pl.ranking(pbmc_gb, dimensions=2, n_genes=3, show=False)
    assert ax.get_title() == "dim 2"
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="dimensions - 1"):
        pl.ranking(pbmc_gb, dimensions=[3], show=False)
    with pytest.raises(ValueError, match="pass only dims="):
        pl.ranking(pbmc_gb, dimensions=1, dims=0, show=False)


def test_loss(pbmc_gb):
    ax = pl.loss(pbmc_gb, show=False)
    hist = np.asarray(pbmc_gb.uns["glassbox_umap"]["loss_history"])
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(hist) + 1))
    np.testing.assert_allclose(line.get_ydata(), hist)
    best = int(np.argmin(hist))
    assert ax.get_lines()[1].get_ydata()[0] == pytest.approx(hist[best])
    assert ax.get_legend().get_texts()[0].get_text() == f"lowest: epoch {best + 1}"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", "loss")
    assert pl.loss(pbmc_gb, log=True, show=False).get_yscale() == "log"


def test_images(linear_gb, check_image):
    check_image(pl.contribution_bars(linear_gb, n_genes=15, return_fig=True), "bars_all")
    check_image(
        pl.contribution_bars(
            linear_gb,
            groupby="bulk_labels",
            groups=["CD14+ Monocyte", "CD19+ B"],
            view="dim1",
            n_genes=10,
            return_fig=True,
        ),
        "bars_groups_dim1",
    )
    check_image(pl.ranking(linear_gb, n_genes=15, return_fig=True), "ranking")
    check_image(pl.loss(linear_gb, return_fig=True), "loss")


def test_rank_contributions_plot(pbmc_gb):
    a = pbmc_gb.copy()
    gb.tl.rank_contributions(a, "bulk_labels", groups=["CD14+ Monocyte"], reference="Dendritic")
    ax = gb.pl.rank_contributions(a, "bulk_labels", reference="Dendritic", n_genes=5, show=False)
    res = a.uns["glassbox_umap_rank_bulk_labels_vs_Dendritic"]
    top = np.argsort(-np.abs(res["mean"][0]), kind="stable")[:5]
    drawn = [t.get_text() for t in ax.get_yticklabels()]  # set top first
    assert drawn == list(res["genes"][top])
    n = int((a.obs["bulk_labels"] == "CD14+ Monocyte").sum())
    assert ax.get_title().startswith(f"CD14+ Monocyte (n={n}) vs Dendritic")
    # absolute contributions, whose sum over all genes is the distance in the title
    distance = float(np.sum(res["mean"][0]))
    assert ax.get_xlabel() == f"contribution to the distance (all genes: {distance:.2f})"
    with pytest.raises(KeyError, match="were not ranked"):
        gb.pl.rank_contributions(
            a, "bulk_labels", reference="Dendritic", groups=["CD34+"], show=False
        )
    # the comparison has a key of its own: no all-groups ranking was run here
    with pytest.raises(KeyError, match=r"run gb.tl.rank_contributions\(adata, 'bulk_labels'\)"):
        gb.pl.rank_contributions(a, "bulk_labels", show=False)


def test_rank_contributions_colours_say_the_direction(pbmc_gb):
    from matplotlib.colors import to_hex

    from scglassbox.pl._bars import NEG_COLOR, POS_COLOR

    a = pbmc_gb.copy()
    gb.tl.rank_contributions(a, "bulk_labels")
    ax = gb.pl.rank_contributions(a, "bulk_labels", groups=["CD34+"], n_genes=8, show=False)
    df = gb.get.rank_contributions_df(a, "bulk_labels", group="CD34+", n_genes=8)
    drawn = [to_hex(p.get_facecolor()) for p in ax.patches][: len(df)]
    want = [POS_COLOR if t >= 0 else NEG_COLOR for t in df["toward"]]
    assert drawn == want
    assert ax.get_legend().get_texts()[0].get_text().startswith("moves the group")
