"""How faithful an embedding is to the space its graph was built in: two standard figures.

Both are computed on a fixed random sample of at most :data:`MAX_CELLS` cells, with
neighbours taken among the sampled cells, so the cost is bounded whatever the data size
(about a second for 5,000 cells) and the same ``seed`` gives the same sample:

- **kNN preservation**: the share of each cell's ``k`` nearest neighbours in the input space
  that are among its ``k`` nearest in the embedding;
- **trustworthiness** (Venna & Kaski; :func:`sklearn.manifold.trustworthiness`): 1 minus a
  penalty for embedding neighbours that are far away in the input space, by their rank there.
"""

from __future__ import annotations

import numpy as np

#: Cells in the sample the figures are computed on.
MAX_CELLS = 5000
#: Neighbours per cell.
N_NEIGHBORS = 15
#: Rows of the sample's distance matrix held at once.
_ROWS = 512


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def _knn(X: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's ``k`` nearest other rows, nearest first (float64 distances)."""
    n = X.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, _ROWS):
        d = _sq_distances(X[start : start + _ROWS], X)
        rows = np.arange(d.shape[0])
        d[rows, start + rows] = np.inf  # not its own neighbour
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
        out[start : start + d.shape[0]] = np.take_along_axis(part, order, 1)
    return out


def sample(n_obs: int, max_cells: int = MAX_CELLS, seed: int = 0) -> np.ndarray:
    """The sorted indices of the fixed sample (all cells when there are at most ``max_cells``)."""
    if n_obs <= max_cells:
        return np.arange(n_obs)
    return np.sort(np.random.default_rng(seed).choice(n_obs, max_cells, replace=False))


def embedding_quality(
    X: np.ndarray,
    embedding: np.ndarray,
    *,
    n_neighbors: int = N_NEIGHBORS,
    max_cells: int = MAX_CELLS,
    seed: int = 0,
) -> dict[str, float | int]:
    """The kNN preservation and trustworthiness of ``embedding`` against ``X``.

    Parameters
    ----------
    X
        The input space ``(n, p)`` (dense): what the neighbour graph was built on.
    embedding
        ``(n, d)``.
    n_neighbors
        Neighbours per cell (``k``); at most ``(n_sample - 1) / 2`` are used (the
        trustworthiness formula needs ``k < n / 2``).
    max_cells, seed
        The sample (see :func:`sample`).

    Returns
    -------
    ``{"knn_preservation", "trustworthiness", "n_cells", "n_neighbors"}``; both figures are
    in [0, 1], higher is better. NaN when there are fewer than 3 cells.
    """
    idx = sample(X.shape[0], max_cells, seed)
    n = idx.size
    k = int(min(n_neighbors, (n - 1) // 2))
    if k < 1:
        return {"knn_preservation": float("nan"), "trustworthiness": float("nan"),
                "n_cells": int(n), "n_neighbors": k}  # fmt: skip
    Xs = np.asarray(X[idx], dtype=np.float64)
    Es = np.asarray(embedding[idx], dtype=np.float64)
    nn_x, nn_e = _knn(Xs, k), _knn(Es, k)
    pairs = zip(nn_x, nn_e, strict=True)
    hits = sum(np.intersect1d(a, b, assume_unique=True).size for a, b in pairs)
    # Trustworthiness: each embedding neighbour's rank in the input space (1 = nearest other
    # cell) beyond k.
    penalty = 0.0
    for start in range(0, n, _ROWS):
        d = _sq_distances(Xs[start : start + _ROWS], Xs)
        rows = np.arange(d.shape[0])
        d[rows, start + rows] = -np.inf  # itself: rank 0
        e = nn_e[start : start + d.shape[0]]
        de = np.take_along_axis(d, e, 1)  # (b, k) input distances of the embedding neighbours
        ranks = (d[:, None, :] < de[:, :, None]).sum(-1)  # cells nearer, itself included
        penalty += float(np.maximum(ranks - k, 0).sum())  # input neighbours rank <= k
    trust = 1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))
    return {"knn_preservation": hits / (n * k), "trustworthiness": trust, "n_cells": int(n),
            "n_neighbors": k}  # fmt: skip
