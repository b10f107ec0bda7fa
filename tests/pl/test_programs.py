"""``gb.pl.program_contributions`` and ``gb.pl.rank_programs``: drawn = computed."""

import numpy as np
import pytest

import scglassbox as gb

SETS = {
    "cytotoxic": ["NKG7", "GZMB", "PRF1", "GNLY", "GZMA", "CST7", "CCL5"],
    "MHC-II": ["HLA-DRA", "HLA-DRB1", "HLA-DPA1", "HLA-DPB1", "HLA-DQA1"],
}


def _cells(ax, n):
    (coll,) = [c for c in ax.collections if len(c.get_offsets()) == n]
    return coll


def test_program_on_the_embedding_shows_its_share(pbmc_gb):
    axs = gb.pl.program_contributions(pbmc_gb, SETS, show=False)
    assert [a.get_title() for a in axs] == ["cytotoxic", "MHC-II"]
    values, _ = gb.get.program_contributions(pbmc_gb, SETS)
    l2 = np.linalg.norm(values.astype(np.float64), axis=1)
    share = l2[:, 0] / l2.sum(1)
    drawn = np.asarray(_cells(axs[0], pbmc_gb.n_obs).get_array())
    np.testing.assert_allclose(np.sort(drawn), np.sort(share), rtol=1e-4, atol=1e-7)


def test_signed_program_view_is_centred(pbmc_gb):
    ax = gb.pl.program_contributions(pbmc_gb, SETS, programs="MHC-II", view="dim2", show=False)
    values, _ = gb.get.program_contributions(pbmc_gb, SETS)
    coll = _cells(ax, pbmc_gb.n_obs)
    np.testing.assert_allclose(np.sort(coll.get_array()), np.sort(values[:, 1, 1]), rtol=1e-5)
    lo, hi = coll.get_clim()
    assert lo == pytest.approx(-hi)


def test_rank_programs_heatmap_shows_the_stored_means(pbmc_gb):
    adata = pbmc_gb.copy()
    gb.tl.rank_programs(adata, "bulk_labels", SETS)
    ax = gb.pl.rank_programs(adata, "bulk_labels", show=False)
    img = ax.images[0].get_array()
    res = adata.uns["glassbox_umap_programs_bulk_labels"]
    np.testing.assert_allclose(img, res["mean"][:, :2], rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cytotoxic", "MHC-II"]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(res["groups"])


def test_unknown_program_is_refused(pbmc_gb):
    with pytest.raises(ValueError, match="not among the gene sets"):
        gb.pl.program_contributions(pbmc_gb, SETS, programs="nope", show=False)
