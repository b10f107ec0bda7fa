import subprocess
import sys

import numpy as np
import pytest

from scglassbox import _graph


@pytest.mark.parametrize(
    ("spread", "min_dist"), [(1.0, 0.1), (1.0, 0.5), (1.0, 0.0), (2.0, 0.3), (0.5, 0.05)]
)
def test_ab_params_match_umap_learn(spread, min_dist):
    from umap.umap_ import find_ab_params

    want = find_ab_params(spread, min_dist)
    np.testing.assert_allclose(_graph.find_ab_params(spread, min_dist), want, rtol=1e-6)


def test_fit_on_a_graph_does_not_import_umap():
    # umap-learn's import JIT-compiles for seconds; a precomputed graph must not pay for it.
    code = (
        "import sys, numpy as np, scipy.sparse as sp\n"
        "import scglassbox as gb\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(60, 5)).astype('float32')\n"
        "G = sp.random(60, 60, density=0.1, random_state=0, format='csr')\n"
        "G = ((G + G.T) / 2).tocsr()\n"
        "gb.GlassBoxUMAP(epochs=2, quiet=True, random_state=0).fit(X, graph=G)\n"
        "print(sorted(m for m in sys.modules if m == 'umap' or m.startswith('umap.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------- weights pruning cannot use


def _knn_graph(n=80, k=6, seed=0):
    """A symmetric kNN-like graph with UMAP-like weights in (0, 1] (each cell's nearest: 1)."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), k)
    cols = (rows + rng.integers(1, n, size=rows.size)) % n
    w = rng.uniform(0.1, 1.0, size=rows.size)
    w[::k] = 1.0
    g = sparse.csr_matrix((w, (rows, cols)), shape=(n, n))  # duplicates add up
    g = g.maximum(g.T).tocsr()
    g.data = np.minimum(g.data, 1.0)
    return g


def test_normal_graph_keeps_its_edges():
    g = _knn_graph()
    edges = _graph.edge_list(g)
    assert edges.n_edges == g.nnz
    assert edges.weights.max() == 1.0


@pytest.mark.parametrize("value", [np.nan, np.inf, -0.5])
def test_non_finite_or_negative_weights_are_refused(value):
    g = _knn_graph()
    g.data[3] = value
    with pytest.raises(ValueError, match="finite and non-negative"):
        _graph.edge_list(g)
    with pytest.raises(ValueError, match="finite and non-negative"):
        _graph.check_graph(g, g.shape[0])


@pytest.mark.parametrize("outlier", [1e30, 30.0])
def test_outlier_weight_is_refused_not_pruned_to_one_edge(outlier):
    # Before: one weight of 1e30 pruned every other edge, and training used one edge.
    g = _knn_graph()
    g.data[0] = outlier
    with pytest.raises(ValueError, match=r"largest \(.*\) is .* times the median cell's heaviest"):
        _graph.edge_list(g)


def test_outlier_weight_is_refused_by_the_estimator():
    import scglassbox as gb

    g = _knn_graph()
    g.data[0] = 1e30
    X = np.random.default_rng(0).normal(size=(g.shape[0], 4)).astype(np.float32)
    with pytest.raises(ValueError, match="clip its weights"):
        gb.GlassBoxUMAP(epochs=1, quiet=True).fit(X, graph=g)


def test_cells_left_without_edges_are_reported():
    g = _knn_graph().tolil()
    g[5, :] = 0
    g[:, 5] = 0
    g[5, 6] = g[6, 5] = 0.001  # below 2.5% of the heaviest edge
    with pytest.warns(UserWarning, match="1 cell.* lose all their edges"):
        edges = _graph.edge_list(g.tocsr())
    assert 5 not in edges.heads


def test_large_k_graph_is_not_refused():
    """Many light edges (scanpy with n_neighbors=200 keeps ~30% after pruning) are fine."""
    g = _knn_graph(n=300, k=100)
    g.data = np.where(g.data < 1.0, g.data**20, 1.0)  # most edges below the 2.5% threshold
    edges = _graph.edge_list(g)
    assert edges.n_edges < 0.5 * g.nnz
