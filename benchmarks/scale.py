"""Atlas-scale benchmark: time and peak memory of each stage of the default workflow.

Each stage runs in a fresh process on the same prepared ``.h5ad`` (synthetic counts, 2,000
genes, all highly variable, 50 PCs, scanpy's neighbour graph), next to ``sc.tl.umap`` on the
same graph::

    python benchmarks/scale.py --sizes 100000 300000 1000000
    python benchmarks/scale.py --sizes 100000 1000000 --accelerator gpu   # one GPU

Stages: ``sc.tl.umap``; ``fit`` (``gb.tl.glassbox_umap`` at defaults); ``write`` (that result
written with ``write_h5ad``); ``contributions`` (every cell's contributions from the stored
model, streamed to a raw ``.npy`` file on disk, or only computed with ``--no-disk``);
``rank`` (``gb.tl.rank_contributions``); ``explore`` (``gb.pl.explore`` + ``save_html``).
"peak above data" is the stage's peak RSS minus its RSS right after reading the file.
``knn`` (for ``sc.tl.umap`` and ``fit``, computed after the timing and the peak) is the share
of each cell's neighbours in the stored graph found among its nearest in the embedding.

Data: cells are simulated block by block (``synthetic_blocks``), so generating 1M cells never
holds a dense cells x genes matrix. From 300,000 cells the kNN graph is built with
pynndescent at reduced effort (``n_trees=8, n_iters=4``) through scanpy's ``transformer=``
path, which fits 2 cores in minutes (the exact graph would take hours) and also avoids the
scanpy 1.11 / pynndescent 0.7 ``getnnz`` failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("sc.tl.umap", "fit", "contributions", "rank", "explore")


def synthetic_blocks(n_obs: int, n_vars: int = 2000, *, block: int = 50_000, seed: int = 0):
    """Counts like :func:`scglassbox.datasets.synthetic_scrna`, simulated ``block`` cells at a
    time (same cell-type profiles for all blocks), as one CSR AnnData."""
    import anndata as ad
    import numpy as np
    import pandas as pd
    from scipy import sparse

    rng = np.random.default_rng(seed)
    n_types, n_latent = 12, 3
    base = rng.gamma(0.6, 2.0, size=n_vars)
    profiles = base * rng.lognormal(0.0, 0.25, size=(n_types, n_vars))
    genes = rng.permutation(n_vars)
    for t in range(n_types):
        idx = genes[t * 20 : (t + 1) * 20]
        profiles[t, idx] = np.maximum(base[idx], 0.5) * 6.0
    programme = rng.normal(0.0, 1.5, size=(n_types, n_latent, n_vars))
    programme *= rng.random((n_types, n_latent, n_vars)) < 0.15
    labels = rng.integers(0, n_types, size=n_obs)
    parts = []
    for start in range(0, n_obs, block):
        lab = labels[start : start + block]
        pos = rng.uniform(-1.0, 1.0, size=(len(lab), n_latent))
        log_mu = np.log(profiles[lab]) + np.einsum("nl,nlg->ng", pos, programme[lab])
        mu = np.exp(log_mu) * rng.lognormal(0.0, 0.35, size=(len(lab), 1))
        counts = rng.poisson(rng.gamma(5.0, mu / 5.0)).astype(np.float32)
        parts.append(sparse.csr_matrix(counts))
    types = [f"type_{i}" for i in range(n_types)]
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical.from_codes(labels, categories=types)},
        index=[f"cell_{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(index=[f"gene_{i}" for i in range(n_vars)])
    return ad.AnnData(sparse.vstack(parts, format="csr"), obs=obs, var=var)


def prepare(n: int, path: Path) -> dict:
    """Simulate, normalise, PCA and neighbours as a scanpy user would; write ``path``."""
    import numpy as np
    import scanpy as sc

    t0 = time.perf_counter()
    adata = synthetic_blocks(n)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.var["highly_variable"] = np.ones(adata.n_vars, dtype=bool)  # all 2,000 genes
    sc.pp.pca(adata, n_comps=50, mask_var="highly_variable")
    t1 = time.perf_counter()
    if n >= 300_000:
        from pynndescent import PyNNDescentTransformer

        transformer = PyNNDescentTransformer(
            n_neighbors=15, n_trees=8, n_iters=4, random_state=0, low_memory=True
        )
        sc.pp.neighbors(adata, n_neighbors=15, transformer=transformer)
    else:
        sc.pp.neighbors(adata, n_neighbors=15, random_state=0)
    t2 = time.perf_counter()
    adata.write_h5ad(path)
    return {"preprocess_s": t1 - t0, "neighbors_s": t2 - t1, "file_mb": _mb(path)}


def _mb(path: Path) -> float:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    return path.stat().st_size / 2**20


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stage(name: str, n: int, workdir: Path, accelerator: str, disk: bool) -> dict:
    """Run one stage in this (fresh) process and return its figures."""
    import anndata as ad
    import numpy as np

    import scglassbox as gb

    data, fitted = workdir / f"data_{n}.h5ad", workdir / f"fit_{n}.h5ad"
    adata = ad.read_h5ad(fitted if name in ("contributions", "rank", "explore") else data)
    loaded = _rss_mb("VmRSS")
    out: dict = {}
    t0 = time.perf_counter()
    if name == "sc.tl.umap":
        import scanpy as sc

        sc.tl.umap(adata, random_state=0)
    elif name == "fit":
        gb.tl.glassbox_umap(adata, accelerator=accelerator, quiet=True)
        out["storage"] = str(adata.uns["glassbox_umap"]["params"]["contributions"])
        out["exactness"] = float(adata.uns["glassbox_umap"]["exactness"])
        fit_s = time.perf_counter() - t0
        adata.write_h5ad(fitted)
        out |= {"write_s": time.perf_counter() - t0 - fit_s, "file_mb": _mb(fitted)}
        out["data_file_mb"] = _mb(data)
        t0 = time.perf_counter() - fit_s  # report the fit alone as the stage's time
    elif name == "contributions":
        key = "glassbox_umap"
        n_genes = len(adata.uns[key]["var_names"])
        device = "cuda" if accelerator == "gpu" else None
        path = workdir / f"contributions_{n}.npy"
        worst = 0.0
        emb = adata.obsm[f"X_{key}"]
        with open(path, "wb") if disk else open(os.devnull, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (n, 2, n_genes)}
            )
            for pos, block in gb.get.iter_contributions(adata, key, device=device):
                worst = max(worst, float(np.abs(block.sum(-1) - emb[pos]).max()))
                f.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        out["exactness"] = worst / float(np.abs(emb).max())
        if disk:
            out["file_mb"] = _mb(path)
            path.unlink()
    elif name == "rank":
        gb.tl.rank_contributions(adata, "cell_type")
    elif name == "explore":
        layout = gb.pl.explore(adata, groupby="cell_type", show=False)
        html = workdir / f"explore_{n}.html"
        gb.pl.save_html(layout, html)
        out["file_mb"] = _mb(html)
    out |= {
        "time_s": time.perf_counter() - t0,
        "peak_rss_mb": _rss_mb("VmHWM"),
        "loaded_rss_mb": loaded,
    }
    # After the peak is read: the check's own memory is not the stage's.
    if name in ("sc.tl.umap", "fit"):
        emb_key = "X_umap" if name == "sc.tl.umap" else "X_glassbox_umap"
        out["knn"] = knn_preservation(adata.obsm[emb_key], adata.obsp["distances"])
    return out


def knn_preservation(emb, distances) -> float:
    """``run.py``'s kNN preservation, with the stored graph (``obsp['distances']``, scanpy's kNN
    without the cell itself) standing in for an exact kNN in the PCA space, which would take
    hours at a million cells."""
    import numpy as np
    import run  # benchmarks/run.py, next to this script (sys.path[0])

    graph = distances.tocsr()
    counts = np.diff(graph.indptr)
    if counts.min() != counts.max():
        raise ValueError("the stored graph's rows differ in length: no single k to compare")
    k = int(counts[0])
    return run.knn_preservation(graph.indices.reshape(-1, k), emb, k)


def _child(args: list[str]) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    for line in reversed(res.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (res.stderr or res.stdout).strip().splitlines()[-1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/.scale"))
    parser.add_argument("--accelerator", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--no-disk", action="store_true", help="do not write contributions")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.prepare:
        n = args.sizes[0]
        print("RESULT " + json.dumps(prepare(n, args.workdir / f"data_{n}.h5ad")), flush=True)
        return
    if args.stage:
        res = stage(args.stage, args.sizes[0], args.workdir, args.accelerator, not args.no_disk)
        print("RESULT " + json.dumps(res), flush=True)
        return
    common = ["--workdir", str(args.workdir), "--accelerator", args.accelerator]
    common += ["--no-disk"] if args.no_disk else []
    rows = []
    for n in args.sizes:
        if not (args.workdir / f"data_{n}.h5ad").exists():
            prep = _child(["--prepare", "--sizes", str(n), *common])
            print(f"prepared {n:,} cells: {prep}", flush=True)
        for name in args.stages:
            res = _child(["--stage", name, "--sizes", str(n), *common])
            rows.append({"n": n, "stage": name, **res})
            print(json.dumps(rows[-1]), flush=True)
    _table(rows)


def _table(rows: list[dict]) -> None:
    umap = {r["n"]: r.get("time_s") for r in rows if r["stage"] == "sc.tl.umap"}
    fit = {r["n"]: r.get("time_s") for r in rows if r["stage"] == "fit"}
    print("\n| cells | stage | time (s) | vs sc.tl.umap | vs fit | peak RSS (MB) "
          "| peak above data (MB) | notes |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['n']:,} | {r['stage']} | failed | | | | | {r['error']} |")
            continue
        t, n = r["time_s"], r["n"]
        ratio = f"{t / umap[n]:.2f}x" if umap.get(n) and r["stage"] != "sc.tl.umap" else ""
        vs_fit = f"{t / fit[n]:.2f}x" if fit.get(n) and r["stage"] == "contributions" else ""
        notes = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in r.items()
            if k not in ("n", "stage", "time_s", "peak_rss_mb", "loaded_rss_mb")
        )
        above = r["peak_rss_mb"] - r["loaded_rss_mb"]
        print(f"| {n:,} | {r['stage']} | {t:.1f} | {ratio} | {vs_fit} "
              f"| {r['peak_rss_mb']:.0f} | {above:.0f} | {notes} |")  # fmt: skip


if __name__ == "__main__":
    main()
