"""CPU threading of a training step: OpenMP inside operations against row blocks on threads.

Times the median training step (sampling, encoder, loss, backward pass, Adam) of scglassbox's
default model on each dataset's stored graph (or a fresh one), in three set-ups of one process:
PyTorch's OpenMP threads inside each operation (``--threads`` of them), a single thread, and
what ``fit`` does on one CPU: one thread per operation with the step's cells split into row
blocks on worker threads. Uses the datasets prepared by ``benchmarks/run.py``.

Run: ``OMP_WAIT_POLICY=PASSIVE python benchmarks/threads.py --datasets pbmc68k_reduced
synthetic_5k synthetic_20k``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import run as bench
import torch

import scglassbox as gb
from scglassbox._threads import torch_threads, worker_count
from scglassbox._training import UMAPModule


def make_module(X: np.ndarray, graph: object) -> UMAPModule:
    """The module a default ``GlassBoxUMAP(random_state=0).fit(X, graph=graph)`` trains."""
    module, *_ = gb.GlassBoxUMAP(random_state=0)._training_module(X, graph, None)
    module.on_fit_start()
    return module


def median_step_ms(module: UMAPModule, steps: int, threads: int, workers: int) -> float:
    opt = torch.optim.Adam(module.encoder.parameters(), lr=3e-3)
    times = []
    with torch_threads(threads), module.row_blocks(workers):
        for i in range(steps + 5):
            t = time.perf_counter()
            loss = module.training_step(None, i)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 5:  # warm-up
                times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["pbmc68k_reduced", "synthetic_20k"])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--cache", type=Path, default=bench.DEFAULT_CACHE)
    args = p.parse_args()
    cache = args.cache.expanduser()
    print(
        f"{'dataset':16s} {'n':>6s} {'rows/step':>9s} {'precision':>9s} "
        f"{f'OpenMP x{args.threads}':>11s} {'1 thread':>9s} {'row blocks':>14s}  (ms/step)"
    )
    for name in args.datasets:
        data = bench.load_dataset(name, cache)
        module = make_module(data["X"], data.get("connectivities"))
        rows = module.expected_rows()
        workers = worker_count(rows, args.threads)
        omp = median_step_ms(module, args.steps, args.threads, 1)
        one = median_step_ms(module, args.steps, 1, 1)
        blocks = median_step_ms(module, args.steps, 1, workers)
        precision = "32" if module.compute_dtype is None else "bf16"
        print(
            f"{name:16s} {len(data['X']):6d} {rows:9.0f} {precision:>9s} {omp:11.2f} "
            f"{one:9.2f} {blocks:9.2f} (x{workers})"
        )


if __name__ == "__main__":
    main()
