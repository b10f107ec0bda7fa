"""The fuzzy kNN graph and the low-dimensional kernel, reusing umap-learn's own functions.

:func:`fuzzy_graph` builds the graph ``fit`` trains on (under umap-learn's graph options),
:func:`check_graph` validates one passed in, and :func:`edge_list` turns either into the
pruned edges that training samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from ._warnings import warn

#: Edges lighter than this share of the heaviest edge are dropped before sampling, as the
#: reference package does; so one epoch (|E| weighted draws) is the same work in both.
EDGE_PRUNE_FRACTION = 0.025

#: A graph whose heaviest edge outweighs the median cell's heaviest edge by more than this is
#: refused: pruning is relative to the heaviest edge, so one outlier (a weight of 1e30) would
#: drop nearly every other edge. scanpy's and umap-learn's fuzzy graphs have a ratio of ~1
#: (every cell's nearest neighbour has weight 1), Gaussian-kernel graphs ~1.1.
MAX_WEIGHT_OUTLIER_RATIO = 10.0

#: Below this many cells the kNN search is exact (as umap-learn's small-data path).
EXACT_KNN_BELOW = 4096


@dataclass(frozen=True)
class EdgeList:
    """A pruned, weighted edge list of a fuzzy graph (both directions of each edge)."""

    heads: np.ndarray
    tails: np.ndarray
    #: ``None`` once training's sampler has been built from them.
    weights: np.ndarray | None

    @property
    def n_edges(self) -> int:
        """Number of directed edges kept."""
        return int(self.heads.shape[0])


def find_ab_params(spread: float, min_dist: float) -> tuple[float, float]:
    """Fit ``a, b`` of ``q = 1 / (1 + a d^(2b))`` as umap-learn does.

    The target is 1 up to ``min_dist`` and ``exp(-(d - min_dist) / spread)`` beyond, sampled
    at 300 points on ``[0, 3 spread]`` and fitted by least squares. Done here rather than by
    importing umap-learn, whose import JIT-compiles for several seconds: a fit on a
    precomputed graph never needs it. Tests check the result against umap-learn's.
    """
    from scipy.optimize import curve_fit

    d = np.linspace(0.0, 3.0 * spread, 300)
    target = np.where(d < min_dist, 1.0, np.exp(-(d - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), d, target)
    return float(a), float(b)


def fuzzy_graph(
    X: np.ndarray | sparse.spmatrix,
    n_neighbors: int,
    *,
    metric: str,
    random_state: int | None,
    metric_kwds: dict[str, Any] | None = None,
    precomputed_knn: tuple = (None, None, None),
    force_approximation_algorithm: bool = False,
    angular_rp_forest: bool = False,
    low_memory: bool = True,
    disconnection_distance: float | None = None,
    set_op_mix_ratio: float = 1.0,
    local_connectivity: float = 1.0,
) -> sparse.csr_matrix:
    """Build UMAP's fuzzy simplicial set of ``X``: the graph ``fit`` trains on.

    The one graph builder of the estimator. Neighbours are exact (scikit-learn) below
    :data:`EXACT_KNN_BELOW` cells unless ``force_approximation_algorithm``, else pynndescent
    through umap-learn's ``nearest_neighbors``, or ``precomputed_knn`` when given; the fuzzy
    union is umap-learn's ``fuzzy_simplicial_set``. The keyword options are umap-learn's graph
    options (the estimator's parameters of the same names), with umap-learn's defaults.

    ``fit`` passes the estimator's graph options (:data:`scglassbox._params.GRAPH_OPTIONS`,
    and ``low_memory`` with them) only when one of them differs from its default; otherwise
    it leaves every option at its default here.
    """
    from umap.umap_ import fuzzy_simplicial_set, nearest_neighbors

    n = X.shape[0]
    rng = np.random.RandomState(random_state)
    kwds = dict(metric_kwds or {})
    knn_indices, knn_dists, _ = precomputed_knn
    if knn_indices is not None:
        knn_indices, knn_dists = np.asarray(knn_indices), np.asarray(knn_dists)
        if (
            knn_dists is None
            or knn_indices.ndim != 2
            or knn_indices.shape != knn_dists.shape
            or knn_indices.shape[0] != n
            or knn_indices.shape[1] < n_neighbors
        ):
            raise ValueError(
                f"precomputed_knn must hold indices and distances of shape ({n}, >= "
                f"{n_neighbors}), got {knn_indices.shape} and {np.shape(knn_dists)}."
            )
        knn_indices = knn_indices[:, :n_neighbors]
        knn_dists = knn_dists[:, :n_neighbors]
    elif n < EXACT_KNN_BELOW and not force_approximation_algorithm:
        from sklearn.neighbors import NearestNeighbors

        nn_kwds = dict(kwds)
        p = nn_kwds.pop("p") if metric == "minkowski" and "p" in nn_kwds else 2
        nn_ = NearestNeighbors(
            n_neighbors=n_neighbors, metric=metric, p=p, metric_params=nn_kwds or None
        )
        knn_dists, knn_indices = nn_.fit(X).kneighbors(X)
    else:
        knn_indices, knn_dists, _ = nearest_neighbors(
            X,
            n_neighbors,
            metric,
            kwds,
            angular_rp_forest,
            rng,
            low_memory=low_memory,
            n_jobs=1 if random_state is not None else -1,
        )
    knn_indices = np.array(knn_indices, dtype=np.int32)
    knn_dists = np.array(knn_dists, dtype=np.float32)
    if disconnection_distance is not None:
        cut = knn_dists >= disconnection_distance
        knn_indices[cut], knn_dists[cut] = -1, np.inf
    graph, _, _ = fuzzy_simplicial_set(
        X,
        n_neighbors,
        rng,
        metric,
        kwds,
        knn_indices,
        knn_dists,
        angular_rp_forest,
        set_op_mix_ratio,
        local_connectivity,
    )
    return sparse.csr_matrix(graph)


def check_graph(graph: object, n_obs: int) -> sparse.csr_matrix:
    """Validate a user-supplied fuzzy graph and return it as float32 CSR."""
    if not sparse.issparse(graph):
        if isinstance(graph, np.ndarray) and graph.ndim == 2:
            graph = sparse.csr_matrix(graph)
        else:
            raise TypeError(
                f"graph must be a scipy sparse matrix of shape ({n_obs}, {n_obs}), "
                f"got {type(graph).__name__}."
            )
    if graph.shape != (n_obs, n_obs):
        raise ValueError(f"graph has shape {graph.shape}, but X has {n_obs} rows.")
    graph = sparse.csr_matrix(graph, dtype=np.float32)
    if graph.nnz == 0:
        raise ValueError("graph has no edges.")
    if not np.all(np.isfinite(graph.data)) or graph.data.min() < 0:
        raise ValueError("graph weights must be finite and non-negative.")
    return graph


def edge_list(graph: sparse.spmatrix) -> EdgeList:
    """Turn a fuzzy graph into the edge list that training samples from.

    Edges lighter than :data:`EDGE_PRUNE_FRACTION` of the heaviest one are dropped. A graph
    with non-finite or negative weights, or whose heaviest edge is an extreme outlier
    (:data:`MAX_WEIGHT_OUTLIER_RATIO`), is refused rather than pruned to almost nothing;
    cells that pruning leaves without any edge are reported with a warning.
    """
    coo = sparse.coo_matrix(graph)
    off = coo.row != coo.col
    row, col, data = coo.row[off], coo.col[off], coo.data[off]
    if data.size == 0:
        raise ValueError("graph has no edges between distinct cells.")
    if not np.isfinite(data).all() or data.min() < 0:
        raise ValueError("graph weights must be finite and non-negative.")
    top = float(data.max())
    if top <= 0:
        raise ValueError("graph has no edges between distinct cells (all weights are 0).")
    heaviest = np.zeros(graph.shape[0], dtype=np.float64)
    np.maximum.at(heaviest, row, data)
    typical = float(np.median(heaviest[heaviest > 0]))
    keep = data >= EDGE_PRUNE_FRACTION * top
    if top > MAX_WEIGHT_OUTLIER_RATIO * typical:
        raise ValueError(
            f"graph weights: the largest ({top:.3g}) is {top / typical:.3g} times the median "
            f"cell's heaviest edge ({typical:.3g}). Edges lighter than "
            f"{EDGE_PRUNE_FRACTION:.1%} of the largest are dropped before training, so this "
            f"outlier would leave {int(keep.sum())} of {data.size} edges. Check the graph "
            "(scanpy's connectivities lie in [0, 1]) or clip its weights, e.g. "
            "graph.data = np.minimum(graph.data, 1)."
        )
    # Counts, not np.unique: no sorted copies of the edge list (25M edges at 1M cells).
    n = graph.shape[0]
    lost = np.flatnonzero(
        (np.bincount(row, minlength=n) > 0) & (np.bincount(row[keep], minlength=n) == 0)
    )
    if lost.size:
        warn(
            f"{lost.size} cell(s) lose all their edges to pruning (edges lighter than "
            f"{EDGE_PRUNE_FRACTION:.1%} of the heaviest, {top:.3g}, are dropped): nothing "
            "pulls them towards their neighbours."
        )
    # int32 cell indices (half the memory of int64) while they fit; weights stay float32, as
    # the graph stores them (alias_table takes them to float64 itself).
    index = np.int32 if n < 2**31 else np.int64
    return EdgeList(
        heads=row[keep].astype(index, copy=False),
        tails=col[keep].astype(index, copy=False),
        weights=data[keep],
    )
