"""``use_rep``: integrated representations (Harmony, BBKNN, latent spaces) as the input."""

import anndata as ad
import numpy as np
import pytest

import scglassbox as gb

from ..conftest import _quiet_logs

FIT = {"epochs": 5, "random_state": 0, "quiet": True}


def _batches(n_obs=600, seed=0):
    """Log-normalised counts of 3 batches, HVGs and PCA (no graph yet)."""
    import scanpy as sc

    from scglassbox.datasets import synthetic_scrna

    adata = synthetic_scrna(
        n_obs, 300, n_types=4, n_markers=15, n_batches=3, batch_effect=0.6, seed=seed
    )
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=200)
    sc.pp.pca(adata, n_comps=20)
    return adata


@pytest.fixture(scope="module")
def harmony():
    """Harmony (harmonypy itself) on the PCA, neighbours on its output, then a fit."""
    import harmonypy
    import scanpy as sc

    _quiet_logs()
    adata = _batches()
    out = harmonypy.run_harmony(adata.obsm["X_pca"], adata.obs, "batch", random_state=0,
                                verbose=False)  # fmt: skip
    Z = np.asarray(out.Z_corr)
    adata.obsm["X_pca_harmony"] = Z if Z.shape[0] == adata.n_obs else Z.T
    sc.pp.neighbors(adata, use_rep="X_pca_harmony")
    before = adata.copy()
    gb.tl.glassbox_umap(adata, **FIT)
    return before, adata


def _sums_to_embedding(C, emb):
    top = np.abs(emb).max()
    assert np.abs(C.sum(-1) - emb).max() <= 1e-5 * top


def test_harmony_is_read_as_a_corrected_pca(harmony):
    _, adata = harmony
    info = adata.uns["glassbox_umap"]
    assert info["params"]["source"] == "obsm/X_pca_harmony"
    assert "corrected PCA" in info["input"]
    assert list(info["var_names"]) == list(adata.var_names[adata.var.highly_variable])
    C = adata.obsm["glassbox_umap_contributions"]
    assert C.shape == (adata.n_obs, 2, 200)
    _sums_to_embedding(C, adata.obsm["X_glassbox_umap"])
    # the model's own input is the corrected scores: transform of the rebuilt expression
    est = gb.GlassBoxUMAP.from_adata(adata)
    V = adata.varm["PCs"][adata.var.highly_variable.values]
    rebuilt = adata.obsm["X_pca_harmony"] @ V.T + est.mean_
    np.testing.assert_allclose(est.transform(rebuilt), adata.obsm["X_glassbox_umap"], atol=1e-4)
    # per gene: the Jacobian times the corrected deviation V z (not the measured one)
    J = est.compute_jacobian(rebuilt[:20])
    dev = adata.obsm["X_pca_harmony"][:20] @ V.T
    np.testing.assert_allclose(J * dev[:, None, :], C[:20], rtol=1e-3, atol=1e-5)


def test_explanations_do_not_read_the_uncorrected_expression(harmony):
    _, adata = harmony
    a = adata.copy()
    del a.obsm["glassbox_umap_contributions"]
    a.X = np.full(
        a.shape, 7.0, dtype=np.float32
    )  # a batch shift of everything: corrected values do not see it
    C = gb.get.contributions(a)
    np.testing.assert_allclose(C, adata.obsm["glassbox_umap_contributions"], atol=1e-5)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_round_trip_recomputes_exact_contributions(harmony, tmp_path, fmt):
    _, adata = harmony
    a = adata.copy()
    del a.obsm["glassbox_umap_contributions"]
    path = tmp_path / f"h.{fmt}"
    getattr(a, f"write_{fmt}")(path)
    b = getattr(ad, f"read_{fmt}")(path)
    C = gb.get.contributions(b)
    _sums_to_embedding(C, b.obsm["X_glassbox_umap"])
    np.testing.assert_allclose(C, adata.obsm["glassbox_umap_contributions"], atol=1e-5)


def test_transform_reads_the_query_representation(harmony):
    _, adata = harmony
    query = ad.AnnData(
        adata.X[:50], obs=adata.obs.iloc[:50].copy(), var=adata.var.copy(),
        obsm={"X_pca_harmony": adata.obsm["X_pca_harmony"][:50]},
    )  # fmt: skip
    gb.tl.glassbox_transform(query, adata)
    np.testing.assert_allclose(
        query.obsm["X_glassbox_umap"], adata.obsm["X_glassbox_umap"][:50], atol=1e-4
    )
    _sums_to_embedding(query.obsm["glassbox_umap_contributions"], query.obsm["X_glassbox_umap"])
    bare = ad.AnnData(adata.X[:50], var=adata.var.copy())
    with pytest.raises(KeyError, match="X_pca_harmony"):
        gb.tl.glassbox_transform(bare, adata)
    assert "X_glassbox_umap" not in bare.obsm


def test_use_rep_x_reads_the_expression_and_says_how_to_change(harmony, scanpy_log):
    before, _ = harmony
    a = before.copy()
    gb.tl.glassbox_umap(a, use_rep="X", **{**FIT, "quiet": False})
    assert a.uns["glassbox_umap"]["params"]["source"] == "X"
    assert "use_rep='X_pca_harmony' reads that representation" in scanpy_log.getvalue()
    b = before.copy()
    gb.tl.glassbox_umap(b, use_rep="X_pca_harmony", **FIT)  # explicit = the default here
    assert b.uns["glassbox_umap"]["params"]["source"] == "obsm/X_pca_harmony"


def test_latent_space_contributions_are_per_dimension(harmony, tmp_path):
    before, _ = harmony
    a = before.copy()
    rng = np.random.default_rng(0)
    a.obsm["X_latent"] = (a.obsm["X_pca_harmony"][:, :8] + rng.normal(size=(a.n_obs, 8))).astype(
        np.float32
    )
    gb.tl.glassbox_umap(a, use_rep="X_latent", **FIT)
    info = a.uns["glassbox_umap"]
    assert list(info["var_names"]) == [f"X_latent_{i}" for i in range(1, 9)]
    assert "not per gene" in info["input"]
    assert "glassbox_umap_contributions" not in a.varm  # no gene rows to hold them
    df = gb.get.gene_importance_df(a)
    assert sorted(df.index) == sorted(info["var_names"]) and (df["total"] > 0).all()
    _sums_to_embedding(a.obsm["glassbox_umap_contributions"], a.obsm["X_glassbox_umap"])
    del a.obsm["glassbox_umap_contributions"]
    a.write_h5ad(tmp_path / "lat.h5ad")
    b = ad.read_h5ad(tmp_path / "lat.h5ad")
    _sums_to_embedding(gb.get.contributions(b), b.obsm["X_glassbox_umap"])
    fig = gb.pl.ranking(b, n_genes=5, show=False, return_fig=True)
    labels = {t.get_text() for ax in fig.axes for t in ax.get_yticklabels()}
    assert labels <= set(info["var_names"]) and labels


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"use_rep": "X_nope"}, KeyError, "not in adata.obsm"),
        ({"use_rep": "X_pca_harmony", "use_pca": True}, ValueError, "use_pca"),
        ({"use_rep": "X_pca_harmony", "rep_loadings": "nope"}, KeyError, "varm"),
        ({"use_rep": "X_bad"}, ValueError, "NaN"),
        ({"use_rep": "X_pca_harmony", "layer": "counts"}, ValueError, "layer"),
        ({"use_rep": 3}, ValueError, "use_rep"),
    ],
)
def test_bad_use_rep_is_refused_and_changes_nothing(harmony, kwargs, error, match):
    before, _ = harmony
    a = before.copy()
    a.layers["counts"] = a.X.copy()
    bad = a.obsm["X_pca_harmony"].copy()
    bad[0, 0] = np.nan
    a.obsm["X_bad"] = bad
    snapshot = a.copy()
    with pytest.raises(error, match=match):
        gb.tl.glassbox_umap(a, **kwargs, **FIT)
    assert set(a.obsm) == set(snapshot.obsm) and set(a.uns) == set(snapshot.uns)
    assert set(a.varm) == set(snapshot.varm)


def test_explicit_loadings_must_match_the_width(harmony):
    before, _ = harmony
    a = before.copy()
    a.obsm["X_small"] = a.obsm["X_pca_harmony"][:, :5]
    with pytest.raises(ValueError, match="must match"):
        gb.tl.glassbox_umap(a, use_rep="X_small", rep_loadings="PCs", **FIT)


def test_bbknn_graph_is_followed_with_scanpy_pca():
    import bbknn

    _quiet_logs()
    adata = _batches(seed=1)
    bbknn.bbknn(adata, batch_key="batch")
    gb.tl.glassbox_umap(adata, **FIT)
    info = adata.uns["glassbox_umap"]
    assert info["params"]["source"] == "X"
    assert "reused scanpy's PCA" in info["input"]
    _sums_to_embedding(adata.obsm["glassbox_umap_contributions"], adata.obsm["X_glassbox_umap"])


def test_cli_use_rep_reads_the_representation(harmony, tmp_path):
    from scglassbox import cli

    before, _ = harmony
    src, out = tmp_path / "in.h5ad", tmp_path / "out.h5ad"
    before.write_h5ad(src)
    args = ["run", str(src), "-o", str(out), "--epochs", "3", "-q", "--use-rep", "X_pca_harmony"]
    assert cli.main(args) == 0
    b = ad.read_h5ad(out)
    assert b.uns["glassbox_umap"]["params"]["source"] == "obsm/X_pca_harmony"
    _sums_to_embedding(gb.get.contributions(b), b.obsm["X_glassbox_umap"])


def test_lazy_storage_and_ensemble_read_the_representation(harmony, scanpy_log):
    before, fitted = harmony
    a = before.copy()
    gb.tl.glassbox_umap(a, contributions="lazy", **FIT)
    C = np.asarray(a.obsm["glassbox_umap_contributions"])  # computed from obsm, chunk by chunk
    _sums_to_embedding(C, a.obsm["X_glassbox_umap"])
    np.testing.assert_allclose(C, fitted.obsm["glassbox_umap_contributions"], atol=1e-5)
    b = before.copy()
    gb.tl.glassbox_ensemble(b, "cell_type", seeds=(0, 1), epochs=3, quiet=True)
    res = b.uns["glassbox_ensemble_cell_type"]
    assert list(res["genes"]) == list(fitted.uns["glassbox_umap"]["var_names"])
    assert np.isfinite(res["mean"]).all()
    assert "Not reusing" not in scanpy_log.getvalue()  # it read X_pca_harmony, no PCA of its own
    gb.tl.glassbox_ensemble(b, "cell_type", seeds=(0, 1), epochs=1, quiet=True, use_rep="X")
    assert "use_rep='X_pca_harmony' reads that representation" in scanpy_log.getvalue()
