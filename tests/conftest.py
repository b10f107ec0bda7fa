import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def wine():
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


@pytest.fixture(scope="session")
def fitted(wine):
    """A small model fitted once for the whole session (wine, 30 epochs)."""
    import scglassbox as gb

    X, _ = wine
    return gb.GlassBoxUMAP(random_state=0, epochs=30, quiet=True).fit(X)


@pytest.fixture(scope="session")
def fitted_pca(wine):
    import scglassbox as gb

    X, _ = wine
    return gb.GlassBoxUMAP(random_state=0, epochs=30, pca_components=5, quiet=True).fit(X)


def _quiet_logs():
    import logging

    for name in ("lightning", "lightning.pytorch", "numba"):
        logging.getLogger(name).setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def pbmc_fitted():
    """pbmc68k_reduced with glassbox_umap run once (20 epochs). Do not modify in tests."""
    import scanpy as sc

    import scglassbox as gb

    _quiet_logs()
    adata = sc.datasets.pbmc68k_reduced()
    gb.tl.glassbox_umap(adata, epochs=20, random_state=0, quiet=True)
    return adata


def make_synthetic(n_obs=600, n_vars=300, seed=0, n_types=4, n_markers=15):
    """Small processed synthetic set: log-normalised X (sparse), HVGs, PCA, neighbours."""
    import scanpy as sc

    from scglassbox.datasets import synthetic_scrna

    adata = synthetic_scrna(n_obs, n_vars, n_types=n_types, n_markers=n_markers, seed=seed)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=min(200, n_vars))
    sc.pp.pca(adata, n_comps=20)
    sc.pp.neighbors(adata, n_neighbors=15)
    return adata


@pytest.fixture
def synthetic():
    return make_synthetic()


@pytest.fixture(scope="session")
def synthetic_fitted():
    """Synthetic set fitted once, reusing scanpy's PCA. Do not modify in tests."""
    import scglassbox as gb

    _quiet_logs()
    adata = make_synthetic()
    gb.tl.glassbox_umap(adata, epochs=30, random_state=0, quiet=True)
    return adata


@pytest.fixture
def scanpy_log():
    """What scglassbox logs through scanpy (its handler writes to ``settings.logfile``)."""
    import io

    import scanpy as sc

    before, buf = sc.settings.logfile, io.StringIO()
    sc.settings.logfile = buf
    try:
        yield buf
    finally:
        sc.settings.logfile = before
