"""``gb.tl.glassbox_umap`` on a MuData (RNA + protein, muon's WNN graph), and each modality's
exact share of the map (``gb.get.modality_contributions``)."""

import numpy as np
import pytest

import scglassbox as gb

mu = pytest.importorskip("muon")
md = pytest.importorskip("mudata")


def exactness(values, emb):
    return np.abs(values.sum(-1, dtype=np.float64) - emb).max() / np.abs(emb).max()


def _citeseq(n_obs=900, seed=0):
    import scanpy as sc

    mdata = gb.datasets.synthetic_citeseq(n_obs, 400, seed=seed)
    rna, prot = mdata["rna"], mdata["prot"]
    sc.pp.normalize_total(rna)
    sc.pp.log1p(rna)
    sc.pp.highly_variable_genes(rna, n_top_genes=200)
    sc.pp.pca(rna, n_comps=20)
    sc.pp.neighbors(rna)
    mu.prot.pp.clr(prot)
    sc.pp.neighbors(prot, use_rep="X")
    mu.pp.neighbors(mdata)
    return mdata


@pytest.fixture(scope="module")
def fitted_mdata():
    mdata = _citeseq()
    gb.tl.glassbox_umap(mdata, epochs=20, random_state=0, quiet=True)
    return mdata


def test_fit_writes_into_the_mudata_and_modalities_sum_exactly(fitted_mdata):
    mdata = fitted_mdata
    emb = mdata.obsm["X_glassbox_umap"]
    assert emb.shape == (mdata.n_obs, 2)
    uns = mdata.uns["glassbox_umap"]
    assert list(uns["modalities"]["names"]) == ["rna", "prot"]
    assert "reused scanpy's PCA" in uns["input"] and "prot: its 20 centred features" in uns["input"]
    assert uns["exactness"] <= 1e-5
    values, names = gb.get.modality_contributions(mdata)
    assert names == ["rna", "prot"] and values.shape == (mdata.n_obs, 2, 2)
    assert exactness(values, emb) <= 1e-5
    # each modality's term is the sum of its own features' contributions
    C = gb.get.contributions(mdata)
    n_rna = int(uns["modalities"]["n_features"][0])
    np.testing.assert_allclose(values[..., 1], C[..., n_rna:].sum(-1), atol=1e-5)
    prots = gb.get.contributions(mdata, genes=["prot_0", "prot_1"])
    assert prots.shape == (mdata.n_obs, 2, 2)
    # per-feature summaries land in mdata.varm, by feature name
    imp = gb.get.gene_importance_df(mdata)
    assert {"prot_0", "prot_1"} <= set(imp.index)


def test_protein_only_subtypes_are_told_apart_by_protein(fitted_mdata):
    """type_0a and type_0b differ only in protein: their distance is protein's doing."""
    mdata = fitted_mdata
    values, names = gb.get.modality_contributions(mdata)
    t = mdata.obs["cell_type"].astype(str).to_numpy()
    a, b = values[t == "type_0a"].mean(0), values[t == "type_0b"].mean(0)  # (dims, mods)
    shift = a.sum(-1) - b.sum(-1)
    assert np.linalg.norm(shift) > 1.0  # the map separates them
    u = shift / np.linalg.norm(shift)
    along = u @ (a - b)  # each modality's part of the distance; they sum to it
    assert along.sum() == pytest.approx(np.linalg.norm(shift), rel=1e-4)
    assert along[names.index("prot")] > 0.7 * along.sum()


def test_round_trip_through_h5mu_and_recomputed_without_cache(fitted_mdata, tmp_path):
    path = tmp_path / "m.h5mu"
    fitted_mdata.write(path)
    back = md.read_h5mu(path)
    v1, _ = gb.get.modality_contributions(fitted_mdata)
    v2, _ = gb.get.modality_contributions(back)
    np.testing.assert_array_equal(v1, v2)
    del back.obsm["glassbox_umap_contributions"]  # from the model and the modalities' X
    v3, _ = gb.get.modality_contributions(back)
    np.testing.assert_allclose(v3, v1, atol=1e-5)
    assert exactness(v3, back.obsm["X_glassbox_umap"]) <= 1e-5


def test_round_trip_through_zarr(fitted_mdata, tmp_path):
    path = tmp_path / "m.zarr"
    fitted_mdata.write_zarr(path)
    back = md.read_zarr(path)
    del back.obsm["glassbox_umap_contributions"]
    v, _ = gb.get.modality_contributions(back)
    assert exactness(v, back.obsm["X_glassbox_umap"]) <= 1e-5


def test_one_modality_without_a_cache_and_its_programs():
    mdata = _citeseq(400, seed=1)
    gb.tl.glassbox_umap(mdata, epochs=5, quiet=True, contributions="none", modalities=["prot"])
    names = np.asarray(mdata.uns["glassbox_umap"]["var_names"]).astype(str)
    assert list(names) == list(mdata["prot"].var_names)
    values, mods = gb.get.modality_contributions(mdata)
    assert mods == ["prot"]
    assert exactness(values, mdata.obsm["X_glassbox_umap"]) <= 1e-5
    gb.tl.rank_programs(mdata, "cell_type", {"type_0a": ["prot_0"], "type_0b": ["prot_1"]})
    top = gb.get.rank_programs_df(mdata, "cell_type", group="type_0b").program.iloc[0]
    assert top == "type_0b"


def test_bad_options_refused_and_nothing_written():
    mdata = _citeseq(300, seed=2)
    before = (set(mdata.uns), set(mdata.obsm), set(mdata.varm))
    with pytest.raises(ValueError, match=r"\['layer'\] apply to an AnnData"):
        gb.tl.glassbox_umap(mdata, layer="counts", quiet=True)
    with pytest.raises(ValueError, match="not in the MuData"):
        gb.tl.glassbox_umap(mdata, modalities=["atac"], quiet=True)
    with pytest.raises(ValueError, match="No neighbour graph"):
        gb.tl.glassbox_umap(mdata, neighbors_key="wnn", quiet=True)
    assert (set(mdata.uns), set(mdata.obsm), set(mdata.varm)) == before


def test_modalities_on_an_anndata_and_split_of_an_anndata_fit_refused(pbmc_fitted):
    with pytest.raises(ValueError, match="applies to a MuData"):
        gb.tl.glassbox_umap(pbmc_fitted.copy(), modalities=["rna"], quiet=True)
    with pytest.raises(ValueError, match="not made on a MuData"):
        gb.get.modality_contributions(pbmc_fitted)


def test_new_cells_of_a_mudata_are_mapped_exactly(fitted_mdata):
    ref = fitted_mdata
    query = ref[:200].copy()
    for k in ("X_glassbox_umap", "glassbox_umap_contributions"):
        del query.obsm[k]
    del query.uns["glassbox_umap"]
    gb.tl.glassbox_transform(query, ref)
    np.testing.assert_allclose(
        query.obsm["X_glassbox_umap"], ref.obsm["X_glassbox_umap"][:200], atol=1e-4
    )
    values, names = gb.get.modality_contributions(query)
    assert names == ["rna", "prot"]
    assert exactness(values, query.obsm["X_glassbox_umap"]) <= 1e-5
    # an AnnData cannot feed a MuData model; nothing is written to it
    rna = ref["rna"][:50].copy()
    keys = set(rna.obsm)
    with pytest.raises(TypeError, match="fitted on a MuData"):
        gb.tl.glassbox_transform(rna, ref)
    assert set(rna.obsm) == keys
