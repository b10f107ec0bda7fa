"""Compare the built-in encoders at default settings: kNN preservation@15 and fit time.

Run: ``python benchmarks/encoders.py`` (about 2 minutes on 2 CPU cores).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scanpy as sc
from sklearn import datasets
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

import scglassbox as gb


def knn_preservation(X: np.ndarray, Y: np.ndarray, k: int = 15) -> float:
    """Share of each point's k nearest neighbours in X that stay among its k nearest in Y."""
    a = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)[:, 1:]
    b = NearestNeighbors(n_neighbors=k + 1).fit(Y).kneighbors(Y, return_distance=False)[:, 1:]
    return float(np.mean((a[:, :, None] == b[:, None, :]).any(-1).sum(1) / k))


def main() -> None:
    warnings.filterwarnings("ignore")
    sets = {
        name: (StandardScaler().fit_transform(getattr(datasets, f"load_{name}")().data), None)
        for name in ("wine", "breast_cancer", "digits")
    }
    pbmc = sc.datasets.pbmc68k_reduced()
    sets["pbmc68k_reduced"] = (pbmc.obsm["X_pca"], pbmc.obsp["connectivities"])
    print(f"{'dataset':16s} {'encoder':9s} {'fit (s)':>8s} {'kNN@15':>7s}")
    for name, (X, graph) in sets.items():
        for encoder in ("mlp_norm", "mlp"):
            t = time.perf_counter()
            est = gb.GlassBoxUMAP(encoder=encoder, random_state=0, quiet=True)
            emb = est.fit_transform(X.astype(np.float32), graph=graph)
            fit = time.perf_counter() - t
            print(f"{name:16s} {encoder:9s} {fit:8.1f} {knn_preservation(X, emb):7.3f}")


if __name__ == "__main__":
    main()
