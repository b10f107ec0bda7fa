"""Evidence for the scanpy plugin: exactness after round trips, mapping, markers, stability.

Run: ``python benchmarks/plugin_evidence.py`` (about 5 minutes on 2 CPU cores). Prints one
figure per line with what it measures.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.neighbors import KNeighborsClassifier

import scglassbox as gb
from scglassbox._contributions import exactness
from scglassbox.datasets import synthetic_scrna

KEY = "glassbox_umap"


def processed_synthetic(n_obs: int, seed: int) -> ad.AnnData:
    adata = synthetic_scrna(n_obs, 2000, n_types=8, n_markers=20, seed=seed)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=1000)
    sc.pp.pca(adata, n_comps=50)
    sc.pp.neighbors(adata)
    return adata


def round_trips(adata: ad.AnnData, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("h5ad", "zarr"):
            path = Path(tmp) / f"a.{fmt}"
            getattr(adata, f"write_{fmt}")(path)
            back = getattr(ad, f"read_{fmt}")(path)
            stored = exactness(back.obsm[f"X_{KEY}"], back.obsm[f"{KEY}_contributions"])
            est = gb.GlassBoxUMAP.from_adata(back)
            X = back[:, list(back.uns[KEY]["var_names"])].X
            same = np.array_equal(est.transform(X), adata.obsm[f"X_{KEY}"])
            C, emb = est.compute_contributions(X, return_embedding=True)
            print(
                f"{name}: after {fmt} round trip: stored exactness {stored:.1e}, recomputed "
                f"{exactness(emb, C):.1e}, transform bitwise identical: {same}"
            )


def label_transfer(adata: ad.AnnData, label: str, name: str) -> None:
    rng = np.random.default_rng(0)
    is_ref = rng.random(adata.n_obs) < 0.8
    ref, query = adata[is_ref].copy(), adata[~is_ref].copy()
    sc.pp.neighbors(ref)  # graph of the reference cells only; its PCA stays the full one
    gb.tl.glassbox_umap(ref, random_state=0, quiet=True)
    gb.tl.glassbox_transform(query, ref)
    knn = KNeighborsClassifier(15).fit(ref.obsm[f"X_{KEY}"], ref.obs[label].astype(str))
    acc = (knn.predict(query.obsm[f"X_{KEY}"]) == query.obs[label].astype(str)).mean()
    ex = exactness(query.obsm[f"X_{KEY}"], query.obsm[f"{KEY}_contributions"])
    print(
        f"{name}: fit on 80% ({ref.n_obs} cells), mapped 20% ({query.n_obs}): 15-NN label "
        f"transfer accuracy {acc:.3f}; query exactness {ex:.1e}"
    )


def planted_precision(adata: ad.AnnData, n: int = 20) -> None:
    gb.tl.rank_contributions(adata, "cell_type")
    planted = adata.uns["planted_markers"]
    prec = []
    for t, genes in planted.items():
        top = gb.get.rank_contributions_df(adata, "cell_type", group=t, n_genes=n)["gene"]
        prec.append(np.isin(top, genes).mean())
    used = set(adata.uns[KEY]["var_names"])
    in_hvg = np.mean([np.isin(g, list(used)).mean() for g in planted.values()])
    print(
        f"synthetic: precision@{n} of top contributors vs planted markers: mean "
        f"{np.mean(prec):.3f}, per type {np.round(prec, 2).tolist()} "
        f"(share of planted markers among the genes used: {in_hvg:.2f})"
    )


def wilcoxon_overlap(adata: ad.AnnData, n: int = 20) -> None:
    sc.tl.rank_genes_groups(adata, "bulk_labels", method="wilcoxon")
    gb.tl.rank_contributions(adata, "bulk_labels", n_genes=n)
    ov = adata.uns[f"{KEY}_rank_bulk_labels"]["marker_overlap"]
    print(f"pbmc: overlap of top-{n} contributors with top-{n} Wilcoxon markers per type:")
    for group, row in ov.iterrows():
        print(f"    {group:32s} {row['overlap']:2d}/{n}  shared: {row['shared']}")
    print(f"    mean overlap fraction {ov['fraction'].mean():.3f}")


def stability(adata: ad.AnnData, name: str, groupby: str, seeds=(0, 1, 2, 3)) -> None:
    gb.tl.glassbox_ensemble(adata, groupby, seeds=seeds, quiet=True)
    stab = adata.uns[f"glassbox_ensemble_{groupby}"]["stability"]["spearman"]
    print(
        f"{name}: seed stability over {len(seeds)} fits (mean pairwise Spearman of per-group "
        f"gene importances): mean {stab.mean():.3f}, min {stab.min():.3f}"
    )


def main() -> None:
    warnings.filterwarnings("ignore")
    for noisy in ("lightning", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    t0 = time.perf_counter()
    pbmc = sc.datasets.pbmc68k_reduced()
    gb.tl.glassbox_umap(pbmc, random_state=0, quiet=True)
    print(f"pbmc: input to the encoder: {pbmc.uns[KEY]['input']}")
    print(f"pbmc: exactness {pbmc.uns[KEY]['exactness']:.1e}")
    sc.pl.embedding(pbmc, basis=KEY, color="bulk_labels", show=False)
    print("pbmc: sc.pl.embedding(adata, basis='glassbox_umap') works")
    round_trips(pbmc, "pbmc")
    wilcoxon_overlap(pbmc)
    label_transfer(sc.datasets.pbmc68k_reduced(), "bulk_labels", "pbmc")
    stability(pbmc, "pbmc", "bulk_labels")

    syn = processed_synthetic(5000, seed=0)
    gb.tl.glassbox_umap(syn, random_state=0, quiet=True)
    print(f"synthetic: input to the encoder: {syn.uns[KEY]['input']}")
    print(f"synthetic: exactness {syn.uns[KEY]['exactness']:.1e}")
    round_trips(syn, "synthetic")
    planted_precision(syn)
    label_transfer(processed_synthetic(5000, seed=0), "cell_type", "synthetic")
    stability(syn, "synthetic", "cell_type")
    print(f"total time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
