"""The ``init`` layouts: umap-learn's starting layouts, and the encoder's regression onto one.

:func:`init_layout` computes umap-learn's starting layout of that name (``"spectral"``,
``"tswspectral"``, ``"pca"``, or an array), and :func:`regress_layout` trains the encoder to
reproduce it before the UMAP loss (:data:`INIT_STEPS` Adam steps of :data:`INIT_BATCH` cells;
training sizes, not chunk sizes: see :mod:`scglassbox._chunks`). The graph the spectral
layouts read is the one ``fit`` trains on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import nn

from . import _logging

#: ``init`` layouts: the encoder first regresses the layout for this many Adam steps ...
INIT_STEPS = 300
#: ... on this many cells per step.
INIT_BATCH = 4096


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
