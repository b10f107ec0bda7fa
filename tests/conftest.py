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
