"""Fixtures for the plotting tests.

Two data sets:

- ``pbmc_gb``: ``pbmc68k_reduced`` fitted with ``gb.tl.glassbox_umap`` (20 epochs), shared
  with the rest of the suite; what is drawn is checked against numbers computed here.
- ``linear_gb``: ``pbmc68k_reduced`` with an exact *linear* glass box (ridge regression of
  scanpy's UMAP on the centred HVGs, contributions ``x_g * w_g``), written in exactly the
  layout of ``gb.tl.glassbox_umap``. It needs no training, so it is identical on every
  machine and does not move when the training code changes: the baseline images are made
  from it.

Set ``SCGLASSBOX_UPDATE_BASELINES=1`` to (re)write the baseline images in
``tests/pl/baseline/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from scglassbox.tl._results import write_results

BASELINE_DIR = Path(__file__).parent / "baseline"
#: RMS difference (0-255 scale) accepted by the image comparisons: text rendering and
#: anti-aliasing vary a little between machines; a changed plot differs by far more.
IMAGE_TOL = 8.0
IMAGE_DPI = 60


@pytest.fixture(scope="session")
def pbmc_gb(pbmc_fitted):
    """pbmc68k_reduced after ``gb.tl.glassbox_umap(epochs=20, random_state=0)``.

    Shared by the session: tests must not modify it (``test_no_side_effects`` checks the
    plots don't).
    """
    return pbmc_fitted


def make_linear_gb(key: str = "glassbox_umap"):
    """pbmc68k_reduced with a deterministic linear glass box (no training)."""
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    hvg = adata.var["highly_variable"].to_numpy()
    X = np.asarray(adata.X[:, hvg], dtype=np.float64)
    Xc = X - X.mean(axis=0)
    Y = np.asarray(adata.obsm["X_umap"], dtype=np.float64)
    Y = Y - Y.mean(axis=0)
    W = np.linalg.solve(Xc.T @ Xc + 200.0 * np.eye(Xc.shape[1]), Xc.T @ Y)  # (genes, 2)
    contrib = (Xc[:, None, :] * W.T[None, :, :]).astype(np.float32)  # (n, 2, genes)
    emb = contrib.sum(axis=2, dtype=np.float64).astype(np.float32)
    epochs = np.arange(30)
    uns = {
        "params": {"n_components": 2, "epochs": 30, "random_state": 0, "source": "X"},
        "var_names": np.asarray(adata.var_names[hvg]).astype(str),
        "loss_history": 1.5 + 3.0 * np.exp(-epochs / 4.0) + 0.05 * np.cos(epochs),
    }
    # The package's own writer places everything, so the layout cannot drift from a fit's.
    summary = np.abs(contrib).mean(axis=0).T
    write_results(adata, key, emb=emb, contrib=contrib, summary=summary, uns=uns)
    return adata


@pytest.fixture(scope="session")
def linear_gb():
    return make_linear_gb()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def check_image(tmp_path):
    """Compare a figure (or scanpy plot object) with ``baseline/<name>.png``."""
    from matplotlib.testing.compare import compare_images

    def check(obj, name: str, tol: float = IMAGE_TOL) -> None:
        actual = tmp_path / f"{name}.png"
        # A Figure, or scanpy's MatrixPlot / DotPlot (whose savefig draws the figure first).
        obj.savefig(actual, dpi=IMAGE_DPI, bbox_inches="tight")
        expected = BASELINE_DIR / f"{name}.png"
        if os.environ.get("SCGLASSBOX_UPDATE_BASELINES"):
            BASELINE_DIR.mkdir(exist_ok=True)
            expected.write_bytes(actual.read_bytes())
            return
        if not expected.exists():
            pytest.fail(
                f"baseline {expected} is missing; run the tests once with "
                "SCGLASSBOX_UPDATE_BASELINES=1 and commit the image."
            )
        err = compare_images(str(expected), str(actual), tol=tol, in_decorator=True)
        if err is not None:
            diff = tmp_path / f"{name}-failed-diff.png"
            pytest.fail(f"{name}: images differ (RMS {err['rms']:.2f} > tol {tol}); see {diff}")

    return check


def snapshot(adata) -> dict:
    """Everything in an AnnData, as comparable plain values."""

    def norm(x):
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        if isinstance(x, pd.DataFrame):
            return ("df", x.copy())
        if isinstance(x, np.ndarray):
            return ("arr", x.copy())
        if isinstance(x, list | tuple):
            return [norm(v) for v in x]
        return x

    return {
        "shape": adata.shape,
        "X": np.asarray(adata.X).copy(),
        "obs": adata.obs.copy(),
        "var": adata.var.copy(),
        "obs_names": adata.obs_names.copy(),
        "var_names": adata.var_names.copy(),
        "uns": norm(dict(adata.uns)),
        "obsm": {k: np.asarray(v).copy() for k, v in adata.obsm.items()},
        "varm": {k: np.asarray(v).copy() for k, v in adata.varm.items()},
        "obsp": {k: v.copy() for k, v in adata.obsp.items()},
        "layers": list(adata.layers.keys()),
    }


def assert_same(a, b, path: str = "adata") -> None:
    """Deep equality of two :func:`snapshot` values."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {set(a) ^ set(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, tuple) and a and a[0] == "df":
        pd.testing.assert_frame_equal(a[1], b[1], obj=path)
    elif isinstance(a, tuple) and a and a[0] == "arr":
        np.testing.assert_array_equal(a[1], b[1], err_msg=path)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=path)
    elif isinstance(a, pd.Index):
        pd.testing.assert_index_equal(a, b, obj=path)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, f"{path}: dtype {a.dtype} != {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif hasattr(a, "toarray"):
        assert (a != b).nnz == 0, path
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
