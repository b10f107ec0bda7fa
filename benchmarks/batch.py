#!/usr/bin/env python
"""Multi-batch data: are the map and its explanations about biology, not batch? (issue 23)

A simulated set with batches (``synthetic_scrna(n_batches=...)``: half the genes shifted per
batch by a log-fold drawn with sd ``--batch-effect``), preprocessed as users do (normalise,
log1p, HVGs, PCA), Harmony (``harmonypy.run_harmony``) on the PCA, neighbours on
``X_pca_harmony``. On that one graph it compares ``sc.tl.umap`` with ``gb.tl.glassbox_umap``
at defaults (which reads ``X_pca_harmony`` as a corrected PCA) and with ``use_rep='X'`` (the
uncorrected expression, as before ``use_rep``), and prints one table::

    python benchmarks/batch.py                                   # 20k cells, 4 batches
    python benchmarks/batch.py --n-obs 3000 --batch-effect 1.2 --seed 1

Columns: fit time; batch mixing (normalised entropy of the batches among each cell's 30
nearest cells in the map, 1 = fully mixed); cell-type 15-NN accuracy in the map; the mean
importance (``gene_importance_df``'s total) of batch-only genes (batch-affected, no marker)
over that of the other non-marker genes, among the modelled genes (``ratio_all_genes``: over
all genes of ``var``, the unmodelled ones counting 0, which also reflects the HVG choice);
the share of batch-only genes among each type's top 20 (``rank_contributions``), next to that
of the other non-marker genes (about equal when batch plays no part in the rankings: half the
genes are batch-affected); the exactness
of the contributions. The same figures for ``sc.tl.umap`` on the uncorrected graph
(neighbours on ``X_pca``) show what Harmony removed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def prepare(n_obs: int, batch_effect: float, n_batches: int, seed: int, harmony: bool = True):
    import scanpy as sc

    from scglassbox.datasets import synthetic_scrna

    adata = synthetic_scrna(n_obs, 2000, n_batches=n_batches, batch_effect=batch_effect, seed=seed)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=1000)
    sc.pp.pca(adata, n_comps=50)
    if not harmony:
        return adata
    import harmonypy

    # scanpy 1.11's harmony_integrate stores harmonypy 2.1's output transposed: call it directly.
    out = harmonypy.run_harmony(adata.obsm["X_pca"], adata.obs, "batch", random_state=seed,
                                verbose=False)  # fmt: skip
    Z = np.asarray(out.Z_corr)
    adata.obsm["X_pca_harmony"] = Z if Z.shape[0] == adata.n_obs else Z.T
    return adata


def _neighbours(emb: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k + 1).fit(emb).kneighbors(emb)[1][:, 1:]


def batch_mixing(emb: np.ndarray, batch: np.ndarray, k: int = 30) -> float:
    """Mean normalised entropy of the batches among each cell's ``k`` nearest cells."""
    codes, n = np.unique(batch, return_inverse=True)[1], len(np.unique(batch))
    nb = codes[_neighbours(emb, k)]
    p = np.stack([(nb == b).mean(1) for b in range(n)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(1)
    return float(h.mean() / np.log(n))


def type_accuracy(emb: np.ndarray, labels: np.ndarray, k: int = 15) -> float:
    """Leave-one-out majority vote of each cell's ``k`` nearest cells in the map."""
    codes = np.unique(labels, return_inverse=True)[1]
    votes = codes[_neighbours(emb, k)]
    pred = np.array([np.bincount(v).argmax() for v in votes])
    return float((pred == codes).mean())


def explanation_metrics(adata, key: str = "glassbox_umap") -> dict[str, float]:
    import scglassbox as gb

    imp = gb.get.gene_importance_df(adata, key=key)["total"]
    batch_features = imp.index[~imp.index.isin(adata.var_names)]  # batch_key's, if any
    imp = imp[imp.index.isin(adata.var_names)]
    var = adata.var.loc[imp.index]
    marker = var["marker_of"].astype(str).ne("none") & var["marker_of"].notna()
    batch_only = var["batch_affected"].astype(bool) & ~marker
    other = ~var["batch_affected"].astype(bool) & ~marker
    gb.tl.rank_contributions(adata, "cell_type", key=key)
    top = gb.get.rank_contributions_df(adata, "cell_type", key=key, n_genes=20)
    genes = top["gene"].astype(str)
    # The same over all genes of var, unmodelled ones (not highly variable) counting as 0: it
    # also measures which genes the HVG selection kept, whatever the explanation.
    every = np.asarray(adata.varm[f"{key}_contributions"]).sum(1)
    mk = adata.var["marker_of"].astype(str).ne("none").to_numpy()
    ba = adata.var["batch_affected"].to_numpy(bool)
    extra = {}
    if len(batch_features):
        extra = {
            "top20_batch_term": float(np.isin(genes, batch_features).mean()),
            "batch_share_median": float(np.median(adata.obs[f"{key}_batch_share"])),
        }
    return {
        **extra,
        "batch_only_ratio": float(imp[batch_only].mean() / imp[other].mean()),
        "ratio_all_genes": float(every[ba & ~mk].mean() / every[~ba & ~mk].mean()),
        "top20_batch_only": float(np.isin(genes, imp.index[batch_only]).mean()),
        "top20_other": float(np.isin(genes, imp.index[other]).mean()),
        "exactness": float(adata.uns[key]["exactness"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n-obs", type=int, default=20000)
    p.add_argument("--n-batches", type=int, default=4)
    p.add_argument("--batch-effect", type=float, default=0.6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--integration",
        choices=["harmony", "bbknn"],
        default="harmony",
        help="harmony: neighbours on X_pca_harmony; bbknn: bbknn's graph on X_pca, "
        "compared with and without batch_key",
    )
    p.add_argument("--json", type=Path, help="append the rows to this .jsonl file")
    args = p.parse_args()

    import scanpy as sc

    import scglassbox as gb

    sc.settings.verbosity = 0
    t0 = time.perf_counter()
    harmony = args.integration == "harmony"
    adata = prepare(args.n_obs, args.batch_effect, args.n_batches, args.seed, harmony)
    print(f"prepared {adata.n_obs} cells in {time.perf_counter() - t0:.0f} s")
    batch, types = adata.obs["batch"].to_numpy(), adata.obs["cell_type"].to_numpy()
    rows = []

    def record(method: str, emb: np.ndarray, wall: float, extra: dict | None = None) -> None:
        row = {"method": method, "fit_s": wall, "batch_mixing": batch_mixing(emb, batch),
               "type_acc": type_accuracy(emb, types), **(extra or {})}  # fmt: skip
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))

    raw = adata.copy()
    sc.pp.neighbors(raw, use_rep="X_pca", random_state=args.seed)
    sc.tl.umap(raw, random_state=args.seed)
    record("sc.tl.umap, uncorrected graph", raw.obsm["X_umap"], float("nan"))
    del raw

    if harmony:
        sc.pp.neighbors(adata, use_rep="X_pca_harmony", random_state=args.seed)
        variants = [("glassbox default", {}), ("glassbox use_rep='X'", {"use_rep": "X"})]
    else:
        import bbknn

        bbknn.bbknn(adata, batch_key="batch", use_rep="X_pca")
        variants = [
            ("glassbox default", {}),
            ("glassbox batch_key='batch'", {"batch_key": "batch"}),
        ]
    t = time.perf_counter()
    sc.tl.umap(adata, random_state=args.seed)
    record("sc.tl.umap", adata.obsm["X_umap"], time.perf_counter() - t)
    for method, kwargs in variants:
        a = adata.copy()
        t = time.perf_counter()
        gb.tl.glassbox_umap(a, random_state=args.seed, quiet=True, **kwargs)
        wall = time.perf_counter() - t
        record(method, a.obsm["X_glassbox_umap"], wall, explanation_metrics(a))

    cols = ["fit_s", "batch_mixing", "type_acc", "batch_only_ratio", "ratio_all_genes",
            "top20_batch_only", "top20_other", "exactness"]  # fmt: skip
    if not harmony:
        cols += ["top20_batch_term", "batch_share_median"]
    print(f"\n{args.n_obs} cells, {args.n_batches} batches, batch effect sd {args.batch_effect}, "
          f"seed {args.seed}; graph: {args.integration} unless said")  # fmt: skip
    print("| method | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{r[c]:.3g}" if isinstance(r.get(c), float) else "" for c in cols]
        print(f"| {r['method']} | " + " | ".join(cells) + " |")
    if args.json:
        with args.json.open("a") as f:
            for r in rows:
                f.write(json.dumps({**vars(args), "json": None, **r}) + "\n")


if __name__ == "__main__":
    main()
