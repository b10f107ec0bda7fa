"""The map-quality figures: checked against scikit-learn and against cases with known answers."""

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from scglassbox._quality import embedding_quality, sample


@pytest.fixture(scope="module")
def cloud():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 20))
    return X, X[:, :2] + 0.3 * rng.normal(size=(800, 2))


def test_trustworthiness_matches_sklearn(cloud):
    X, E = cloud
    q = embedding_quality(X, E)
    assert q["trustworthiness"] == pytest.approx(trustworthiness(X, E, n_neighbors=15), abs=1e-12)
    assert q["n_cells"] == 800 and q["n_neighbors"] == 15


def test_knn_preservation_by_brute_force(cloud):
    X, E = cloud
    dx = ((X[:, None] - X[None]) ** 2).sum(-1)
    de = ((E[:, None] - E[None]) ** 2).sum(-1)
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(de, np.inf)
    a, b = np.argsort(dx, 1)[:, :15], np.argsort(de, 1)[:, :15]
    want = np.mean([len(set(r) & set(s)) / 15 for r, s in zip(a, b, strict=True)])
    assert embedding_quality(X, E)["knn_preservation"] == pytest.approx(want)


def test_perfect_and_random_embeddings(cloud):
    X, _ = cloud
    best = embedding_quality(X, X * 3.0)  # a similarity keeps every neighbour
    assert best["knn_preservation"] == 1.0 and best["trustworthiness"] == pytest.approx(1.0)
    noise = np.random.default_rng(1).normal(size=(800, 2))
    worst = embedding_quality(X, noise)
    assert worst["knn_preservation"] < 0.05 and worst["trustworthiness"] < 0.6


def test_sample_is_fixed_and_bounded():
    np.testing.assert_array_equal(sample(10_000, 5000), sample(10_000, 5000))
    s = sample(10_000, 5000)
    assert s.size == 5000 and np.all(np.diff(s) > 0)
    np.testing.assert_array_equal(sample(300, 5000), np.arange(300))


def test_too_few_cells_give_nan():
    q = embedding_quality(np.zeros((2, 3)), np.zeros((2, 2)))
    assert np.isnan(q["knn_preservation"]) and np.isnan(q["trustworthiness"])
