#!/usr/bin/env python
"""Seams of a routed map: edges across experts, and cell types torn into pieces.

Fits ``encoder="mlp_norm"`` and ``encoder="mlp_routed"`` (blended near boundaries, as by
default, and with hard routes, ``blend=0``) on a prepared set of ``benchmarks/run.py`` (and
``sc.tl.umap`` as a reference), then prints, for the routed
experts' boundaries: the share of graph edges that cross them, those edges' 2-D lengths
against the others', kNN preservation of boundary cells, trustworthiness, and how many
pieces (of at least 1% of its cells) each labelled type forms in the 2-D 15-NN graph::

    python benchmarks/seams.py --dataset synthetic_20k --seed 0
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run


def pieces(emb: np.ndarray, labels: np.ndarray, k: int = 15) -> list[int]:
    """Per label: connected pieces (>= 1% of its cells) of the 2-D kNN graph on its cells."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    knn = run._knn(emb, k)
    out = []
    for lab in np.unique(labels):
        idx = np.flatnonzero(labels == lab)
        pos = np.full(len(emb), -1)
        pos[idx] = np.arange(len(idx))
        rows, cols = np.repeat(np.arange(len(idx)), k), pos[knn[idx]].ravel()
        ok = cols >= 0
        graph = sparse.coo_matrix((np.ones(ok.sum()), (rows[ok], cols[ok])), (len(idx),) * 2)
        _, comp = connected_components(graph, directed=False)
        out.append(int((np.bincount(comp) >= 0.01 * len(idx)).sum()))
    return out


def main() -> None:
    import torch
    from sklearn.manifold import trustworthiness

    import scglassbox as gb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic_20k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=run.DEFAULT_CACHE)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    data = run.load_dataset(args.dataset, args.cache.expanduser())
    X = np.ascontiguousarray(data["X"], dtype=np.float32)
    graph, labels = data.get("connectivities"), data["labels"]
    embs, route = {}, None
    fits = {
        "mlp_norm": {"encoder": "mlp_norm"},
        "routed": {"encoder": "mlp_routed"},
        "hard": {"encoder": "mlp_routed", "encoder_kwargs": {"blend": 0.0}},
    }
    for name, kwargs in fits.items():
        model = gb.GlassBoxUMAP(**kwargs, random_state=args.seed, quiet=True)
        embs[name] = model.fit_transform(X, graph=graph)
        if name == "routed":  # both routed fits place the same centroids (same seed)
            route = model.encoder_.route(torch.from_numpy(X - model.mean_)).numpy()
    embs["sc.tl.umap"] = run.run_sc_umap(data, args.seed, None)["embedding"]
    coo = graph if graph is not None else run._sc_adata(data, args.seed).obsp["connectivities"]
    coo = coo.tocoo()
    cross = route[coo.row] != route[coo.col]
    boundary = np.zeros(len(X), bool)
    boundary[coo.row[cross]] = True
    d_in = np.linalg.norm(X[coo.row] - X[coo.col], axis=1)
    print(
        f"{args.dataset}, seed {args.seed}: {cross.mean():.3f} of edges cross experts; "
        f"input-space median length {np.median(d_in[cross]):.2f} across, "
        f"{np.median(d_in[~cross]):.2f} within; {boundary.mean():.2f} of cells at a boundary"
    )
    knn_in = run._knn(X, run.K)
    sub = np.random.default_rng(0).choice(len(X), min(len(X), 3000), replace=False)
    for name, emb in embs.items():
        d = np.linalg.norm(emb[coo.row] - emb[coo.col], axis=1)
        d /= np.median(d)
        kept = (knn_in[:, :, None] == run._knn(emb, run.K)[:, None, :]).any(2).mean(1)
        trust = trustworthiness(X[sub], emb[sub], n_neighbors=run.K)
        print(
            f"{name:>10}: edge length / median across {np.median(d[cross]):.2f} "
            f"(90th pct {np.percentile(d[cross], 90):.2f}), within {np.median(d[~cross]):.2f}; "
            f"kNN boundary {kept[boundary].mean():.3f} others {kept[~boundary].mean():.3f}; "
            f"trust {trust:.3f}; pieces per type {pieces(emb, labels)}"
        )


if __name__ == "__main__":
    main()
