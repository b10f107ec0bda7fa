"""Defaults that follow the device: what a fit chooses on a CPU and on a CUDA GPU."""

import numpy as np
import pytest
import torch

import scglassbox as gb
from scglassbox import _fit, _params
from scglassbox._contributions import exactness

RTOL = 1e-5


def test_device_type():
    assert _params.device_type("cpu") == "cpu"
    assert _params.device_type("gpu") == "cuda"
    assert _params.device_type("cuda") == "cuda"
    assert _params.device_type(torch.device("cuda", 0)) == "cuda"
    assert _params.device_type("mps") == "mps"
    if torch.cuda.is_available():
        assert _params.device_type("auto") == "cuda"
    else:
        assert _params.device_type("auto") in ("mps", "cpu")


def test_gpu_batch_and_hidden():
    assert _params.auto_batch_size(100_000, 2_070_000, "cuda") == _params.GPU_BATCH
    assert _params.auto_batch_size(700, 9_000, "cuda") == 9_000  # all edges, one step
    assert _params.auto_batch_size(100_000, 2_070_000, "cpu") == 20_000  # the CPU rule
    assert _params.auto_hidden("cuda", 20_000) == _params.GPU_HIDDEN
    assert _params.auto_hidden("cuda", 999) is None  # small data keeps the CPU network
    assert _params.auto_hidden("cpu", 20_000) is None
    assert _params.auto_hidden("mps", 20_000) is None


@pytest.fixture
def gpu_defaults_on_cpu(monkeypatch):
    """The CUDA profile of defaults, trained on the CPU (CI has no GPU): what a GPU fit
    chooses, and what its stored model must reproduce anywhere."""
    monkeypatch.setattr(_fit, "device_type", lambda accelerator: "cuda")


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)


def test_gpu_profile_is_stored_and_maps_new_cells_on_cpu(gpu_defaults_on_cpu, digits, tmp_path):
    X = digits
    est = gb.GlassBoxUMAP(random_state=0, epochs=2, quiet=True, accelerator="cpu").fit(X[:1200])
    n_edges = _fit._graph.edge_list(est.graph_).n_edges
    assert est.encoder_.hidden == _params.GPU_HIDDEN
    assert est.batch_size_ == min(_params.GPU_BATCH, n_edges)
    back = gb.GlassBoxUMAP.load(est.save(tmp_path / "gpu_model.npz"))
    assert back.encoder_.hidden == _params.GPU_HIDDEN
    new = X[1200:]
    np.testing.assert_array_equal(back.transform(new), est.transform(new))
    C, emb = back.compute_contributions(new, return_embedding=True)
    assert exactness(emb, C) <= RTOL


def test_user_widths_win_over_the_device_profile(gpu_defaults_on_cpu, digits):
    est = gb.GlassBoxUMAP(
        random_state=0, epochs=1, quiet=True, accelerator="cpu", encoder_kwargs={"hidden": [16]}
    ).fit(digits)
    assert est.encoder_.hidden == (16,)
    assert est.encoder_kwargs == {"hidden": [16]}  # the user's dict is not changed


def test_small_data_keeps_the_cpu_network_on_a_gpu(gpu_defaults_on_cpu, wine):
    X, _ = wine  # 178 cells
    est = gb.GlassBoxUMAP(random_state=0, epochs=2, quiet=True, accelerator="cpu").fit(X)
    assert est.encoder_.hidden == (128, 128)


def test_cpu_fit_keeps_the_cpu_defaults(fitted):
    assert fitted.encoder_.hidden == (128, 128)
