"""``gb.tl.rank_programs`` and ``gb.get.rank_programs_df``: the gene ranking, per gene set."""

import numpy as np
import pandas as pd
import pytest

import scglassbox as gb

SETS = {
    "cytotoxic": ["NKG7", "GZMB", "PRF1", "GNLY", "GZMA", "CST7", "CCL5"],
    "MHC-II": ["HLA-DRA", "HLA-DRB1", "HLA-DPA1", "HLA-DPB1", "HLA-DQA1"],
    "B cell": ["CD79A", "CD79B", "MS4A1", "CD19", "BANK1"],
}


@pytest.fixture(scope="module")
def ranked(pbmc_fitted):
    adata = pbmc_fitted.copy()
    gb.tl.rank_programs(adata, "bulk_labels", SETS)
    return adata


def test_top_program_of_nk_cells_is_the_cytotoxic_set(ranked):
    df = gb.get.rank_programs_df(ranked, "bulk_labels", group="CD56+ NK")
    assert df.program.iloc[0] == "cytotoxic"
    assert list(df.columns) == ["group", "rank", "program", "mean", "sem", "toward", "n_genes"]
    assert "rest" not in set(df.program) and df["rank"].tolist() == [1, 2, 3]
    b = gb.get.rank_programs_df(ranked, "bulk_labels", group="CD19+ B")
    assert b.program.iloc[0] == "B cell"


def test_means_are_the_group_means_of_per_cell_program_shares(ranked):
    values, names = gb.get.program_contributions(ranked, SETS)
    l2 = np.linalg.norm(values.astype(np.float64), axis=1)
    share = l2 / l2.sum(axis=1, keepdims=True)
    res = ranked.uns["glassbox_umap_programs_bulk_labels"]
    groups = list(res["groups"])
    labels = ranked.obs["bulk_labels"].astype(str).to_numpy()
    for g in ("CD56+ NK", "Dendritic"):
        cells = share[labels == g]
        np.testing.assert_allclose(res["mean"][groups.index(g)], cells.mean(0), rtol=1e-4)
        sem = cells.std(0, ddof=1) / np.sqrt(len(cells))
        np.testing.assert_allclose(res["sem"][groups.index(g)], sem, rtol=1e-3)
    assert list(res["programs"]) == names
    # modelled genes per set, and the table of the genes each set holds
    genes = set(np.asarray(ranked.uns["glassbox_umap"]["var_names"]).astype(str))
    assert res["n_genes"][0] == len(set(SETS["cytotoxic"]) & genes)
    table = res["gene_sets"]
    assert set(table.loc[table.source == "MHC-II", "target"]) == set(SETS["MHC-II"]) & genes


def test_toward_sums_over_sets_and_rest_to_the_group_distance(ranked):
    res = ranked.uns["glassbox_umap_programs_bulk_labels"]
    emb = ranked.obsm["X_glassbox_umap"].astype(np.float64)
    labels = ranked.obs["bulk_labels"].astype(str).to_numpy()
    for i, g in enumerate(res["groups"]):
        dist = np.linalg.norm(emb[labels == g].mean(0))
        assert abs(res["toward"][i].sum() - dist) <= 1e-4 * max(dist, 1)


def test_signed_view_and_groups(pbmc_fitted):
    adata = pbmc_fitted.copy()
    gb.tl.rank_programs(adata, "bulk_labels", SETS, view="dim1", groups=["CD19+ B"],
                        key_added="progs")  # fmt: skip
    values, _ = gb.get.program_contributions(adata, SETS)
    cells = adata.obs["bulk_labels"].astype(str).to_numpy() == "CD19+ B"
    res = adata.uns["progs"]
    assert list(res["groups"]) == ["CD19+ B"]
    np.testing.assert_allclose(res["mean"][0], values[cells, 0].mean(0), rtol=1e-4, atol=1e-6)
    df = gb.get.rank_programs_df(adata, "bulk_labels", uns_key="progs", include_rest=True)
    assert len(df) == 4 and "rest" in set(df.program)


def test_survives_h5ad(ranked, tmp_path):
    import anndata as ad

    path = tmp_path / "r.h5ad"
    ranked.write_h5ad(path)
    back = ad.read_h5ad(path)
    pd.testing.assert_frame_equal(
        gb.get.rank_programs_df(back, "bulk_labels"), gb.get.rank_programs_df(ranked, "bulk_labels")
    )


def test_bad_input_changes_nothing(pbmc_fitted):
    adata = pbmc_fitted.copy()
    before = set(adata.uns)
    with pytest.raises(ValueError, match="not groups of"):
        gb.tl.rank_programs(adata, "bulk_labels", SETS, groups=["nope"])
    with pytest.raises(ValueError, match="view must be"):
        gb.tl.rank_programs(adata, "bulk_labels", SETS, view="dim9")
    with pytest.raises(ValueError, match="more than one set"):
        gb.tl.rank_programs(adata, "bulk_labels", {"a": ["NKG7"], "b": ["NKG7"]}, overlap="error")
    with pytest.raises(ValueError, match="contains '/'"):
        gb.tl.rank_programs(adata, "bulk_labels", SETS, key_added="a/b")
    assert set(adata.uns) == before
    with pytest.raises(KeyError, match=r"run gb\.tl\.rank_programs"):
        gb.get.rank_programs_df(adata, "bulk_labels")
