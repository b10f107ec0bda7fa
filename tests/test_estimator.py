import numpy as np
import pytest
import torch
from scipy import sparse

import scglassbox as gb
from scglassbox._contributions import exactness


def test_same_seed_is_bitwise_reproducible(wine):
    X, _ = wine
    a = gb.GlassBoxUMAP(random_state=3, epochs=5, quiet=True).fit_transform(X)
    b = gb.GlassBoxUMAP(random_state=3, epochs=5, quiet=True).fit_transform(X)
    c = gb.GlassBoxUMAP(random_state=4, epochs=5, quiet=True).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_transform_transform_and_shapes(fitted, wine):
    X, _ = wine
    emb = fitted.transform(X)
    assert emb.shape == (X.shape[0], 2) and emb.dtype == np.float32
    np.testing.assert_array_equal(emb, fitted.embedding_)
    assert fitted.loss_history_.shape == (30,) and np.isfinite(fitted.loss_history_).all()
    assert fitted.loss_history_[-5:].mean() < fitted.loss_history_[:5].mean()
    assert fitted.graph_.shape == (X.shape[0], X.shape[0])


def test_learns_structure(fitted, wine):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    _, y = wine
    acc = cross_val_score(KNeighborsClassifier(15), fitted.embedding_, y, cv=5).mean()
    assert acc > 0.85


def test_sparse_input_matches_dense(wine):
    X, _ = wine
    Xs = X.copy()
    Xs[np.abs(Xs) < 0.3] = 0
    kw = {"random_state": 0, "epochs": 3, "quiet": True}
    first = gb.GlassBoxUMAP(**kw).fit(Xs)
    # Same graph (sklearn's kNN distances differ in the last bits for sparse input); the
    # centring mean may differ by one float32 ulp, which training carries along.
    for fmt in (sparse.csr_matrix, sparse.csc_matrix):
        emb = gb.GlassBoxUMAP(**kw).fit_transform(fmt(Xs), graph=first.graph_)
        np.testing.assert_allclose(emb, first.embedding_, rtol=0, atol=1e-4)


def test_float64_and_int_input(wine):
    X, _ = wine
    est = gb.GlassBoxUMAP(random_state=0, epochs=3, quiet=True).fit(X.astype(np.float64))
    assert est.transform(X.astype(np.float64)).dtype == np.float32
    est.transform((X * 10).astype(np.int64))


def test_precomputed_graph_is_used(wine):
    X, _ = wine
    first = gb.GlassBoxUMAP(random_state=0, epochs=3, quiet=True).fit(X)
    again = gb.GlassBoxUMAP(random_state=0, epochs=3, quiet=True).fit(X, graph=first.graph_)
    np.testing.assert_array_equal(first.embedding_, again.embedding_)
    with pytest.raises(ValueError, match="graph has shape"):
        gb.GlassBoxUMAP(epochs=1, quiet=True).fit(X, graph=first.graph_[:10, :10])


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n_neighbors", 1),
        ("n_neighbors", 2.5),
        ("n_components", 0),
        ("min_dist", -0.1),
        ("spread", 0),
        ("negative_sample_rate", 0),
        ("repulsion_strength", float("nan")),
        ("pca_components", 0),
        ("lr", 0),
        ("epochs", -1),
        ("batch_size", True),
        ("random_state", "seed"),
        ("encoder", "transformer"),
        ("metric", 3),
        ("precision", "16"),
    ],
)
def test_invalid_parameters_name_the_parameter(wine, param, value):
    X, _ = wine
    with pytest.raises(ValueError, match=param):
        gb.GlassBoxUMAP(**{param: value}, quiet=True).fit(X)


def test_min_dist_above_spread(wine):
    with pytest.raises(ValueError, match="min_dist"):
        gb.GlassBoxUMAP(min_dist=2.0, spread=1.0).fit(wine[0])


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.zeros(5), "2D array"),
        (np.array([["a", "b"]] * 20), "numeric"),
        (np.full((20, 3), np.nan), "NaN"),
        (np.zeros((0, 3)), "0 sample"),
        (np.zeros((1, 3)), "1 sample"),
        (np.full((20, 3), 1e39), "float32's range"),
    ],
)
def test_invalid_X(X, match):
    with pytest.raises(ValueError, match=match):
        gb.GlassBoxUMAP(quiet=True).fit(X)


def test_too_many_neighbours_and_components():
    X = np.random.default_rng(0).normal(size=(10, 4))
    # as umap-learn: n_neighbors is cut to n_samples - 1, with a warning
    with pytest.warns(UserWarning, match="n_neighbors"):
        gb.GlassBoxUMAP(quiet=True, epochs=1).fit(X)
    with pytest.raises(ValueError, match="pca_components"):
        gb.GlassBoxUMAP(pca_components=5, n_neighbors=3, quiet=True).fit(X)


def test_not_fitted_and_wrong_width(fitted):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        gb.GlassBoxUMAP().transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="13"):
        fitted.transform(np.zeros((2, 5)))


def test_custom_encoder_accepted(wine):
    X, _ = wine
    net = torch.nn.Sequential(
        torch.nn.Linear(13, 32, bias=False),
        torch.nn.LeakyReLU(0.1),
        torch.nn.Linear(32, 3, bias=False),
    )
    est = gb.GlassBoxUMAP(encoder=net, n_components=3, epochs=3, random_state=0, quiet=True)
    C, emb = est.fit(X).compute_contributions(X, return_embedding=True)
    assert C.shape == (X.shape[0], 3, 13)
    assert exactness(emb, C) <= 1e-5


@pytest.mark.parametrize(
    ("net", "match"),
    [
        (
            torch.nn.Sequential(torch.nn.Linear(13, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)),
            "do not sum",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(13, 8, bias=False), torch.nn.Tanh(),
                                torch.nn.Linear(8, 2, bias=False)),
            "do not sum",
        ),
        (torch.nn.Linear(13, 3, bias=False), "expected"),
        (torch.nn.Linear(5, 2, bias=False), "failed on input"),
    ],
)  # fmt: skip
def test_custom_encoder_refused(wine, net, match):
    with pytest.raises(ValueError, match=match):
        gb.GlassBoxUMAP(encoder=net, epochs=1, quiet=True).fit(wine[0])


def test_auto_epochs():
    from scglassbox._estimator import auto_epochs

    assert auto_epochs(3_000, 10_000) == 500
    assert auto_epochs(400_000, 10_000) == 25
    assert auto_epochs(50_000_000, 10_000) == 10


def test_repr(fitted):
    # scikit-learn's repr: the parameters that differ from their defaults
    assert repr(fitted) == "GlassBoxUMAP(epochs=30, quiet=True, random_state=0)"
    assert "GlassBoxUMAP" in fitted._repr_html_()


def test_auto_batch_size(wine, tmp_path):
    from scglassbox._estimator import auto_batch_size

    assert auto_batch_size(178) == 10_000
    assert auto_batch_size(3_000) == 12_000
    assert auto_batch_size(5_000) == 20_000
    assert auto_batch_size(7_500) == 15_000
    assert auto_batch_size(20_000) == 10_000
    X, _ = wine
    est = gb.GlassBoxUMAP(random_state=0, epochs=2, quiet=True).fit(X)
    assert est.batch_size is None
    from scglassbox._graph import edge_list

    assert est.batch_size_ == min(10_000, edge_list(est.graph_).n_edges)  # capped at |E|
    again = gb.GlassBoxUMAP.load(est.save(tmp_path / "m.npz"))
    assert again.batch_size is None and again.batch_size_ == est.batch_size_
    np.testing.assert_array_equal(again.transform(X), est.transform(X))
    fixed = gb.GlassBoxUMAP(random_state=0, epochs=2, batch_size=500, quiet=True).fit(X)
    assert fixed.batch_size_ == 500
