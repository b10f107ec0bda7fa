#!/usr/bin/env python
"""Stop 46's CPU kernels against an earlier commit's, in one process (whole default fits).

The fused loss (``_loss.py``), the activation kernels (``_kernels.py``) and the routed output
layer's product order of ``--against`` (stop 45: a51ebf4) are swapped in and out of the
installed package between default fits of a prepared set, alternating, after a first round of
both that compiles every kernel (so compiles are not counted)::

    python benchmarks/kernels_ab.py --against a51ebf4 --dataset synthetic_20k --rounds 3

Prints each fit's seconds (wall clock, and the process's CPU time, which time the machine
gives to other guests does not inflate) and a hash of its embedding (a version's hash
repeats), then the medians. Needs the git history of this checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/run.py: datasets and cache)


def _module_at(commit: str, path: str, name: str, tmp: Path):
    """The module ``path`` of ``commit``, loaded under ``name`` (its own numba kernels)."""
    text = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=HERE, capture_output=True, text=True, check=True
    ).stdout
    file = tmp / f"{name}.py"
    file.write_text(text)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layers_before(self, h, experts, activation, compute_dtype=None):
    """``RoutedMLP._layers`` before stop 46: the output layer as ``h W`` (no gates)."""
    import torch

    with torch.autocast(h.device.type, dtype=compute_dtype, enabled=compute_dtype is not None):
        for w, slope in zip(self.weights[:-1], self.slopes, strict=True):
            z = torch.bmm(h, w.index_select(0, experts).to(h.dtype))
            h = activation(z.view(-1, z.shape[-1]), slope, None).view(z.shape)
    w = self.weights[-1].index_select(0, experts)
    return torch.bmm(h.to(w.dtype), w).view(-1, self.n_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="a51ebf4", help="the earlier commit")
    parser.add_argument("--dataset", default="synthetic_20k", help="a prepared set of run.py")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=run.DEFAULT_CACHE)
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    import umap  # noqa: F401  (numba's start out of the timings, as in run.py)

    from scglassbox import _kernels, _loss, _routed

    data = run.load_dataset(args.dataset, args.cache.expanduser())
    X, graph = data["X"], data["connectivities"]
    with tempfile.TemporaryDirectory() as tmp:  # kept while the earlier kernels compile
        old_loss = _module_at(args.against, "src/scglassbox/_loss.py", "loss_before", Path(tmp))
        old_kernels = _module_at(
            args.against, "src/scglassbox/_kernels.py", "kernels_before", Path(tmp)
        )
        versions = {
            "now": (_loss._pairs, _kernels.PReLUScaleNormCPU, _routed.RoutedMLP._layers),
            args.against: (old_loss._pairs, old_kernels.PReLUScaleNormCPU, _layers_before),
        }
        times = _alternate(versions, X, graph, args.rounds)
    for name, t in times.items():
        print(f"{name}: median {statistics.median(t):.2f} s ({', '.join(f'{x:.2f}' for x in t)})")


def _alternate(versions: dict, X, graph, rounds: int) -> dict[str, list[float]]:
    """Default fits, each version in turn (first round not counted); seconds per version."""
    import scglassbox as gb
    from scglassbox import _kernels, _loss, _routed

    times: dict[str, list[float]] = {k: [] for v in versions for k in (v, f"{v}, CPU time")}
    for r in range(rounds + 1):
        for name in list(versions)[:: 1 if r % 2 else -1]:
            _loss._pairs, _kernels.PReLUScaleNormCPU, _routed.RoutedMLP._layers = versions[name]
            t, cpu = time.perf_counter(), time.process_time()
            emb = gb.GlassBoxUMAP(random_state=0, quiet=True).fit_transform(X, graph=graph)
            seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
            if r:
                times[name].append(seconds)
                times[f"{name}, CPU time"].append(cpu)
            digest = hashlib.sha1(emb.tobytes()).hexdigest()[:8]
            print(f"round {r} {name}: {seconds:.2f} s ({cpu:.2f} s CPU), {digest}", flush=True)
    _loss._pairs, _kernels.PReLUScaleNormCPU, _routed.RoutedMLP._layers = versions["now"]
    return times


if __name__ == "__main__":
    main()
