"""Fixed-seed fits to check that a refactor leaves results bitwise identical.

    git worktree add /tmp/before <old commit>
    PYTHONPATH=/tmp/before/src python benchmarks/fingerprint.py /tmp/before.npz
    python benchmarks/fingerprint.py /tmp/after.npz --compare /tmp/before.npz

Fits: ``gb.tl.glassbox_umap`` on pbmc68k_reduced (embedding and stored contributions), the
estimator on wine (float32) and on digits in bfloat16.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def fingerprint() -> dict[str, np.ndarray]:
    import scanpy as sc
    from sklearn.datasets import load_digits, load_wine
    from sklearn.preprocessing import StandardScaler

    import scglassbox as gb

    warnings.filterwarnings("ignore")
    adata = sc.datasets.pbmc68k_reduced()
    gb.tl.glassbox_umap(adata, epochs=20, random_state=0, quiet=True, contributions="full")
    wine = StandardScaler().fit_transform(load_wine().data).astype(np.float32)
    digits = load_digits().data.astype(np.float32)
    return {
        "pbmc": adata.obsm["X_glassbox_umap"],
        "pbmc_contributions": np.asarray(adata.obsm["glassbox_umap_contributions"]),
        "wine": gb.GlassBoxUMAP(random_state=0, epochs=30, quiet=True).fit_transform(wine),
        "digits_bf16": gb.GlassBoxUMAP(
            random_state=0, epochs=3, quiet=True, precision="bf16"
        ).fit_transform(digits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help=".npz file to write")
    parser.add_argument("--compare", help="a fingerprint written before the change")
    args = parser.parse_args()
    arrays = fingerprint()
    np.savez(args.out, **arrays)
    if args.compare:
        ref = np.load(args.compare)
        for k, v in arrays.items():
            same = k in ref and np.array_equal(ref[k], v)
            print(f"{k}: {'bitwise identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
