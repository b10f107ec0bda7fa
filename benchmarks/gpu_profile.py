#!/usr/bin/env python
"""Where a default fit's time goes, and a kNN-vs-time curve of encoder sizes and step sizes.

Runs on the prepared file of ``benchmarks/scale.py`` (``<workdir>/data_<n>.h5ad``), in one
process, on the CPU or one GPU::

    python benchmarks/gpu_profile.py --n 100000 --workdir /tmp/scale_gpu --accelerator gpu

1. ``warmup``: a tiny fit, so CUDA's start-up is not charged to the first measurement;
2. ``profile``: ``gb.tl.glassbox_umap`` at defaults under cProfile; prints the functions with
   the largest cumulative time (the stages: graph and sampler set-up, training, the
   contributions / summary pass, storage);
3. ``curve``: ``GlassBoxUMAP(**config).fit_transform(X_pca, graph=connectivities)`` for each
   configuration, timed, with kNN preservation against the stored graph (as ``scale.py``).

Records are JSON lines on stdout (``RESULT {...}``) and in ``--out``. Configurations are tried
in order until ``--budget`` seconds have passed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

W4 = (512, 512, 512, 512)
#: name -> GlassBoxUMAP keyword arguments. The first session's curve (100k cells, umap-learn's
#: min_dist 0.1) is in benchmarks/results/gpu/; these compare with sc.tl.umap (min_dist 0.5).
CONFIGS = {
    "default": {},
    "default_b100k": {"batch_size": 100_000, "epochs": 10},
    "w4_b80k_e40": {"encoder_kwargs": {"hidden": W4}, "batch_size": 80_000, "epochs": 40},
    "w4_b80k_e40_bf16": {
        "encoder_kwargs": {"hidden": W4},
        "batch_size": 80_000,
        "epochs": 40,
        "precision": "bf16",
    },
    "w4_b160k_e80": {"encoder_kwargs": {"hidden": W4}, "batch_size": 160_000, "epochs": 80},
    "w4_e40": {"encoder_kwargs": {"hidden": W4}, "epochs": 40},
    # min_dist 0.5 (scanpy's): the package's GPU defaults and their neighbours
    "gpu_default_md05": {"min_dist": 0.5},
    "gpu_gate_md05": {"min_dist": 0.5, "encoder": "mlp_gate"},
    "gpu_default_2x_md05": {"min_dist": 0.5, "epochs_factor": 2},
    "gpu_gate_2x_md05": {"min_dist": 0.5, "encoder": "mlp_gate", "epochs_factor": 2},
    "gpu_fast_md05": {
        "min_dist": 0.5,
        "encoder_kwargs": {"hidden": (256, 256)},
        "epochs_factor": 0.3,
    },
    "gpu_neg10_md05": {"min_dist": 0.5, "negative_sample_rate": 10},
}


def _sync(accelerator: str) -> None:
    if accelerator == "gpu":
        import torch

        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/.scale"))
    parser.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for the curve")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import anndata as ad
    import numpy as np
    from scale import knn_preservation

    import scglassbox as gb

    def record(rec: dict) -> None:
        print("RESULT " + json.dumps(rec), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(rec) + "\n")

    adata = ad.read_h5ad(args.workdir / f"data_{args.n}.h5ad")
    X = np.ascontiguousarray(adata.obsm["X_pca"], dtype=np.float32)
    graph, dist = adata.obsp["connectivities"], adata.obsp["distances"]

    t0 = time.perf_counter()
    sub = graph[:2000][:, :2000]  # a graph of its own would JIT-compile pynndescent first
    gb.GlassBoxUMAP(epochs=1, quiet=True, accelerator=args.accelerator).fit(X[:2000], graph=sub)
    _sync(args.accelerator)
    record({"stage": "warmup", "time_s": time.perf_counter() - t0})

    if not args.no_profile:
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        gb.tl.glassbox_umap(adata, accelerator=args.accelerator, quiet=True, random_state=0)
        _sync(args.accelerator)
        prof.disable()
        total = time.perf_counter() - t0
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(45)
        print(buf.getvalue(), flush=True)
        knn = knn_preservation(adata.obsm["X_glassbox_umap"], dist)
        record({"stage": "profile", "time_s": total, "knn": knn})

    start = time.perf_counter()
    for name in args.configs:
        if time.perf_counter() - start > args.budget:
            record({"stage": "curve", "config": name, "skipped": "budget"})
            continue
        kw = dict(CONFIGS[name])
        factor = kw.pop("epochs_factor", None)
        if factor is not None:  # a multiple of the default epochs on this graph and device
            from scglassbox import _graph, _params

            device = _params.device_type(args.accelerator)
            n_edges = _graph.edge_list(graph).n_edges
            base = _params.auto_epochs(n_edges, _params.auto_batch_size(len(X), n_edges, device))
            kw["epochs"] = max(1, round(base * factor))
        est = gb.GlassBoxUMAP(random_state=0, quiet=True, accelerator=args.accelerator, **kw)
        t0 = time.perf_counter()
        emb = est.fit_transform(X, graph=graph)
        _sync(args.accelerator)
        fit_s = time.perf_counter() - t0
        c = est.compute_contributions(X[:2000])
        exact = float(np.abs(c.sum(-1) - emb[:2000]).max() / np.abs(emb).max())
        record({
            "stage": "curve", "config": name, "fit_s": fit_s, "epochs": int(est.epochs_),
            "batch_size_used": int(est.batch_size_), "hidden": list(est.encoder_.hidden),
            "precision_used": est.precision_, "knn": knn_preservation(emb, dist),
            "exactness": exact, **{k: v for k, v in kw.items() if k != "encoder_kwargs"},
        })  # fmt: skip


if __name__ == "__main__":
    main()
