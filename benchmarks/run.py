#!/usr/bin/env python
"""Benchmark scglassbox against umap-learn, scanpy's UMAP and the reference glass-box-umap.

Each method runs in its own fresh Python process (so its peak RSS is its own); the orchestrating
process imports only the standard library until every run is done, because Linux carries the
parent's RSS high-water mark into a child's ``getrusage`` across ``exec``.

    python benchmarks/run.py                      # full run (defaults table + equal epochs)
    python benchmarks/run.py --quick              # wine + pbmc68k_reduced only
    python benchmarks/run.py --datasets wine digits --methods umap-learn scglassbox
    python benchmarks/run.py --equal-epochs 5 --out benchmarks/results/latest.md

Not a test: it prints tables and PASS/MISS target checks and always exits 0 unless it crashes.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

K = 15
TRUST_MAX_N = 3000
CACHE_VERSION = 1
SKLEARN_SETS = {"wine": "load_wine", "digits": "load_digits", "breast_cancer": "load_breast_cancer"}
SYNTHETIC_SETS = {
    "synthetic_5k": 5_000,
    "synthetic_10k": 10_000,
    "synthetic_20k": 20_000,
    "synthetic_100k": 100_000,
    "synthetic_20k_noisy": 20_000,
    "synthetic_20k_batches": 20_000,
    "synthetic_100k_branching": 100_000,
}
#: ``synthetic_scrna`` options of the sets that are not ``synthetic_scrna(n, 2000, seed=0)``:
#: weaker markers over more types, three batches (a technical shift of half the genes), and
#: a branching trajectory (``synthetic_trajectory``: a trunk and three lineages, no clusters).
SYNTHETIC_OPTIONS = {
    "synthetic_20k_noisy": {"n_types": 12, "fold_change": 3.0, "seed": 7},
    "synthetic_20k_batches": {"n_batches": 3, "seed": 11},
    "synthetic_100k_branching": {"generator": "trajectory", "seed": 3},
}
DATASETS = (*SKLEARN_SETS, "pbmc68k_reduced", *SYNTHETIC_SETS)
#: The issue's sets; synthetic_100k (scaling), synthetic_10k (where the routed CPU default
#: starts) and the other 20k sets run only when named.
DEFAULT_DATASETS = tuple(
    d
    for d in DATASETS
    if d not in ("synthetic_10k", "synthetic_100k") and d not in SYNTHETIC_OPTIONS
)
QUICK_DATASETS = ("wine", "pbmc68k_reduced")
EQUAL_EPOCH_DATASETS = ("pbmc68k_reduced", "synthetic_5k")
METHODS = ("umap-learn", "sc.tl.umap", "scglassbox", "glass-box-umap")
GLASS_BOX = ("scglassbox", "glass-box-umap")
REFERENCE = "glass-box-umap"
VERSIONS = (
    "scglassbox",
    "glass-box-umap",
    "umap-learn",
    "scanpy",
    "anndata",
    "torch",
    "lightning",
    "pytorch-lightning",
    "pynndescent",
    "numba",
    "numpy",
    "scikit-learn",
)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
DEFAULT_CACHE = Path(os.environ.get("SCGLASSBOX_BENCH_CACHE", "~/.cache/scglassbox-bench"))

# --------------------------------------------------------------------------- dataset cache


def _data_path(cache: Path, name: str) -> Path:
    return cache / f"{name}.v{CACHE_VERSION}.npz"


def _meta_path(cache: Path, name: str) -> Path:
    return cache / f"{name}.v{CACHE_VERSION}.json"


def _sklearn_set(name: str) -> tuple[Any, Any, None]:
    import sklearn.datasets
    from sklearn.preprocessing import StandardScaler

    bunch = getattr(sklearn.datasets, SKLEARN_SETS[name])()
    return StandardScaler().fit_transform(bunch.data), bunch.target, None


def _pbmc() -> tuple[Any, Any, Any]:
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()  # bundled with scanpy: no download
    return adata.obsm["X_pca"], adata.obs["bulk_labels"], adata


def _synthetic(n_obs: int, **options: Any) -> tuple[Any, Any, Any]:
    import scanpy as sc

    from scglassbox.datasets import synthetic_scrna, synthetic_trajectory

    options = {"seed": 0, **options}
    if options.pop("generator", "scrna") == "trajectory":
        adata = synthetic_trajectory(n_obs, 2000, **options)
        adata.obs["cell_type"] = adata.obs["branch"]
    else:
        adata = synthetic_scrna(n_obs, 2000, **options)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=1000)
    sc.pp.pca(adata, n_comps=50)
    sc.pp.neighbors(adata)
    return adata.obsm["X_pca"], adata.obs["cell_type"], adata


def _neighbor_params(adata: Any) -> dict[str, Any]:
    import numpy as np

    params = adata.uns["neighbors"]["params"]
    n_neighbors = int(np.asarray(params["n_neighbors"]).ravel()[0])  # pbmc68k stores [10]
    return {"n_neighbors": n_neighbors, "method": str(params.get("method", "umap"))}


def prepare_dataset(name: str, cache: Path) -> None:
    """Build one dataset and write it (features, labels, maybe a graph) to the cache."""
    import numpy as np
    import pandas as pd

    if name in SKLEARN_SETS:
        X, labels, adata = _sklearn_set(name)
    elif name == "pbmc68k_reduced":
        X, labels, adata = _pbmc()
    else:
        X, labels, adata = _synthetic(SYNTHETIC_SETS[name], **SYNTHETIC_OPTIONS.get(name, {}))
    arrays: dict[str, Any] = {
        "X": np.ascontiguousarray(X, dtype=np.float32),
        "labels": pd.Categorical(np.asarray(labels)).codes.astype(np.int64),
    }
    meta: dict[str, Any] = {"n": int(X.shape[0]), "n_features": int(X.shape[1]), "graph": False}
    if adata is not None:
        for key in ("connectivities", "distances"):
            m = adata.obsp[key].tocsr()
            arrays |= {f"{key}_data": m.data, f"{key}_indices": m.indices}
            arrays[f"{key}_indptr"] = m.indptr
        meta |= {"graph": True, "neighbors": _neighbor_params(adata)}
    cache.mkdir(parents=True, exist_ok=True)
    tmp = _data_path(cache, name).with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(_data_path(cache, name))
    _meta_path(cache, name).write_text(json.dumps(meta))


def load_dataset(name: str, cache: Path) -> dict[str, Any]:
    """Load a cached dataset: ``X``, ``labels`` and, for scanpy sets, the two graphs."""
    import numpy as np
    from scipy import sparse

    meta = json.loads(_meta_path(cache, name).read_text())
    with np.load(_data_path(cache, name), allow_pickle=False) as z:
        data = {"X": z["X"], "labels": z["labels"], "meta": meta}
        n = data["X"].shape[0]
        for key in ("connectivities", "distances") if meta["graph"] else ():
            parts = (z[f"{key}_data"], z[f"{key}_indices"], z[f"{key}_indptr"])
            data[key] = sparse.csr_matrix(parts, shape=(n, n))
    return data


# --------------------------------------------------------------------------- methods (child)


def _epoch_timer(base: type) -> Any:
    """A Lightning callback (of ``base``'s package) recording each epoch's wall and CPU time."""

    class EpochTimer(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []
            self._start = (0.0, 0.0)

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._start = (time.perf_counter(), time.process_time())

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.wall.append(time.perf_counter() - self._start[0])
            self.cpu.append(time.process_time() - self._start[1])

    return EpochTimer()


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """Call ``fn``; return its output, wall seconds and process CPU seconds (all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _default_epochs(n: int) -> int:
    return 500 if n <= 10_000 else 200  # umap-learn's and scanpy's rule


def umap_learn_model(seed: int, epochs: int | None = None, min_dist: float = 0.1) -> Any:
    """The umap-learn baseline's estimator (its own kNN graph, ``min_dist=0.1`` unless given)."""
    import umap

    return umap.UMAP(random_state=seed, min_dist=min_dist, n_epochs=epochs)


def run_umap_learn(
    data: dict[str, Any], seed: int, epochs: int | None, min_dist: float = 0.1
) -> dict[str, Any]:
    """umap-learn on the features (builds its own kNN graph)."""
    model = umap_learn_model(seed, epochs, min_dist)
    emb, wall, cpu = _timed(model.fit_transform, data["X"])
    n_epochs = epochs or _default_epochs(len(emb))
    return {"embedding": emb, "fit_s": wall, "fit_cpu_s": cpu, "epochs": n_epochs}


def _sc_adata(data: dict[str, Any], seed: int) -> Any:
    import anndata as ad
    import scanpy as sc

    adata = ad.AnnData(X=data["X"])
    if not data["meta"]["graph"]:
        sc.pp.neighbors(adata, use_rep="X", n_neighbors=K, random_state=seed)  # not timed
        return adata
    adata.obsm["X_pca"] = data["X"]
    adata.obsp["connectivities"] = data["connectivities"]
    adata.obsp["distances"] = data["distances"]
    params = dict(data["meta"]["neighbors"], use_rep="X_pca", metric="euclidean")
    adata.uns["neighbors"] = {
        "connectivities_key": "connectivities",
        "distances_key": "distances",
        "params": params,
    }
    return adata


def run_sc_umap(
    data: dict[str, Any], seed: int, epochs: int | None, min_dist: float = 0.1
) -> dict[str, Any]:
    """``sc.tl.umap`` on the stored (or an untimed freshly built) neighbour graph.

    ``min_dist`` is 0.1 (umap-learn's default, as every fit of these benchmarks) unless given;
    scanpy's own default is 0.5.
    """
    import scanpy as sc

    adata = _sc_adata(data, seed)
    _, wall, cpu = _timed(sc.tl.umap, adata, min_dist=min_dist, random_state=seed, maxiter=epochs)
    emb = adata.obsm["X_umap"]
    n_epochs = epochs or _default_epochs(len(emb))
    return {"embedding": emb, "fit_s": wall, "fit_cpu_s": cpu, "epochs": n_epochs}


def _contributions(model: Any, X: Any, emb: Any) -> dict[str, Any]:
    import numpy as np

    contrib, wall, _ = _timed(model.compute_contributions, X)
    if contrib.shape != (*emb.shape, X.shape[1]):
        raise RuntimeError(f"contributions have shape {contrib.shape}, embedding {emb.shape}")
    return {"contrib_s": wall, "contrib_sum": contrib.astype(np.float64).sum(axis=-1)}


def _glass_box_record(emb: Any, wall: float, cpu: float, epochs: int, timer: Any) -> dict:
    return {
        "embedding": emb,
        "fit_s": wall,
        "fit_cpu_s": cpu,
        "epochs": int(epochs),
        "epoch_wall": timer.wall,
        "epoch_cpu": timer.cpu,
    }


def run_scglassbox(
    data: dict[str, Any], seed: int, epochs: int | None, *, use_graph: bool, contributions: bool
) -> dict[str, Any]:
    """scglassbox at default settings (or ``epochs``), on the scanpy graph when asked."""
    import lightning.pytorch as lp

    from scglassbox import GlassBoxUMAP

    timer = _epoch_timer(lp.Callback)
    model = GlassBoxUMAP(
        random_state=seed, quiet=True, epochs=epochs, trainer_kwargs={"callbacks": [timer]}
    )
    graph = data.get("connectivities") if use_graph else None
    _, wall, cpu = _timed(model.fit, data["X"], graph=graph)
    out = _glass_box_record(model.embedding_, wall, cpu, model.epochs_, timer)
    if contributions:
        out |= _contributions(model, data["X"], model.embedding_)
    return out


def run_reference(
    data: dict[str, Any], seed: int, epochs: int | None, *, contributions: bool
) -> dict[str, Any]:
    """The reference ``glass_box_umap.GlassBoxUMAP`` (always builds its own graph)."""
    import pytorch_lightning as pl
    from glass_box_umap import GlassBoxUMAP

    timer = _epoch_timer(pl.Callback)
    kwargs: dict[str, Any] = {"random_state": seed, "quiet": True, "extra_callbacks": [timer]}
    if epochs is not None:
        kwargs["epochs"] = epochs
    model = GlassBoxUMAP(**kwargs)
    _, wall, cpu = _timed(model.fit, data["X"])
    emb = model.transform(data["X"])
    out = _glass_box_record(emb, wall, cpu, model.epochs, timer)
    if contributions:
        out |= _contributions(model, data["X"], emb)
    return out


def _peak_rss_mb() -> dict[str, float]:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    hwm = float("nan")
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return {"peak_rss_mb": rss, "vmhwm_mb": hwm}


def worker(spec: dict[str, Any]) -> None:
    """Child entry point: run one method on one dataset, save the embedding and a JSON record."""
    import numpy as np

    data = load_dataset(spec["dataset"], Path(spec["cache"]))
    method, seed, epochs = spec["method"], spec["seed"], spec["epochs"]
    # Every method's fit is timed warm: umap-learn (whose import JIT-compiles for seconds,
    # and which sc.tl.umap imports lazily) is imported first, untimed for the fit. Its import
    # time is recorded apart, so the cold (fresh-process) cost can be shown too.
    start = time.perf_counter()
    import umap  # noqa: F401

    import_s = time.perf_counter() - start
    if method == "umap-learn":
        out = run_umap_learn(data, seed, epochs)
    elif method == "sc.tl.umap":
        out = run_sc_umap(data, seed, epochs)
    elif method == "scglassbox":
        out = run_scglassbox(
            data, seed, epochs, use_graph=spec["use_graph"], contributions=spec["contributions"]
        )
    elif method == REFERENCE:
        out = run_reference(data, seed, epochs, contributions=spec["contributions"])
    else:
        raise ValueError(f"unknown method {method!r}")
    record = _peak_rss_mb() | {"umap_import_s": import_s}
    outdir = Path(spec["outdir"])
    np.save(outdir / "embedding.npy", np.asarray(out.pop("embedding"), dtype=np.float32))
    if "contrib_sum" in out:
        np.save(outdir / "contrib_sum.npy", out.pop("contrib_sum"))
    record |= out
    (outdir / "result.json").write_text(json.dumps(record))


# --------------------------------------------------------------------------- metrics (child)


def _knn(X: Any, k: int) -> Any:
    """Indices of each row's ``k`` nearest other rows (exact)."""
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)
    is_self = idx == np.arange(len(X))[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # duplicates: drop the farthest instead
    return idx[~is_self].reshape(len(X), k)


def knn_preservation(input_knn: Any, emb: Any, k: int = K) -> float:
    """Mean share of each cell's ``k`` input-space neighbours that stay among its ``k`` in 2-D."""
    emb_knn = _knn(emb, k)
    shared = (input_knn[:, :, None] == emb_knn[:, None, :]).any(axis=2).sum(axis=1)
    return float(shared.mean() / k)


def trust_subsample(n: int, seed: int) -> Any:
    """A fixed random subsample of at most ``TRUST_MAX_N`` cells."""
    import numpy as np

    if n <= TRUST_MAX_N:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, TRUST_MAX_N, replace=False))


def label_accuracy(emb: Any, labels: Any, seed: int) -> float:
    """5-fold cross-validated accuracy of a 15-NN classifier in the embedding."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(K), emb, labels, cv=cv).mean())


def metrics_worker(spec: dict[str, Any]) -> None:
    """Child entry point: quality metrics (and exactness) for every finished run."""
    import numpy as np
    from sklearn.manifold import trustworthiness

    from scglassbox._contributions import exactness

    cache, seed, results = Path(spec["cache"]), spec["seed"], {}
    by_dataset: dict[str, list[str]] = {}
    for run_dir, dataset in spec["runs"].items():
        by_dataset.setdefault(dataset, []).append(run_dir)
    for dataset, run_dirs in by_dataset.items():
        data = load_dataset(dataset, cache)
        X, labels = data["X"], data["labels"]
        input_knn, sub = _knn(X, K), trust_subsample(len(X), seed)
        for run_dir in run_dirs:
            emb = np.load(Path(run_dir) / "embedding.npy")
            res = {
                "knn_preservation": knn_preservation(input_knn, emb),
                "trustworthiness": float(trustworthiness(X[sub], emb[sub], n_neighbors=K)),
                "label_accuracy": label_accuracy(emb, labels, seed),
            }
            csum = Path(run_dir) / "contrib_sum.npy"
            if csum.exists():
                res["exactness"] = exactness(emb, np.load(csum)[..., None])
            results[run_dir] = res
    Path(spec["out"]).write_text(json.dumps(results))


# --------------------------------------------------------------------------- orchestration


def _child(args: list[str], log: Path, timeout: float) -> str | None:
    """Run this script as a child; return ``None`` on success, else a short reason."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    with log.open("w") as fh:
        try:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"timeout after {timeout:.0f} s"
    if proc.returncode == 0:
        return None
    tail = log.read_text().strip().splitlines()[-1:] or ["?"]
    return f"failed (exit {proc.returncode}): {tail[0][:120]}"


def ensure_datasets(names: list[str], cache: Path, workdir: Path) -> None:
    """Prepare every missing dataset, each in its own child process."""
    for name in names:
        if _data_path(cache, name).exists() and _meta_path(cache, name).exists():
            continue
        print(f"preparing {name} ...", flush=True)
        spec = json.dumps({"dataset": name, "cache": str(cache)})
        err = _child(["--_prepare", spec], workdir / f"prepare_{name}.log", 3600)
        if err:
            sys.exit(f"could not prepare {name}: {err} (see {workdir})")


def graph_source(method: str, meta: dict[str, Any], mode: str) -> str:
    """Which kNN graph a method trains on, as shown in the table."""
    if method in ("umap-learn", REFERENCE) or mode == "equal_epochs":
        return "own, k=15"
    if meta["graph"]:
        return f"stored, k={meta['neighbors']['n_neighbors']}"
    if method == "sc.tl.umap":
        return "sc.pp.neighbors, k=15 (untimed)"
    return "own, k=15"


def run_one(
    dataset: str, method: str, mode: str, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """Run one (dataset, method) pair in a fresh process and return its record."""
    meta = json.loads(_meta_path(args.cache, dataset).read_text())
    row: dict[str, Any] = {"dataset": dataset, "n": meta["n"], "method": method, "note": ""}
    row["graph"] = graph_source(method, meta, mode)
    if method == REFERENCE and not importlib.util.find_spec("glass_box_umap"):
        return row | {"note": "skipped: glass_box_umap not importable"}
    equal = mode == "equal_epochs"
    if method == REFERENCE and not equal and meta["n"] > args.ref_max_n:
        return row | {"note": f"skipped: n > --ref-max-n {args.ref_max_n} (too slow on CPU)"}
    outdir = workdir / f"{mode}__{dataset}__{method}"
    outdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "dataset": dataset,
        "method": method,
        "seed": args.seed,
        "epochs": args.equal_epochs if equal else args.epochs,
        "cache": str(args.cache),
        "outdir": str(outdir),
        "use_graph": meta["graph"] and not equal,  # equal epochs: both build their own graph
        "contributions": not equal,
    }
    print(f"[{mode}] {dataset:16s} {method:15s} ...", end=" ", flush=True)
    row["load"] = os.getloadavg()[0]
    start = time.perf_counter()
    err = _child(["--_worker", json.dumps(spec)], outdir / "log.txt", args.timeout)
    print(f"{time.perf_counter() - start:7.1f} s {err or ''}", flush=True)
    if err:
        return row | {"note": err}
    return row | json.loads((outdir / "result.json").read_text()) | {"run_dir": str(outdir)}


def add_metrics(rows: list[dict[str, Any]], args: argparse.Namespace, workdir: Path) -> None:
    """Compute quality metrics for all finished runs in one child process."""
    runs = {r["run_dir"]: r["dataset"] for r in rows if "run_dir" in r}
    if not runs:
        return
    out = workdir / "metrics.json"
    spec = {"runs": runs, "cache": str(args.cache), "seed": args.seed, "out": str(out)}
    print("computing metrics ...", flush=True)
    err = _child(["--_metrics", json.dumps(spec)], workdir / "metrics.log", args.timeout)
    if err:
        print(f"metrics {err}", flush=True)
        return
    metrics = json.loads(out.read_text())
    for r in rows:
        r.update(metrics.get(r.get("run_dir", ""), {}))


def add_epoch_rates(rows: list[dict[str, Any]]) -> None:
    """Median seconds per epoch (wall and CPU) and the reference/scglassbox ratios."""
    import statistics

    for r in rows:
        for key in ("wall", "cpu"):
            if r.get(f"epoch_{key}"):
                r[f"epoch_{key}_s"] = statistics.median(r[f"epoch_{key}"])
    for r in rows:
        ours = _find(rows, r["dataset"], "scglassbox")
        if r["method"] != REFERENCE:
            continue
        for key in ("wall", "cpu"):
            if r.get(f"epoch_{key}_s") and ours.get(f"epoch_{key}_s"):
                r[f"ratio_{key}"] = r[f"epoch_{key}_s"] / ours[f"epoch_{key}_s"]


# --------------------------------------------------------------------------- report


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return format(value, spec)


DEFAULT_COLUMNS = {
    "dataset": ("dataset", "s"),
    "n": ("n", "d"),
    "method": ("method", "s"),
    "graph": ("graph", "s"),
    "epochs": ("epochs", "d"),
    "fit_s": ("fit (s)", ".2f"),
    "fit_cpu_s": ("fit CPU (s)", ".1f"),
    "umap_import_s": ("umap import (s)", ".1f"),
    "contrib_s": ("contrib (s)", ".3f"),
    "peak_rss_mb": ("peak RSS (MB)", ".0f"),
    "knn_preservation": ("kNN pres@15", ".3f"),
    "trustworthiness": ("trust@15", ".3f"),
    "label_accuracy": ("15-NN acc", ".3f"),
    "exactness": ("exactness", ".1e"),
    "load": ("load", ".1f"),
    "note": ("note", "s"),
}
EQUAL_COLUMNS = {
    "dataset": ("dataset", "s"),
    "n": ("n", "d"),
    "method": ("method", "s"),
    "epochs": ("epochs", "d"),
    "fit_s": ("fit (s)", ".2f"),
    "epoch_wall_s": ("s/epoch", ".4f"),
    "epoch_cpu_s": ("CPU s/epoch", ".4f"),
    "ratio_wall": ("ref/ours (wall)", ".1f"),
    "ratio_cpu": ("ref/ours (CPU)", ".1f"),
    "peak_rss_mb": ("peak RSS (MB)", ".0f"),
    "load": ("load", ".1f"),
    "note": ("note", "s"),
}


def table(rows: list[dict[str, Any]], columns: dict[str, tuple[str, str]]) -> str:
    """Format rows as a markdown table (``to_string`` when tabulate is missing)."""
    import pandas as pd

    df = pd.DataFrame(
        [{title: _fmt(r.get(key), spec) for key, (title, spec) in columns.items()} for r in rows]
    )
    if importlib.util.find_spec("tabulate"):
        align = ["left" if spec == "s" else "right" for _, spec in columns.values()]
        return df.to_markdown(index=False, disable_numparse=True, colalign=align)
    return df.to_string(index=False)


def _find(rows: list[dict[str, Any]], dataset: str, method: str) -> dict[str, Any]:
    return next((r for r in rows if r["dataset"] == dataset and r["method"] == method), {})


def _verdict(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "MISS")


def check_speed(equal_rows: list[dict[str, Any]]) -> list[str]:
    """(a) equal epochs: scglassbox's seconds per epoch at least 20x below the reference's."""
    lines = []
    for ds in dict.fromkeys(r["dataset"] for r in equal_rows):
        ref, ours = _find(equal_rows, ds, REFERENCE), _find(equal_rows, ds, "scglassbox")
        ratio = ref.get("ratio_wall")
        ok = None if ratio is None else ratio >= 20
        detail = "not measured"
        if ratio is not None:
            detail = (
                f"{ref['epoch_wall_s']:.3f} / {ours['epoch_wall_s']:.4f} s = {ratio:.1f}x "
                f"(CPU time: {ref.get('ratio_cpu', float('nan')):.1f}x)"
            )
        lines.append(f"{_verdict(ok)} (a) {ds}: ref/scglassbox s/epoch >= 20x: {detail}")
    return lines or ["n/a  (a) equal-epochs table not run"]


def check_quality(rows: list[dict[str, Any]]) -> list[str]:
    """(b) scglassbox kNN preservation >= umap-learn's - 0.02 on every dataset."""
    lines = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        ours = _find(rows, ds, "scglassbox").get("knn_preservation")
        base = _find(rows, ds, "umap-learn").get("knn_preservation")
        if ours is None or base is None:
            lines.append(f"n/a  (b) {ds}: kNN preservation not measured for both")
            continue
        ok = ours >= base - 0.02
        lines.append(
            f"{_verdict(ok)} (b) {ds}: kNN pres {ours:.3f} vs umap-learn {base:.3f} - 0.02 "
            f"= {base - 0.02:.3f}"
        )
    return lines


def check_fit_time(rows: list[dict[str, Any]]) -> list[str]:
    """(c) scglassbox fit time on the 20k set at most twice sc.tl.umap's."""
    ours_row = _find(rows, "synthetic_20k", "scglassbox")
    base_row = _find(rows, "synthetic_20k", "sc.tl.umap")
    ours, base = ours_row.get("fit_s"), base_row.get("fit_s")
    if ours is None or base is None:
        return ["n/a  (c) synthetic_20k: fit times not measured for both"]
    ok = ours <= 2 * base
    cpu = ours_row.get("fit_cpu_s", float("nan")) / base_row.get("fit_cpu_s", float("nan"))
    lines = [
        f"{_verdict(ok)} (c) synthetic_20k: scglassbox fit {ours:.1f} s vs 2 x sc.tl.umap "
        f"{base:.1f} s = {2 * base:.1f} s ({ours / base:.1f}x; CPU time {cpu:.1f}x; both warm)"
    ]
    imp = base_row.get("umap_import_s")
    if imp is not None:
        # In a fresh process sc.tl.umap also pays umap-learn's import; a fit on a stored graph
        # with scglassbox does not import umap-learn at all.
        cold = base + imp
        lines.append(
            f"{_verdict(ours <= 2 * cold)} (c, info: fresh process) synthetic_20k: scglassbox "
            f"{ours:.1f} s vs 2 x (sc.tl.umap {base:.1f} s + umap import {imp:.1f} s) = "
            f"{2 * cold:.1f} s ({ours / cold:.1f}x)"
        )
    return lines


def check_exactness(rows: list[dict[str, Any]]) -> list[str]:
    """(d) exactness of scglassbox's contributions at most 1e-5 (reference shown for info)."""
    lines = []
    for r in rows:
        if r["method"] not in GLASS_BOX:
            continue
        err = r.get("exactness")
        ok = None if err is None else err <= 1e-5
        tag = "(d)" if r["method"] == "scglassbox" else "(d, info: reference)"
        detail = "not measured" if err is None else f"{err:.1e}"
        lines.append(f"{_verdict(ok)} {tag} {r['dataset']} {r['method']}: exactness {detail}")
    return lines


def thread_env() -> str:
    """The thread-related environment variables that are set, or 'library defaults'."""
    names = (*THREAD_VARS, "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_THREADING_LAYER")
    found = [f"{n}={os.environ[n]}" for n in names if n in os.environ]
    return ", ".join(found) or "library defaults"


def git_revision() -> str:
    """Commit of the repository holding this script, with '+ local changes' when dirty."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"git {rev}" + (" + uncommitted changes in src/" if dirty else "")


def header(argv: list[str], load_start: float, revision: str) -> str:
    """Date, command, machine, load and package versions."""
    cpu = platform.processor() or "?"
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), cpu)
    versions = []
    for pkg in VERSIONS:
        try:
            versions.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{pkg} (not installed)")
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return "\n".join(
        [
            "# scglassbox benchmark",
            "",
            f"- date: {now}",
            f"- command: `python benchmarks/run.py {' '.join(argv)}`",
            f"- machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores "
            f"({cpu}), no GPU used",
            f"- 1-min load average: {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end "
            "(the `load` column: at each run's start; above the core count means contention)",
            f"- thread settings: {thread_env()}",
            "- fit times are warm: each child imports umap-learn before timing (sc.tl.umap "
            "imports it lazily); that import's time is the `umap import (s)` column",
            f"- scglassbox source at start: {revision}",
            f"- python {platform.python_version()}; " + ", ".join(versions),
        ]
    )


def report(
    rows: list[dict[str, Any]],
    equal_rows: list[dict[str, Any]],
    argv: list[str],
    load_start: float,
    revision: str,
    took: float,
) -> str:
    """The whole report as markdown text."""
    parts = [header(argv, load_start, revision), ""]
    if rows:
        parts += ["## Default settings", "", table(rows, DEFAULT_COLUMNS), ""]
    if equal_rows:
        title = f"## Equal epochs ({equal_rows[0].get('epochs', '?')} epochs, own kNN graphs)"
        parts += [title, "", table(equal_rows, EQUAL_COLUMNS), ""]
    checks = check_speed(equal_rows) if equal_rows else []
    if rows:
        checks += check_quality(rows) + check_fit_time(rows) + check_exactness(rows)
    parts += ["## Target checks", "", "```", *checks, "```", "", f"Total wall time: {took:.0f} s"]
    return "\n".join(parts) + "\n"


def write_outputs(
    out: Path, text: str, rows: list[dict[str, Any]], equal_rows: list[dict[str, Any]]
) -> None:
    """Write the markdown report and the raw rows as CSV next to it."""
    import pandas as pd

    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    drop = ["epoch_wall", "epoch_cpu", "run_dir"]
    for suffix, data in (("", rows), ("_equal_epochs", equal_rows)):
        if data:
            df = pd.DataFrame(data).drop(columns=drop, errors="ignore")
            df.to_csv(out.with_name(out.stem + suffix + ".csv"), index=False)
    print(f"wrote {out.with_suffix('.md')}")


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--datasets", nargs="+", choices=DATASETS, help="default: all but synthetic_100k"
    )
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="only wine and pbmc68k_reduced")
    p.add_argument(
        "--equal-epochs",
        type=int,
        default=5,
        metavar="N",
        help="epochs for the scglassbox-vs-reference table (0: skip it; default 5)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="override every method's epochs in the default-settings table (smoke tests only)",
    )
    p.add_argument("--no-defaults", action="store_true", help="skip the default-settings table")
    p.add_argument("--out", type=Path, help="also write the report (.md) and tables (.csv)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="prepared-dataset cache")
    p.add_argument("--threads", type=int, help="cap BLAS/OpenMP/numba threads in the children")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per child process")
    p.add_argument(
        "--ref-max-n",
        type=int,
        default=1000,
        help="run the reference at its defaults only on datasets up to this size",
    )
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    p.add_argument("--_prepare", help=argparse.SUPPRESS)
    p.add_argument("--_metrics", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.cache = args.cache.expanduser()
    if args.datasets is None:
        args.datasets = list(QUICK_DATASETS if args.quick else DEFAULT_DATASETS)
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with a hidden flag, one child job)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args._worker:
        return worker(json.loads(args._worker))
    if args._prepare:
        spec = json.loads(args._prepare)
        return prepare_dataset(spec["dataset"], Path(spec["cache"]))
    if args._metrics:
        return metrics_worker(json.loads(args._metrics))

    start, load_start, revision = time.perf_counter(), os.getloadavg()[0], git_revision()
    if args.threads:
        for var in THREAD_VARS:
            os.environ[var] = str(args.threads)  # inherited by every child
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = args.cache / "runs" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    equal_sets = [d for d in args.datasets if d in EQUAL_EPOCH_DATASETS]
    equal_methods = [m for m in GLASS_BOX if m in args.methods]
    ensure_datasets(list(dict.fromkeys(args.datasets + equal_sets)), args.cache, workdir)

    rows = []
    if not args.no_defaults:
        rows = [
            run_one(ds, m, "defaults", args, workdir) for ds in args.datasets for m in args.methods
        ]
    equal_rows = []
    if args.equal_epochs > 0:
        equal_rows = [
            run_one(ds, m, "equal_epochs", args, workdir)
            for ds in equal_sets
            for m in equal_methods
        ]
    add_metrics(rows, args, workdir)
    add_epoch_rates(equal_rows)
    text = report(rows, equal_rows, argv, load_start, revision, time.perf_counter() - start)
    print("\n" + text)
    if args.out:
        write_outputs(args.out, text, rows, equal_rows)


if __name__ == "__main__":
    main()
