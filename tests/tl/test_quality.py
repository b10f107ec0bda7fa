"""``uns[key]['quality']`` after a fit: present, computed on the graph's space, kept on disk."""

import anndata as ad
import numpy as np
import pytest

from scglassbox._quality import embedding_quality

KEY = "glassbox_umap"


def test_quality_is_stored_against_the_graph_space(pbmc_fitted):
    q = pbmc_fitted.uns[KEY]["quality"]
    assert q["representation"] == "obsm['X_pca']" and q["n_neighbors"] == 15
    assert q["n_cells"] == pbmc_fitted.n_obs
    want = embedding_quality(pbmc_fitted.obsm["X_pca"], pbmc_fitted.obsm[f"X_{KEY}"])
    assert q["knn_preservation"] == pytest.approx(want["knn_preservation"])
    assert q["trustworthiness"] == pytest.approx(want["trustworthiness"])
    # pbmc68k_reduced carries an X_umap: the same figures for it, to compare with
    assert set(q["X_umap"]) == {"knn_preservation", "trustworthiness"}
    assert 0 < q["X_umap"]["knn_preservation"] <= 1


def test_quality_survives_h5ad(pbmc_fitted, tmp_path):
    path = tmp_path / "q.h5ad"
    pbmc_fitted.write_h5ad(path)
    back = ad.read_h5ad(path).uns[KEY]["quality"]
    for k in ("knn_preservation", "trustworthiness"):
        assert np.isclose(back[k], pbmc_fitted.uns[KEY]["quality"][k])
    assert str(back["representation"]) == "obsm['X_pca']"


def test_quality_is_logged(synthetic, scanpy_log):
    import scanpy as sc

    import scglassbox as gb

    before, sc.settings.verbosity = sc.settings.verbosity, 2  # info
    try:
        gb.tl.glassbox_umap(synthetic, epochs=2, quiet=True)
    finally:
        sc.settings.verbosity = before
    assert "map quality (15 neighbours in obsm['X_pca']" in scanpy_log.getvalue()
    assert "X_umap" not in synthetic.uns[KEY]["quality"]  # none to compare with
