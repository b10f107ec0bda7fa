"""Embedding quality with and without an ``init`` layout.

For each dataset, seed and ``init`` ("random": the network's random weights, the default;
"spectral" and "pca": umap-learn's layouts, which the encoder first regresses), fits a
default :class:`scglassbox.GlassBoxUMAP` and prints kNN preservation at k = 15 (the mean share
of each sample's 15 input-space neighbours that stay among its 15 embedding neighbours, as in
``benchmarks/run.py``) and the fit time, as a Markdown table.

Run: ``python benchmarks/init.py`` (about 5 minutes on 2 cores; ``--seeds 0 1`` for less).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import run as bench

import scglassbox as gb

INITS = ("random", "spectral", "pca")


def load(name: str) -> np.ndarray:
    """Features as ``benchmarks/run.py`` uses them (standardised tables, PBMC's X_pca)."""
    if name == "pbmc68k_reduced":
        X, _, _ = bench._pbmc()
    else:
        X, _, _ = bench._sklearn_set(name)
    return np.asarray(X, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["wine", "digits", "pbmc68k_reduced"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--inits", nargs="+", default=list(INITS))
    args = parser.parse_args()

    print("| dataset | n | init | kNN pres@15, per seed | mean | fit s (mean) |")
    print("|---|---:|---|---|---:|---:|")
    for name in args.datasets:
        X = load(name)
        input_knn = bench._knn(X, bench.K)
        for init in args.inits:
            scores, times = [], []
            for seed in args.seeds:
                start = time.perf_counter()
                emb = gb.GlassBoxUMAP(init=init, random_state=seed, quiet=True).fit_transform(X)
                times.append(time.perf_counter() - start)
                scores.append(bench.knn_preservation(input_knn, emb))
            per_seed = ", ".join(f"{s:.3f}" for s in scores)
            print(
                f"| {name} | {len(X)} | {init} | {per_seed} | {np.mean(scores):.3f} "
                f"| {np.mean(times):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
