import numpy as np
import pytest

import scglassbox as gb
from tests.conftest import make_synthetic

KEY = "glassbox_umap"


def test_rank_contributions_pbmc(pbmc_fitted):
    a = pbmc_fitted.copy()
    gb.tl.rank_contributions(a, "bulk_labels")
    res = a.uns[f"{KEY}_rank_bulk_labels"]
    groups = a.obs["bulk_labels"].cat.categories
    mean, sem = gb.get.group_contributions(a, "bulk_labels")
    assert mean.shape == (len(a.uns[KEY]["var_names"]), len(groups))
    # normed_l2 sums to 1 per cell, so each group's mean sums to 1 too.
    np.testing.assert_allclose(mean.sum(0), 1.0, rtol=1e-4)
    assert (sem.to_numpy() >= 0).all()
    # The NK cells' own mean, computed by hand, matches.
    nk = (a.obs["bulk_labels"] == "CD56+ NK").to_numpy()
    by_hand = gb.get.contributions_df(a, "normed_l2")[nk].mean(0)
    np.testing.assert_allclose(mean["CD56+ NK"], by_hand, rtol=1e-4, atol=1e-7)
    # pbmc68k_reduced ships rank_genes_groups for bulk_labels: the overlap is reported.
    assert "marker_overlap" in res and set(res["marker_overlap"].index) <= set(groups)
    df = gb.get.rank_contributions_df(a, "bulk_labels", group="CD56+ NK", n_genes=5)
    assert list(df["rank"]) == [1, 2, 3, 4, 5]
    assert df["mean"].is_monotonic_decreasing
    # Direction: each gene's pull toward the group's place sums to its distance from the mean
    # cell (the origin), and is the signed mean contribution projected on that direction.
    emb = a.obsm[f"X_{KEY}"].astype(np.float64)
    C = gb.get.contributions(a).astype(np.float64)
    for i, g in enumerate(res["groups"]):
        cells = (a.obs["bulk_labels"] == g).to_numpy()
        centre = emb[cells].mean(0)
        np.testing.assert_allclose(res["toward"][i].sum(), np.linalg.norm(centre), rtol=1e-4)
        by_hand = (centre / np.linalg.norm(centre)) @ C[cells].mean(0)
        np.testing.assert_allclose(res["toward"][i], by_hand, rtol=1e-3, atol=1e-6)
    nk = list(res["groups"]).index("CD56+ NK")
    genes = list(res["genes"])
    np.testing.assert_array_equal(
        df["toward"], res["toward"][nk][[genes.index(x) for x in df["gene"]]]
    )


def test_rank_round_trips_with_slash_in_group_names(pbmc_fitted, tmp_path):
    import anndata as ad

    a = pbmc_fitted.copy()
    gb.tl.rank_contributions(a, "bulk_labels")
    assert any("/" in g for g in a.obs["bulk_labels"].cat.categories)
    a.write_h5ad(tmp_path / "a.h5ad")
    a.write_zarr(tmp_path / "a.zarr")
    for back in (ad.read_h5ad(tmp_path / "a.h5ad"), ad.read_zarr(tmp_path / "a.zarr")):
        pd_mean, _ = gb.get.group_contributions(back, "bulk_labels")
        np.testing.assert_array_equal(pd_mean, gb.get.group_contributions(a, "bulk_labels")[0])


def test_rank_bad_groupby(pbmc_fitted):
    with pytest.raises(KeyError, match="not a column"):
        gb.tl.rank_contributions(pbmc_fitted, "nope", copy=True)


def test_planted_markers_are_found():
    """Each type's top contributors are mostly its planted marker genes."""
    adata = make_synthetic(n_obs=800, n_vars=300, seed=2, n_types=4, n_markers=15)
    gb.tl.glassbox_umap(adata, epochs=60, random_state=0, quiet=True, mask_var=None)
    gb.tl.rank_contributions(adata, "cell_type")
    planted = adata.uns["planted_markers"]
    precisions = []
    for t, genes in planted.items():
        top = gb.get.rank_contributions_df(adata, "cell_type", group=t, n_genes=15)["gene"]
        precisions.append(np.isin(top, genes).mean())
    assert np.mean(precisions) >= 0.5, precisions


def test_ensemble(synthetic):
    gb.tl.glassbox_ensemble(synthetic, "cell_type", seeds=(0, 1), epochs=5, quiet=True)
    res = synthetic.uns["glassbox_ensemble_cell_type"]
    assert res["per_seed"].shape[:2] == (2, 4)
    mean, sem = gb.get.group_contributions(synthetic, uns_key="glassbox_ensemble_cell_type")
    assert mean.shape == sem.shape == (len(res["genes"]), 4)
    np.testing.assert_allclose(mean.to_numpy(), res["per_seed"].mean(0).T, rtol=1e-5)
    stab = res["stability"]["spearman"].to_numpy()
    assert np.all((stab > -1) & (stab <= 1))
    with pytest.raises(ValueError, match="at least 2 distinct"):
        gb.tl.glassbox_ensemble(synthetic, "cell_type", seeds=(1,))


@pytest.mark.parametrize("reference", ["rest", "Dendritic"])
def test_differential_contributions_sum_to_the_groups_displacement(pbmc_fitted, reference):
    a = pbmc_fitted.copy()
    gb.tl.rank_contributions(a, "bulk_labels")
    before = a.uns[f"{KEY}_rank_bulk_labels"]
    gb.tl.rank_contributions(a, "bulk_labels", reference=reference, groups=None)
    assert a.uns[f"{KEY}_rank_bulk_labels"] is before  # the all-groups ranking is kept
    res = a.uns[f"{KEY}_rank_bulk_labels_vs_{reference}"]
    labels = a.obs["bulk_labels"].to_numpy()
    emb = a.obsm[f"X_{KEY}"].astype(np.float64)
    assert reference not in res["groups"]
    for i, g in enumerate(res["groups"]):
        ref_cells = labels != g if reference == "rest" else labels == reference
        shift = emb[labels == g].mean(0) - emb[ref_cells].mean(0)
        # Exact: per dimension, the genes' deltas add up to the shift of the mean positions.
        np.testing.assert_allclose(res["delta"][i].sum(-1), shift, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(res["displacement"][i], shift, rtol=1e-5, atol=1e-6)
        # The ranking score is each gene's share of the distance between the two groups.
        np.testing.assert_allclose(res["mean"][i].sum(), np.linalg.norm(shift), rtol=1e-4)
    assert np.isfinite(res["sem"]).all() and (res["sem"] >= 0).all()
    df = gb.get.rank_contributions_df(a, "bulk_labels", reference=reference, n_genes=3)
    assert set(df["group"]) == set(res["groups"])
    mean, _ = gb.get.group_contributions(a, "bulk_labels", reference=reference)
    np.testing.assert_array_equal(mean.to_numpy(), np.asarray(res["mean"]).T)


def test_differential_errors(pbmc_fitted):
    with pytest.raises(ValueError, match="reference='nope'"):
        gb.tl.rank_contributions(pbmc_fitted, "bulk_labels", reference="nope", copy=True)
    with pytest.raises(ValueError, match="not groups"):
        gb.tl.rank_contributions(pbmc_fitted, "bulk_labels", groups=["nope"], copy=True)
    with pytest.raises(ValueError, match="no group left"):
        gb.tl.rank_contributions(
            pbmc_fitted, "bulk_labels", groups=["Dendritic"], reference="Dendritic", copy=True
        )
