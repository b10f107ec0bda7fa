#!/usr/bin/env python
"""Prototype (not in the package): each cell a blend of its two nearest routed experts.

``f(x) = w E_k1(x) + (1 - w) E_k2(x)`` with ``k1``, ``k2`` the two nearest centroids and
``w = sigmoid((d2 - d1) / tau)`` from the squared distances: equal weights on a boundary, so
the map is continuous across it, and the weights are constants of the route (detached), so
``f(x) = (w A_k1 + (1 - w) A_k2) x`` stays an exact split. ``tau`` is a quarter of the given
quantile of ``d2 - d1`` over the cells. 32 experts of (64, 64), 12 epochs, synthetic_20k::

    python benchmarks/routed_blend.py 0.1     # prints fit time, kNN, exactness, pieces
"""

import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")
import run  # noqa: E402
import seams  # noqa: E402

import scglassbox as gb  # noqa: E402
from scglassbox._encoder import _PReLUScaleNorm  # noqa: E402
from scglassbox._routed import RoutedMLP  # noqa: E402

# Row blocks run on worker threads: the forced route is per thread.
_local = threading.local()


class Blended(RoutedMLP):
    """:class:`RoutedMLP` whose cells blend their two nearest experts (``tau`` set by hand)."""

    tau = 1.0

    @property
    def _forced(self) -> torch.Tensor | None:
        return getattr(_local, "forced", None)

    @_forced.setter
    def _forced(self, value: torch.Tensor | None) -> None:
        _local.forced = value

    def route(self, x: torch.Tensor) -> torch.Tensor:
        return self._forced if self._forced is not None else super().route(x)

    def gaps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two nearest centroids' squared distances and indices."""
        xr = x.detach().to(torch.bfloat16).double()
        c = self.centroids.double()
        d = (c * c).sum(1) - 2.0 * xr @ c.T + (xr * xr).sum(1, keepdim=True)
        return torch.topk(d, 2, dim=1, largest=False)

    def _blend(self, x, activation, dtype=None):
        v, k = self.gaps(x)
        w = torch.sigmoid((v[:, 1] - v[:, 0]) / self.tau).float()[:, None]
        self._forced = torch.cat([k[:, 0], k[:, 1]])
        try:
            with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
                parts = self._hidden(torch.cat([x, x]), activation)
            y = self._output(*parts)
        finally:
            self._forced = None
        n = x.shape[0]
        return w * y[:n] + (1 - w) * y[n:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._blend(x, self._modules_activation)

    def training_forward(self, x, compute_dtype=None, rows=None):
        def fused(z, slope):
            return _PReLUScaleNorm.apply(z, slope, True, self.norm.eps)

        y = self._blend(x, fused, compute_dtype)
        return y if rows is None else y[:rows]


def main() -> None:
    share = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
    data = run.load_dataset("synthetic_20k", run.DEFAULT_CACHE.expanduser())
    X = np.ascontiguousarray(data["X"], dtype=np.float32)
    torch.manual_seed(0)
    enc = Blended(X.shape[1], 2, (64, 64), 32)
    feats = X - X.mean(0)
    enc.place(feats, 0)
    with torch.no_grad():
        v, _ = enc.gaps(torch.from_numpy(feats))
        enc.tau = float(torch.quantile((v[:, 1] - v[:, 0]).float(), share)) / 4.0
    model = gb.GlassBoxUMAP(encoder=enc, epochs=12, random_state=0, quiet=True)
    start = time.perf_counter()
    emb = model.fit_transform(X, graph=data["connectivities"])
    fit = time.perf_counter() - start
    C = model.compute_contributions(X[:2000])
    exact = np.abs(C.sum(-1) - emb[:2000]).max() / np.abs(emb).max()
    knn = run.knn_preservation(run._knn(X, run.K), emb)
    print(
        f"blend, tau from quantile {share}: fit {fit:.1f} s, kNN {knn:.3f}, "
        f"exactness {exact:.1e}, pieces per type {seams.pieces(emb, data['labels'])}"
    )


if __name__ == "__main__":
    main()
