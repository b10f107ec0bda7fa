#!/usr/bin/env python
"""Images: the convolutional glass box against umap-learn and the MLP glass box on pixels.

Two sets (``--dataset``): scikit-learn's digits (1,797 images of 8x8 pixels, 10 classes), and
real microscopy crops, ``ihc_nuclei``: the nuclei of scikit-image's bundled
immunohistochemistry image (``skimage.data.immunohistochemistry``, no download), found by an
Otsu threshold of the haematoxylin channel, cut as 16x16 RGB crops ``(n, 3, 16, 16)``,
labelled DAB-positive or negative by an Otsu threshold of their mean DAB stain (needs
scikit-image). Each method with its defaults:

- ``conv``: ``GlassBoxUMAP(encoder="conv")`` on the images ``(n, 8, 8)``;
- ``conv norm``: the same with ``encoder_kwargs={"norm": True}`` (scale-normalised head);
- ``mlp (default)``: ``GlassBoxUMAP()`` (``"mlp_norm"``) on the flattened pixels ``(n, 64)``;
- ``umap-learn``: ``umap.UMAP()`` on the flattened pixels.

Printed per method, mean ± sd over the seeds: fit time (kNN graph included), time per epoch,
15-NN label accuracy of the map (5-fold cross-validated kNN classifier on the 2-D embedding),
kNN preservation (share of each image's 15 nearest neighbours in pixel space kept among its 15
in 2-D; ``benchmarks/run.py``'s helper) and, for the glass boxes, exactness (max |sum of the
per-pixel contributions - embedding| / max |embedding|, float32)::

    python benchmarks/images.py                 # seeds 0 1 2
    python benchmarks/images.py --seeds 0 --epochs 50
    python benchmarks/images.py --dataset ihc_nuclei

Everything runs in one process after a warm-up fit of each method, so numba's compilation is
not timed. Not a test: it prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/run.py: the metrics)

METHODS = ("conv", "conv norm", "mlp (default)", "umap-learn")


def load(dataset: str = "digits") -> tuple[Any, Any]:
    """Float32 images ``(n, 8, 8)`` (digits) or ``(n, 3, 16, 16)`` (nuclei) and labels."""
    import numpy as np

    if dataset == "ihc_nuclei":
        return ihc_nuclei()
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32), digits.target


def ihc_nuclei(half: int = 8) -> tuple[Any, Any]:
    """Nuclei of scikit-image's immunohistochemistry image as RGB crops, DAB+ (1) or not (0)."""
    import numpy as np
    from skimage import color, data, filters, measure, morphology

    ihc = data.immunohistochemistry()  # (512, 512, 3) uint8, bundled
    hed = color.rgb2hed(ihc)
    nuclei = hed[..., 0] > filters.threshold_otsu(hed[..., 0])
    nuclei = morphology.remove_small_objects(nuclei, max_size=30)
    crops, dab = [], []
    for region in measure.regionprops(measure.label(nuclei), intensity_image=hed[..., 2]):
        y, x = (round(c) for c in region.centroid)
        if half <= y < ihc.shape[0] - half and half <= x < ihc.shape[1] - half:
            crops.append(ihc[y - half : y + half, x - half : x + half])
            dab.append(region.intensity_mean)
    images = np.moveaxis(np.asarray(crops, dtype=np.float32) / 255.0, -1, 1)
    dab = np.asarray(dab)
    return images, (dab > filters.threshold_otsu(dab)).astype(int)


def fit(method: str, images: Any, seed: int, epochs: int | None) -> dict[str, Any]:
    """Fit ``method``; return its embedding, fit time, epochs and exactness (glass boxes)."""
    flat = images.reshape(len(images), -1)
    if method == "umap-learn":
        import umap

        model = umap.UMAP(random_state=seed, n_epochs=epochs)
        start = time.perf_counter()
        emb = model.fit_transform(flat)
        wall = time.perf_counter() - start
        n_epochs = epochs or (500 if len(flat) <= 10_000 else 200)  # umap-learn's rule
        return {"embedding": emb, "fit_s": wall, "epochs": n_epochs, "exactness": None}

    import scglassbox as gb
    from scglassbox._contributions import exactness

    kwargs: dict[str, Any] = {"random_state": seed, "epochs": epochs, "quiet": True}
    if method.startswith("conv"):
        kwargs["encoder"] = "conv"
        X = images
        if method == "conv norm":
            kwargs["encoder_kwargs"] = {"norm": True}
    else:
        X = flat
    est = gb.GlassBoxUMAP(**kwargs)
    start = time.perf_counter()
    est.fit(X)
    wall = time.perf_counter() - start
    contrib, emb = est.compute_contributions(X, return_embedding=True)
    return {
        "embedding": est.embedding_,
        "fit_s": wall,
        "epochs": est.epochs_,
        "exactness": exactness(emb, contrib),
    }


def _stat(values: list[float], fmt: str) -> str:
    import numpy as np

    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(float(np.mean(values)), fmt)} ± {format(float(np.std(values)), fmt)}"


def main(argv: list[str] | None = None) -> None:
    """Run every method on every seed and print the table."""
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs of every method (default: each its own)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--dataset", default="digits", choices=("digits", "ihc_nuclei"))
    args = parser.parse_args(argv)

    images, labels = load(args.dataset)
    shape = "(n, " + ", ".join(map(str, images.shape[1:])) + ")"
    input_knn = run._knn(images.reshape(len(images), -1), run.K)
    for method in args.methods:  # warm-up: numba compiles the graph code once
        fit(method, images[:200], 0, 2)
    rows = []
    for method in args.methods:
        results = [fit(method, images, seed, args.epochs) for seed in args.seeds]
        embs = [r["embedding"] for r in results]
        exact = [r["exactness"] for r in results if r["exactness"] is not None]
        rows.append(
            {
                "method": method,
                "input": shape if method.startswith("conv") else f"(n, {images[0].size})",
                "epochs": str(results[0]["epochs"]),
                "fit s": _stat([r["fit_s"] for r in results], ".2f"),
                "ms / epoch": _stat([1e3 * r["fit_s"] / r["epochs"] for r in results], ".1f"),
                "15-NN accuracy": _stat(
                    [
                        run.label_accuracy(e, labels, s)
                        for e, s in zip(embs, args.seeds, strict=True)
                    ],
                    ".3f",
                ),
                "kNN preservation": _stat(
                    [run.knn_preservation(input_knn, e) for e in embs], ".3f"
                ),
                "exactness": f"{max(exact):.1e}" if exact else "n/a",
            }
        )
    import torch

    print(
        f"{args.dataset}: {images.shape[0]} images {images.shape[1:]}, seeds {args.seeds}, "
        f"torch threads {torch.get_num_threads()}, numpy {np.__version__}\n"
    )
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row[h] for h in header) + " |")


if __name__ == "__main__":
    main()
