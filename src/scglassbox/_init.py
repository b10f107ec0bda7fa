"""Where ``fit`` follows umap-learn: the fuzzy graph under its graph options, the ``init`` layouts.

:func:`umap_graph` builds the kNN graph with umap-learn's own functions when a graph option
(``metric_kwds``, ``set_op_mix_ratio``, ``precomputed_knn``...) is set; otherwise ``fit`` uses
:func:`scglassbox._graph.fuzzy_graph`. :func:`init_layout` computes umap-learn's starting
layout of that name, and :func:`regress_layout` trains the encoder to reproduce it before the
UMAP loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import nn

from . import _graph, _logging

#: ``init`` layouts: the encoder first regresses the layout for this many Adam steps ...
INIT_STEPS = 300
#: ... on this many cells per step.
INIT_BATCH = 4096


def umap_graph(
    X: np.ndarray | sparse.csr_matrix,
    n_neighbors: int,
    *,
    metric: str,
    metric_kwds: dict[str, Any] | None,
    random_state: int | None,
    precomputed_knn: tuple,
    force_approximation_algorithm: bool,
    angular_rp_forest: bool,
    low_memory: bool,
    disconnection_distance: float | None,
    set_op_mix_ratio: float,
    local_connectivity: float,
) -> sparse.csr_matrix:
    """The fuzzy graph with umap-learn's graph options applied (the estimator's parameters)."""
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
    elif n < _graph.EXACT_KNN_BELOW and not force_approximation_algorithm:
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


def init_layout(
    X: np.ndarray | sparse.csr_matrix,
    graph: sparse.csr_matrix,
    init: str | np.ndarray,
    n_components: int,
    seed: int,
    *,
    metric: str,
    metric_kwds: dict[str, Any] | None,
) -> np.ndarray:
    """The ``init`` layout, scaled as umap-learn scales it, centred on 0 (float32)."""
    n, d = X.shape[0], n_components
    if isinstance(init, str) and init == "pca":
        from sklearn.decomposition import PCA, TruncatedSVD

        if d > min(X.shape):
            raise ValueError(f"init='pca' needs n_components ({d}) <= {min(X.shape)}.")
        cls = TruncatedSVD if sparse.issparse(X) else PCA
        layout = cls(n_components=d, random_state=seed % 2**32).fit_transform(X)
    elif isinstance(init, str):
        from umap import spectral

        fn = spectral.spectral_layout if init == "spectral" else spectral.tswspectral_layout
        rng = np.random.RandomState(seed % 2**32)
        layout = fn(X, graph, d, rng, metric=metric, metric_kwds=metric_kwds or {})
    else:
        layout = np.asarray(init, dtype=np.float64)
        if layout.shape != (n, d) or not np.isfinite(layout).all():
            raise ValueError(
                f"init as an array must be finite with shape (n_samples, n_components) = "
                f"({n}, {d}), got shape {layout.shape}."
            )
    layout = np.asarray(layout, dtype=np.float64)
    lo, hi = layout.min(axis=0), layout.max(axis=0)
    layout = 10.0 * (layout - lo) / np.where(hi > lo, hi - lo, 1.0)
    # The encoder has no bias, so the mean sample maps near 0: centre the target there.
    return (layout - layout.mean(axis=0)).astype(np.float32)


def regress_layout(
    encoder: nn.Module, features: np.ndarray, target: np.ndarray, *, seed: int, lr: float
) -> None:
    """Train ``encoder`` briefly to map ``features`` to the ``init`` layout ``target``."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    t = torch.from_numpy(target)
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    was_training = encoder.training
    encoder.train()
    for _ in range(INIT_STEPS):
        idx = torch.randint(n, (min(n, INIT_BATCH),), generator=gen)
        loss = (encoder(x.index_select(0, idx)) - t.index_select(0, idx)).pow(2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    encoder.train(was_training)
    with torch.no_grad():
        resid = float((encoder(x[:INIT_BATCH]) - t[:INIT_BATCH]).pow(2).sum(1).mean())
    spread = float(t[:INIT_BATCH].pow(2).sum(1).mean())
    _logging.info(f"init layout regressed: R^2 = {1.0 - resid / max(spread, 1e-12):.3f}")
