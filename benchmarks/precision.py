"""Training precision: float32 against bfloat16 hidden layers, fit time and kNN preservation@15.

Uses the datasets prepared by ``benchmarks/run.py`` (run it once first) and their stored scanpy
graphs where they have one. Every configuration runs in one process after a warm-up fit, so
the times compare like with like; repeat seeds to see the noise of the quality figure.

Run: ``python benchmarks/precision.py --datasets digits synthetic_5k --seeds 0 1 2``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import run as bench

import scglassbox as gb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(bench.DEFAULT_DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--cache", type=Path, default=bench.DEFAULT_CACHE)
    args = p.parse_args()
    cache = args.cache.expanduser()
    gb.GlassBoxUMAP(epochs=2, quiet=True).fit(np.random.default_rng(0).normal(size=(300, 5)))
    print(
        f"{'dataset':16s} {'n':>6s} {'seed':>4s} {'precision':>9s} {'fit (s)':>8s} {'kNN@15':>7s}"
    )
    for name in args.datasets:
        data = bench.load_dataset(name, cache)
        X, graph = data["X"], data.get("connectivities")
        input_knn = bench._knn(X, bench.K)
        for seed in args.seeds:
            for precision in ("32", "bf16"):
                t = time.perf_counter()
                est = gb.GlassBoxUMAP(precision=precision, random_state=seed, quiet=True)
                emb = est.fit_transform(X, graph=graph)
                wall = time.perf_counter() - t
                knn = bench.knn_preservation(input_knn, emb)
                print(f"{name:16s} {len(X):6d} {seed:4d} {precision:>9s} {wall:8.1f} {knn:7.3f}")


if __name__ == "__main__":
    main()
