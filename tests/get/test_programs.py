"""``gb.get.program_contributions``: contributions summed over gene sets, exactly."""

import numpy as np
import pandas as pd
import pytest

import scglassbox as gb

SETS = {
    "cytotoxic": ["NKG7", "GZMB", "PRF1", "GNLY", "NOT_A_GENE"],
    "MHC-II": ["HLA-DRA", "HLA-DPA1", "HLA-DRB1"],
}


def _genes(adata):
    return list(np.asarray(adata.uns["glassbox_umap"]["var_names"]).astype(str))


def test_sets_and_rest_sum_to_the_embedding(pbmc_fitted):
    adata = pbmc_fitted
    values, names = gb.get.program_contributions(adata, SETS)
    assert names == ["cytotoxic", "MHC-II", "rest"]
    emb = adata.obsm["X_glassbox_umap"]
    assert values.shape == (adata.n_obs, 2, 3) and values.dtype == np.float32
    assert np.abs(values.sum(-1) - emb).max() <= 1e-5 * np.abs(emb).max()
    # each set is the sum of its modelled genes' contributions
    C = gb.get.contributions(adata)
    genes = _genes(adata)
    cyto = [genes.index(g) for g in SETS["cytotoxic"] if g in genes]
    assert len(cyto) >= 2
    np.testing.assert_allclose(values[..., 0], C[..., cyto].sum(-1), atol=1e-5)


def test_obs_and_dims_select(pbmc_fitted):
    values, _ = gb.get.program_contributions(pbmc_fitted, SETS)
    part, _ = gb.get.program_contributions(pbmc_fitted, SETS, obs=[4, 1], dims=1)
    np.testing.assert_allclose(part, values[[4, 1]][:, [1]], atol=1e-6)


def test_gmt_file_and_decoupler_table_give_the_same(pbmc_fitted, tmp_path, scanpy_log):
    values, names = gb.get.program_contributions(pbmc_fitted, SETS)
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("".join(f"{k}\tdesc\t" + "\t".join(v) + "\n" for k, v in SETS.items()))
    from_gmt, gmt_names = gb.get.program_contributions(pbmc_fitted, gmt)
    net = pd.DataFrame(
        [(k, g, 0.5) for k, v in SETS.items() for g in v], columns=["source", "target", "weight"]
    )
    import scanpy as sc

    verbosity, sc.settings.verbosity = sc.settings.verbosity, 3
    try:
        from_net, net_names = gb.get.program_contributions(pbmc_fitted, net)
    finally:
        sc.settings.verbosity = verbosity
    assert gmt_names == net_names == names
    np.testing.assert_array_equal(from_gmt, values)
    np.testing.assert_array_equal(from_net, values)
    assert "'weight' column is ignored" in scanpy_log.getvalue()


def test_overlapping_genes_are_shared_or_refused(pbmc_fitted):
    sets = {"a": ["NKG7", "GZMB"], "b": ["NKG7", "HLA-DRA"]}
    values, _ = gb.get.program_contributions(pbmc_fitted, sets)
    emb = pbmc_fitted.obsm["X_glassbox_umap"]
    assert np.abs(values.sum(-1) - emb).max() <= 1e-5 * np.abs(emb).max()  # still exact
    C = gb.get.contributions(pbmc_fitted)
    genes = _genes(pbmc_fitted)
    i, j = genes.index("NKG7"), genes.index("GZMB")
    np.testing.assert_allclose(values[..., 0], C[..., i] / 2 + C[..., j], atol=1e-5)
    with pytest.raises(ValueError, match="more than one set"):
        gb.get.program_contributions(pbmc_fitted, sets, overlap="error")


@pytest.mark.parametrize(
    ("gene_sets", "error", "match"),
    [
        ({}, ValueError, "no gene set"),
        ({"rest": ["NKG7"]}, ValueError, "'rest'"),
        ({"a": "NKG7"}, ValueError, "list of genes"),
        (pd.DataFrame({"set": ["a"], "gene": ["NKG7"]}), ValueError, "'source' and 'target'"),
        (42, TypeError, "gene_sets must be"),
    ],
)
def test_bad_gene_sets_are_refused(pbmc_fitted, gene_sets, error, match):
    with pytest.raises(error, match=match):
        gb.get.program_contributions(pbmc_fitted, gene_sets)


def test_bad_gmt_line(pbmc_fitted, tmp_path):
    gmt = tmp_path / "bad.gmt"
    gmt.write_text("only_a_name\n")
    with pytest.raises(ValueError, match="line 1"):
        gb.get.program_contributions(pbmc_fitted, gmt)


def test_decoupler_network_from_decoupler_itself(scanpy_log):
    """decoupler's own toy data and network (source/target/weight, overlapping targets)."""
    import matplotlib as mpl
    import scanpy as sc

    # decoupler's plotting dependencies (legendkit) change matplotlib's legend rcParams on
    # import, which would alter every later figure of the session: import it in a context.
    with mpl.rc_context():
        dc = pytest.importorskip("decoupler")

    adata, net = dc.ds.toy(nobs=60, seed=1)
    sc.pp.neighbors(adata, n_neighbors=8, use_rep="X")
    gb.tl.glassbox_umap(adata, epochs=10, quiet=True)
    verbosity, sc.settings.verbosity = sc.settings.verbosity, 3
    try:
        values, names = gb.get.program_contributions(adata, net)
    finally:
        sc.settings.verbosity = verbosity
    assert names == [*pd.unique(net["source"]), "rest"]
    emb = adata.obsm["X_glassbox_umap"]
    assert np.abs(values.sum(-1) - emb).max() <= 1e-5 * np.abs(emb).max()
    log = scanpy_log.getvalue()
    assert "'weight' column is ignored" in log and "genes are in several sets" in log
    # a target shared by T2 and T3 gives each half of its contribution
    C = gb.get.contributions(adata, genes=["G04", "G06", "G07", "G08"])
    np.testing.assert_allclose(
        values[..., names.index("T2")], C[..., 0] + C[..., 1:].sum(-1) / 2, atol=1e-5
    )
    gb.tl.rank_programs(adata, "group", net)
    df = gb.get.rank_programs_df(adata, "group")
    assert set(df.group) == set(adata.obs["group"].astype(str))
