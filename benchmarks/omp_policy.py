"""Training speed after ``sc.pp.neighbors`` in the same process, by OpenMP wait policy.

Run both and compare (about 1 minute each on 2 CPU cores)::

    OMP_WAIT_POLICY=ACTIVE python benchmarks/omp_policy.py
    python benchmarks/omp_policy.py   # scglassbox's default: PASSIVE

With ACTIVE, the idle OpenMP workers that numba starts for the neighbour search and torch's
own workers spin and starve each other on few cores.
"""

from __future__ import annotations

import os
import time
import warnings

import scanpy as sc

import scglassbox as gb


def fit_seconds(adata, epochs: int = 100) -> float:
    """Wall time of one fit on the stored PCA and graph."""
    t = time.perf_counter()
    gb.GlassBoxUMAP(random_state=0, quiet=True, epochs=epochs).fit(
        adata.obsm["X_pca"], graph=adata.obsp["connectivities"]
    )
    return time.perf_counter() - t


def main() -> None:
    warnings.filterwarnings("ignore")
    adata = sc.datasets.pbmc68k_reduced()
    fit_seconds(adata, epochs=2)  # warm-up: imports, Lightning set-up
    before = fit_seconds(adata)
    sc.pp.neighbors(adata)  # starts numba's OpenMP workers
    after = fit_seconds(adata)
    policy = os.environ.get("OMP_WAIT_POLICY")
    print(f"OMP_WAIT_POLICY={policy}: 100 epochs {before:.2f} s before, {after:.2f} s after")


if __name__ == "__main__":
    main()
