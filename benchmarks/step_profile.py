#!/usr/bin/env python
"""Where a 20,000-cell CPU fit spends its time, and what one training step costs.

Two measurements on ``synthetic_20k`` (the prepared set of ``benchmarks/run.py``), in one
process, on the CPU::

    python benchmarks/step_profile.py                 # both parts, a few minutes
    python benchmarks/step_profile.py --skip-compile  # without the torch.compile rows
    python benchmarks/step_profile.py --dataset synthetic_100k --fit-only   # 100,000 cells
    python benchmarks/step_profile.py --phases        # wall clock per phase of a step
    python benchmarks/step_profile.py --tiles-ab      # a step's tiles or rows over threads

``--phases`` times a default fit's phases by wall clock (the worker threads' work included,
which cProfile does not see): the row blocks' encoder forward, loss and encoder backward,
the Muon and Adam updates, edge sampling; and, in a fresh process, what numba costs before
the first step (its import, its first compile, the kernels the fit compiles).

1. ``fit``: ``GlassBoxUMAP(random_state=0).fit(X_pca, graph=connectivities)`` at defaults,
   under cProfile: the fit's total, the training loop, the threaded encoder + loss pass,
   edge sampling, Adam, and everything before training (graph checks, alias table, input
   map, init regression); then each torch operator's share of two epochs on one thread.
2. ``step``: the encoder's forward and backward on one step's rows (as many distinct cells as
   a default step encodes at 20,000 cells), per call in ms: the package's fused training pass
   in float32 and bfloat16, the plain modules, and ``torch.compile`` of the modules (its
   compile time apart). Nothing here changes the package: the compiled rows measure a lever.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/run.py: datasets and cache)

#: cProfile functions whose cumulative time makes a row of the fit's split.
STAGES = {
    "training loop (Lightning fit)": ("trainer.py", "_run_stage"),
    "encoder + loss, threaded row blocks": ("_threads.py", "loss"),
    "edge sampling": ("_sampling.py", "draw"),
    "Adam updates": ("adam.py", "adam"),
    "routed encoder: k-means placement of the centroids": ("_routed.py", "place"),
    "routed encoder: route table": ("_routed.py", "route_table"),
}


def _warm_up(X, graph) -> None:
    """A one-epoch fit on 2,000 cells first: imports and first-call set-up out of the timing."""
    import scglassbox as gb

    gb.GlassBoxUMAP(random_state=0, quiet=True, epochs=1).fit(X[:2000], graph=graph[:2000, :2000])


def fit_split(X, graph) -> list[tuple[str, float]]:
    import scglassbox as gb

    _warm_up(X, graph)
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    est = gb.GlassBoxUMAP(random_state=0, quiet=True).fit(X, graph=graph)
    prof.disable()
    total = time.perf_counter() - t
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    rows = [("whole fit", total)]
    for label, (file, name) in STAGES.items():
        ct = sum(v[3] for k, v in stats.items() if k[0].endswith(file) and k[2] == name)
        rows.append((label, ct))
    rows.append(("before training", total - rows[1][1]))
    rows[0] = (f"whole fit ({est.epochs_} epochs)", total)
    return rows


def phase_split(X, graph) -> list[tuple[str, float]]:
    """Wall-clock seconds of each phase of a default fit (timers around package functions)."""
    from collections import defaultdict

    import torch

    import scglassbox as gb
    from scglassbox import _routed, _threads, _training

    _warm_up(X, graph)
    times: dict[str, float] = defaultdict(float)

    def timed(label, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[label] += time.perf_counter() - t

        return wrapper

    blocks_loss = _threads.RowBlocks.loss
    phases = ("row blocks: encoder forward", "row blocks: loss", "row blocks: encoder backward")

    def loss(self, *args):
        # RowBlocks.loss maps its three phases over the pool in this order: time each map
        # until its last block is done.
        pool, labels = self._pool, iter(phases)

        class Timed:
            def map(self, fn, items):
                t = time.perf_counter()
                out = list(pool.map(fn, items))
                times[next(labels)] += time.perf_counter() - t
                return iter(out)

        self._pool = Timed()
        try:
            return blocks_loss(self, *args)
        finally:
            self._pool = pool

    step = _training.UMAPModule.training_step
    blocks_map, place = _threads.RowBlocks.map, _routed.RoutedMLP.place
    patches = [
        (_threads.RowBlocks, "loss", timed("row blocks: the whole step's pass", loss)),
        # Muon spreads its matrices over the pool with RowBlocks.map: wait for them here.
        (_threads.RowBlocks, "map", timed("Muon updates", lambda *a: iter(list(blocks_map(*a))))),
        (_routed.RoutedMLP, "place", timed("k-means placement of the experts", place)),
        (_routed.RoutedMLP, "route_table", timed("route table", _routed.RoutedMLP.route_table)),
        (torch.optim.Adam, "step", timed("Adam updates", torch.optim.Adam.step)),
        (_training, "draw", timed("edge sampling", _training.draw)),
        (_training, "_unique", timed("the step's distinct cells", _training._unique)),
        (_training.UMAPModule, "training_step", timed("training steps", step)),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, fn in patches:
        setattr(owner, name, fn)
    try:
        t = time.perf_counter()
        est = gb.GlassBoxUMAP(random_state=0, quiet=True).fit(X, graph=graph)
        total = time.perf_counter() - t
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    return [(f"whole fit ({est.epochs_} epochs)", total), *sorted(times.items())]


#: Run in a fresh process: numba's costs before a routed fit's first step.
NUMBA_COSTS = """
import time
t = time.perf_counter(); import numba; print("numba import", time.perf_counter() - t)
import torch
from scglassbox import _kernels, _loss
t = time.perf_counter(); numba.njit(lambda x: x + 1)(1.0)
print("numba's first compile (a one-line function)", time.perf_counter() - t)
for dtype in (torch.bfloat16, torch.float32):
    z = torch.randn(256, 64).to(dtype).requires_grad_(); w = torch.zeros(64, requires_grad=True)
    t = time.perf_counter(); _kernels.PReLUScaleNormCPU.apply(z, w, 1e-5).sum().backward()
    print(f"compile: PReLU + ScaleNorm kernels, {dtype}", time.perf_counter() - t)
e = torch.randn(50, 2, requires_grad=True); i = torch.arange(10)
t = time.perf_counter()
_loss.UMAPLossCPU.apply(e, i, i + 1, i[:, None] + 2, 1.6, 0.9, 1.0, 1e-3, 10)
print("compile: the fused loss", time.perf_counter() - t)
"""


def numba_costs() -> list[tuple[str, float]]:
    """Seconds numba takes in a fresh process before a routed fit's first step."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", NUMBA_COSTS], capture_output=True, text=True, check=True
    ).stdout
    return [(line.rsplit(" ", 1)[0], float(line.rsplit(" ", 1)[1])) for line in out.splitlines()]


def op_shares(X, graph) -> list[tuple[str, float]]:
    """Share of CPU time per torch operator in two epochs on one thread (``n_jobs=1``)."""
    from torch.profiler import ProfilerActivity, profile

    import scglassbox as gb

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        gb.GlassBoxUMAP(random_state=0, quiet=True, epochs=2, n_jobs=1).fit(X, graph=graph)
    events = [e for e in prof.key_averages() if not e.key.startswith("Optimizer.")]
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]
    return [(e.key, 100 * e.self_cpu_time_total / total) for e in top]


def step_times(rows: int, hidden: tuple[int, ...], compile_: bool) -> list[tuple[str, float]]:
    import torch

    from scglassbox._encoder import build_encoder

    torch.manual_seed(0)
    enc = build_encoder("mlp_norm", 50, 2, hidden=hidden)
    x = torch.randn(rows, 50)

    def bench(fn, n: int = 30) -> float:
        for _ in range(3):
            fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n * 1000

    def fused(dtype):
        return lambda: enc.training_forward(x, dtype, None).square().sum().backward()

    out = [
        ("fused pass, float32 (the package)", bench(fused(None))),
        ("fused pass, bfloat16 (the package on AMX / AVX512-BF16)", bench(fused(torch.bfloat16))),
        ("plain modules, float32", bench(lambda: enc(x).square().sum().backward())),
    ]
    if compile_:
        compiled = torch.compile(enc)

        def comp(dtype):
            def run_once():
                with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                    y = compiled(x)
                y.float().square().sum().backward()

            return run_once

        for label, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
            t = time.perf_counter()
            comp(dtype)()
            first = time.perf_counter() - t
            out.append((f"torch.compile, {label}: first call (compiles), s", first))
            out.append((f"torch.compile, {label}", bench(comp(dtype))))
    return out


def tiles_ab(X, graph, rounds: int = 3) -> dict[str, list[float]]:
    """Whole default fits, in this process, alternating the routed step's two layouts.

    ``"tiles"``: the step's tiles split over the row-block threads (the default since stop
    45); ``"rows"``: each thread tiles its own block of rows, as before. A first round of
    both compiles the kernels and is not counted.
    """
    import scglassbox as gb
    from scglassbox import _training

    mode = ["tiles"]
    tiled_step = _training.UMAPModule._tiled_step

    def step(self, nodes):
        # "rows": the blocks split the cells, each tiling its own (align None: the rows' own
        # bfloat16 alignment).
        if mode[0] == "rows":
            return self._encode_cells, nodes, None, None
        return tiled_step(self, nodes)

    _training.UMAPModule._tiled_step = step
    times: dict[str, list[float]] = {"tiles": [], "rows": []}
    try:
        for r in range(rounds + 1):
            for m in times:
                mode[0] = m
                t = time.perf_counter()
                gb.GlassBoxUMAP(random_state=0, quiet=True).fit(X, graph=graph)
                if r:
                    times[m].append(time.perf_counter() - t)
    finally:
        _training.UMAPModule._tiled_step = tiled_step
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=run.DEFAULT_CACHE)
    parser.add_argument("--rows", type=int, default=15_000, help="cells encoded per step")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--dataset", default="synthetic_20k", help="a prepared set of run.py")
    parser.add_argument("--fit-only", action="store_true", help="only the fit's split")
    parser.add_argument("--phases", action="store_true", help="only the wall-clock phases")
    parser.add_argument(
        "--tiles-ab", action="store_true", help="fits with the step's tiles or rows split"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    args.cache = args.cache.expanduser()
    (args.cache / "runs").mkdir(parents=True, exist_ok=True)
    run.ensure_datasets([args.dataset], args.cache, args.cache / "runs")
    data = run.load_dataset(args.dataset, args.cache)
    if args.tiles_ab:
        times = tiles_ab(data["X"], data["connectivities"])
        print(f"| default fit on {args.dataset}, in-process | runs (s) | median (s) |")
        print("|---|---|--:|")
        for label, ts in times.items():
            runs = " / ".join(f"{t:.2f}" for t in ts)
            print(f"| threads split the step's {label} | {runs} | {sorted(ts)[len(ts) // 2]:.2f} |")
        return
    if args.phases:
        print(f"| phase of a default fit on {args.dataset} (wall clock) | s |\n|---|--:|")
        for label, s in phase_split(data["X"], data["connectivities"]):
            print(f"| {label} | {s:.2f} |")
        print("\n| numba, in a fresh process | s |\n|---|--:|")
        for label, s in numba_costs():
            print(f"| {label} | {s:.2f} |")
        return
    print(f"| stage of a default fit on {args.dataset} | s |\n|---|--:|")
    for label, s in fit_split(data["X"], data["connectivities"]):
        print(f"| {label} | {s:.2f} |")
    if args.fit_only:
        return
    print("\n| operator (one thread, 2 epochs) | % of CPU time |\n|---|--:|")
    for name, share in op_shares(data["X"], data["connectivities"]):
        print(f"| {name} | {share:.1f} |")
    for hidden in ((128, 128), (256, 256)):
        print(f"\n| one step, hidden {hidden}, {args.rows:,} rows | ms |\n|---|--:|")
        for label, ms in step_times(args.rows, hidden, not args.skip_compile):
            print(f"| {label} | {ms:.1f} |")


if __name__ == "__main__":
    main()
