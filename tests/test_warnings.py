"""Warnings raised deep in a fit point at the user's line, on every call path."""

import re
import warnings

import numpy as np
import pytest

import scglassbox as gb


@pytest.mark.parametrize("method", ["fit", "fit_transform"])
@pytest.mark.parametrize(
    ("params", "match"),
    [({"n_neighbors": 15}, "n_neighbors .15. is not smaller"), ({"lr": 0.5}, "Adam's step size")],
)
def test_warning_names_the_callers_line(method, params, match):
    X = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    est = gb.GlassBoxUMAP(epochs=1, quiet=True, random_state=0, **params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        getattr(est, method)(X)
    ours = [w for w in caught if re.search(match, str(w.message))]
    assert len(ours) == 1
    assert ours[0].filename == __file__
