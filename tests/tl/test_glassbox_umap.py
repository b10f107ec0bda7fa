import anndata as ad
import lightning.pytorch as lp
import numpy as np
import pytest
import scanpy as sc
from scipy import sparse

import scglassbox as gb
from scglassbox._contributions import exactness
from tests.conftest import make_synthetic

RTOL = 1e-5
KEY = "glassbox_umap"


def snapshot(adata):
    """Everything a failed call must leave untouched."""
    return {
        "obsm": sorted(adata.obsm),
        "varm": sorted(adata.varm),
        "uns": sorted(adata.uns),
        "obs": adata.obs.copy(),
        "var": adata.var.copy(),
        "X": adata.X.copy(),
    }


def assert_unchanged(adata, snap):
    assert sorted(adata.obsm) == snap["obsm"]
    assert sorted(adata.varm) == snap["varm"]
    assert sorted(adata.uns) == snap["uns"]
    assert adata.obs.equals(snap["obs"]) and adata.var.equals(snap["var"])
    X, Y = adata.X, snap["X"]
    assert (X != Y).nnz == 0 if sparse.issparse(X) else np.array_equal(X, Y)


def assert_exact(adata, key=KEY):
    emb = adata.obsm[f"X_{key}"]
    contrib = adata.obsm[f"{key}_contributions"]
    assert exactness(emb, contrib) <= RTOL
    assert adata.uns[key]["exactness"] <= RTOL


def test_outputs_and_layout(pbmc_fitted):
    a = pbmc_fitted
    genes = a.uns[KEY]["var_names"]
    assert a.obsm[f"X_{KEY}"].shape == (a.n_obs, 2) and a.obsm[f"X_{KEY}"].dtype == np.float32
    assert a.obsm[f"{KEY}_contributions"].shape == (a.n_obs, 2, len(genes))
    assert len(genes) == a.var["highly_variable"].sum()  # default mask_var
    varm = a.varm[f"{KEY}_contributions"]
    assert varm.shape == (a.n_vars, 2)
    assert (varm[~a.var["highly_variable"].to_numpy()] == 0).all()
    np.testing.assert_allclose(
        varm[a.var_names.get_indexer(genes)],
        np.abs(a.obsm[f"{KEY}_contributions"]).mean(0).T,
        rtol=1e-4,
        atol=1e-7,
    )
    assert len(a.uns[KEY]["loss_history"]) == 20
    assert_exact(a)


def test_scanpy_embedding_plot_draws_the_glassbox_coordinates(pbmc_fitted):
    ax = sc.pl.embedding(pbmc_fitted, basis=KEY, color="bulk_labels", show=False)
    emb = pbmc_fitted.obsm[f"X_{KEY}"]
    (cells,) = [c for c in ax.collections if len(c.get_offsets()) == pbmc_fitted.n_obs]
    drawn = np.asarray(cells.get_offsets(), dtype=np.float64)
    expected = emb.astype(np.float64)
    # scanpy draws the cells in its own order: compare the sets of points
    np.testing.assert_allclose(
        drawn[np.lexsort(drawn.T[::-1])], expected[np.lexsort(expected.T[::-1])], rtol=1e-6
    )
    assert ax.get_xlabel() == f"{KEY}1" and ax.get_title() == "bulk_labels"


def test_pbmc_pca_mismatch_is_explained_and_still_exact(pbmc_fitted):
    # pbmc68k_reduced's X_pca does not come from its (scaled) X: our own PCA is used instead.
    assert "PCA of its own" in pbmc_fitted.uns[KEY]["input"]
    assert "differs from obsm['X_pca']" in pbmc_fitted.uns[KEY]["input"]


def test_reuses_scanpy_pca_and_stays_exact(synthetic_fitted):
    a = synthetic_fitted
    assert a.uns[KEY]["input"].startswith("reused scanpy's PCA")
    model = a.uns[KEY]["model"]
    np.testing.assert_array_equal(
        model["components"], a.varm["PCs"][a.var["highly_variable"].to_numpy()]
    )
    # The stored mean and loadings reproduce scanpy's PCA scores.
    X = a[:, model["var_names"]].X.toarray()
    np.testing.assert_allclose(
        (X - model["mean"]) @ model["components"], a.obsm["X_pca"], rtol=1e-3, atol=1e-3
    )
    assert_exact(a)


def test_reuses_pca_on_a_subset_of_its_cells(synthetic):
    sub = synthetic[:400].copy()  # X_pca rows of a subset: shifted by a constant vector
    sc.pp.neighbors(sub)
    gb.tl.glassbox_umap(sub, epochs=3, quiet=True)
    assert sub.uns[KEY]["input"].startswith("reused scanpy's PCA")
    assert_exact(sub)


def test_nan_loadings_are_not_reused(synthetic):
    synthetic.varm["PCs"][0, 0] = np.nan
    mask = np.ones(synthetic.n_vars, dtype=bool)
    gb.tl.glassbox_umap(synthetic, epochs=3, quiet=True, mask_var=mask)
    assert "NaN or infinite loadings" in synthetic.uns[KEY]["input"]
    assert np.isfinite(synthetic.obsm[f"X_{KEY}"]).all()
    assert_exact(synthetic)


def test_scaled_x_falls_back_with_a_warning(synthetic, scanpy_log):
    sc.pp.scale(synthetic)  # X changes after the PCA: the PCA no longer reproduces X_pca
    gb.tl.glassbox_umap(synthetic, epochs=3, quiet=True)
    assert "Not reusing scanpy's PCA" in scanpy_log.getvalue()
    assert_exact(synthetic)


def test_sparse_and_dense_x_agree(synthetic):
    assert sparse.issparse(synthetic.X)
    dense = synthetic.copy()
    dense.X = dense.X.toarray()
    gb.tl.glassbox_umap(synthetic, epochs=3, quiet=True)
    gb.tl.glassbox_umap(dense, epochs=3, quiet=True)
    np.testing.assert_allclose(
        synthetic.obsm[f"X_{KEY}"], dense.obsm[f"X_{KEY}"], rtol=1e-4, atol=1e-5
    )


def test_same_seed_same_result(synthetic):
    b = synthetic.copy()
    gb.tl.glassbox_umap(synthetic, epochs=3, random_state=3, quiet=True)
    gb.tl.glassbox_umap(b, epochs=3, random_state=3, quiet=True)
    np.testing.assert_array_equal(synthetic.obsm[f"X_{KEY}"], b.obsm[f"X_{KEY}"])


def test_copy_key_added_float16_and_none(synthetic):
    snap = snapshot(synthetic)
    out = gb.tl.glassbox_umap(
        synthetic, epochs=3, quiet=True, copy=True, key_added="gb2", contributions="float16"
    )
    assert_unchanged(synthetic, snap)
    assert out.obsm["gb2_contributions"].dtype == np.float16
    assert out.uns["gb2"]["exactness"] <= RTOL  # measured before the down-cast
    gb.tl.glassbox_umap(out, epochs=3, quiet=True, key_added="gb2", contributions="none")
    assert "gb2_contributions" not in out.obsm and "X_gb2" in out.obsm


def test_layer_and_mask(synthetic):
    synthetic.layers["counts_log"] = synthetic.X.copy()
    mask = np.zeros(synthetic.n_vars, dtype=bool)
    mask[:40] = True
    gb.tl.glassbox_umap(synthetic, layer="counts_log", mask_var=mask, epochs=3, quiet=True)
    assert list(synthetic.uns[KEY]["var_names"]) == list(synthetic.var_names[:40])
    assert synthetic.uns[KEY]["params"]["source"] == "layers/counts_log"
    assert_exact(synthetic)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs must be"),
        ({"layer": "nope"}, ValueError, "layer 'nope' not found"),
        ({"mask_var": "nope"}, ValueError, "not a column of var"),
        ({"mask_var": np.zeros(3, bool)}, ValueError, "boolean array"),
        ({"contributions": "half"}, ValueError, "contributions must be"),
        ({"use_raw": True}, ValueError, "adata.raw is None"),
        ({"neighbors_key": "other"}, ValueError, "run sc.pp.neighbors"),
        ({"encoder": "transformer"}, ValueError, "encoder must be one of"),
    ],
)
def test_bad_input_changes_nothing(synthetic, kwargs, exc, match):
    snap = snapshot(synthetic)
    with pytest.raises(exc, match=match):
        gb.tl.glassbox_umap(synthetic, quiet=True, **kwargs)
    assert_unchanged(synthetic, snap)


def test_no_neighbors_says_what_to_do():
    adata = make_synthetic(n_obs=100, n_vars=80)
    del adata.uns["neighbors"]
    with pytest.raises(ValueError, match=r"run sc.pp.neighbors\(adata\) first"):
        gb.tl.glassbox_umap(adata)


def test_interrupted_training_changes_nothing(synthetic):
    class Interrupt(lp.Callback):
        def on_train_batch_end(self, *args):
            raise KeyboardInterrupt

    snap = snapshot(synthetic)
    with pytest.raises(KeyboardInterrupt, match="nothing was stored"):
        gb.tl.glassbox_umap(
            synthetic, epochs=5, quiet=True, trainer_kwargs={"callbacks": [Interrupt()]}
        )
    assert_unchanged(synthetic, snap)


def test_view_is_made_actual_like_scanpy(synthetic):
    view = synthetic[:300]
    assert view.is_view
    with pytest.warns(Warning):
        gb.tl.glassbox_umap(view, epochs=3, quiet=True)
    assert not view.is_view and f"X_{KEY}" in view.obsm
    assert_exact(view)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_round_trip_keeps_everything(synthetic_fitted, tmp_path, fmt):
    path = tmp_path / f"a.{fmt}"
    getattr(synthetic_fitted, f"write_{fmt}")(path)
    back = getattr(ad, f"read_{fmt}")(path)
    assert_exact(back)
    np.testing.assert_array_equal(
        back.obsm[f"{KEY}_contributions"], synthetic_fitted.obsm[f"{KEY}_contributions"]
    )
    est = gb.GlassBoxUMAP.from_adata(back)
    X = back[:, list(back.uns[KEY]["var_names"])].X
    np.testing.assert_array_equal(est.transform(X), synthetic_fitted.obsm[f"X_{KEY}"])
    C, emb = est.compute_contributions(X, return_embedding=True)
    assert exactness(emb, C) <= RTOL
    assert list(back.uns[KEY]["loss_history"]) == list(synthetic_fitted.uns[KEY]["loss_history"])


def test_from_adata_without_fit_says_so(synthetic):
    with pytest.raises(KeyError, match=r"run gb\.tl\.glassbox_umap"):
        gb.GlassBoxUMAP.from_adata(synthetic)
