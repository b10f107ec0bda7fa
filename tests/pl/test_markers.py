import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

import scglassbox as gb
from scglassbox import pl
from scglassbox.pl import _read as v
from scglassbox.pl._markers import marker_overlap


def test_marker_overlap_definition(pbmc_gb):
    df = marker_overlap(pbmc_gb, "bulk_labels", n_genes=10)
    values, names = v.contribution_view(pbmc_gb, "normed_l2")
    markers = pd.DataFrame(pbmc_gb.uns["rank_genes_groups"]["names"])
    for g, row in df.iterrows():
        sel = (pbmc_gb.obs["bulk_labels"] == g).to_numpy()
        top = names[np.argsort(-values[sel].mean(axis=0), kind="stable")[:10]]
        mk = [m for m in markers[g] if m in set(names)][:10]
        assert row["top_contributors"] == list(top)
        assert row["markers"] == mk
        assert row["overlap"] == len(set(top) & set(mk))
        assert row["n_cells"] == sel.sum()


def test_consistent_with_tl(pbmc_gb):
    ref = gb.tl.rank_contributions(pbmc_gb, "bulk_labels", n_genes=20, copy=True)
    tl = ref.uns["glassbox_umap_rank_bulk_labels"]["marker_overlap"]
    df = marker_overlap(pbmc_gb, "bulk_labels", n_genes=20)
    pd.testing.assert_series_equal(
        df["overlap"].astype(int), tl["overlap"].loc[df.index].astype(int), check_names=False
    )


def test_compare_markers_plot(pbmc_gb):
    fig = pl.compare_markers(pbmc_gb, "bulk_labels", n_genes=15, return_fig=True)
    ax, tax = fig.axes
    df = marker_overlap(pbmc_gb, "bulk_labels", n_genes=15)
    rects = sorted((p for p in ax.patches if isinstance(p, Rectangle)), key=lambda r: -r.get_y())
    np.testing.assert_array_equal([r.get_width() for r in rects], df["overlap"].to_numpy())
    ticks = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=True), key=lambda t: -t[0])
    assert [t.get_text() for _, t in ticks] == [
        f"{g} (n={n})" for g, n in zip(df.index, df["n_cells"], strict=True)
    ]
    texts = [t.get_text() for t in sorted(tax.texts, key=lambda t: -t.get_position()[1])]
    for text, shared in zip(texts, df["shared"], strict=True):
        assert text.split(", ")[0] == (shared[0] if shared else "(none)")
    n_used = len(v.gene_names(pbmc_gb, "glassbox_umap"))
    (chance,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert chance.get_xdata()[0] == pytest.approx(15 * 15 / n_used)
    assert "rank_genes_groups" in fig.get_suptitle()


def test_compare_markers_single_ax(pbmc_gb):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    out = pl.compare_markers(pbmc_gb, "bulk_labels", n_genes=5, ax=ax, show=False)
    assert out is ax
    assert "rank_genes_groups" in ax.get_title()


def test_compare_markers_errors(pbmc_gb):
    with pytest.raises(KeyError, match=r"run sc.tl.rank_genes_groups\(adata, 'bulk_labels'"):
        pl.compare_markers(pbmc_gb, "bulk_labels", rank_genes_key="missing", show=False)
    with pytest.raises(ValueError, match=r"computed for groupby='bulk_labels'.*'louvain'"):
        pl.compare_markers(pbmc_gb, "louvain", show=False)


def test_images(linear_gb, check_image):
    check_image(
        pl.compare_markers(linear_gb, "bulk_labels", n_genes=10, return_fig=True),
        "compare_markers",
    )
