"""The one set of chunk sizes outside training (scglassbox._chunks) and who reads it."""

import pytest

import scglassbox as gb
from scglassbox import _chunks


def test_cells_per_chunk_fits_the_byte_budget():
    assert _chunks.cells_per_chunk(2, 2_000) == _chunks.CHUNK_BYTES // (8 * 2 * 2_000)
    for dims, feats in [(2, 10), (2, 2_000), (3, 20_000), (10, 10**7)]:
        rows = _chunks.cells_per_chunk(dims, feats)
        assert rows >= 1
        assert rows == 1 or rows * 8 * dims * feats <= _chunks.CHUNK_BYTES
    assert _chunks.cells_per_chunk(2, 10, cap=100) == 100  # the cap binds for few features
    assert _chunks.cells_per_chunk(2, 20_000, cap=8_192) < 8_192  # the budget for many
    assert _chunks.cells_per_chunk(0, 0, cap=0) == 1


@pytest.mark.parametrize(("batch_size", "cells"), [(None, 10_000), (512, 512), (50_000, 50_000)])
def test_inference_batch_size_is_batch_size_or_the_default_cap(batch_size, cells):
    est = gb.GlassBoxUMAP(batch_size=batch_size)
    assert est.inference_batch_size == cells == _chunks.inference_cells(batch_size)
    assert _chunks.fit_input_cells(batch_size) == max(cells, _chunks.FIT_INPUT_MIN_CELLS)
    assert "inference_batch_size" not in est.get_params()  # derived, not a parameter


def test_access_layer_cap_comes_from_the_one_module():
    from scglassbox.get._contributions import CHUNK_CELLS

    assert CHUNK_CELLS == _chunks.ACCESS_CELLS


def test_contributions_default_batch_stays_within_the_budget(monkeypatch):
    """Many features: compute_contributions / compute_jacobian take fewer cells at once."""
    import numpy as np

    from scglassbox import _estimator

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 40)).astype(np.float32)
    est = gb.GlassBoxUMAP(epochs=1, random_state=0, quiet=True).fit(X)
    whole = est.compute_contributions(X)
    seen = []
    real = _estimator.stream_contributions

    def spy(*args, batch_size, **kwargs):
        seen.append(batch_size)
        return real(*args, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(_estimator, "stream_contributions", spy)
    monkeypatch.setattr(_chunks, "CHUNK_BYTES", 8 * 2 * 40 * 25)  # 25 cells of 40 features
    part = est.compute_contributions(X)
    assert seen == [25]
    np.testing.assert_allclose(part, whole, atol=2e-6 * np.abs(whole).max())
    est.compute_contributions(X, batch_size=60)  # the caller's size is taken as given
    assert seen == [25, 60]
    jac = est.compute_jacobian(X)
    np.testing.assert_allclose((jac * (X - est.mean_)[:, None]).sum(-1), est.transform(X),
                               rtol=1e-4, atol=1e-5)  # fmt: skip
