"""``gb.register_encoder``: user encoder classes by name, as in the reference package."""

import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

import scglassbox as gb
from scglassbox import _encoder
from scglassbox._contributions import exactness
from scglassbox._storage import ModelFormatError

KW = {"epochs": 2, "random_state": 0, "quiet": True}


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    """A fresh, empty registry for each test."""
    monkeypatch.setattr(_encoder, "_REGISTRY", {})
    return _encoder._REGISTRY


class Seen(nn.Module):
    """A glass-box encoder that records the arguments it was built with."""

    calls: ClassVar[list] = []

    def __init__(self, input_dims, n_components, width=8, widths=(4,), tag=None):
        super().__init__()
        Seen.calls.append({"input_dims": input_dims, "width": width, "widths": widths, "tag": tag})
        self.input_dims = input_dims
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_dims), width, bias=False),
            nn.PReLU(),
            nn.Linear(width, n_components, bias=False),
        )

    def forward(self, x):
        assert tuple(x.shape[1:]) == tuple(self.input_dims)  # rows come in the sample shape
        return self.net(x)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return load_digits().images[:300].astype(np.float32)


def test_public_name():
    assert gb.register_encoder is _encoder.register_encoder
    assert "register_encoder" in gb.__all__


def test_registered_encoder_fits_rows_images_and_pca(digits, wine):
    gb.register_encoder("seen")(Seen)
    X, _ = wine
    Seen.calls.clear()
    for data, kwargs, dims in [
        (X, {}, (13,)),
        (X, {"pca_components": 5}, (5,)),
        (digits, {}, (8, 8)),
        (digits[:, None], {}, (1, 8, 8)),
    ]:
        est = gb.GlassBoxUMAP(encoder="seen", encoder_kwargs={"width": 16}, **kwargs, **KW)
        est.fit(data)
        assert Seen.calls[-1]["input_dims"] == dims and Seen.calls[-1]["width"] == 16
        contrib, emb = est.compute_contributions(data, return_embedding=True)
        assert contrib.shape == (len(data), 2, *data.shape[1:])
        assert exactness(emb, contrib) <= 1e-6
    # encoder_name, the reference's spelling, works the same.
    est = gb.GlassBoxUMAP(encoder_name="seen", **KW).fit(X)
    assert est.encoder_.architecture["name"] == "seen"


def test_round_trip_needs_the_class_registered(digits, registry, tmp_path):
    gb.register_encoder("seen")(Seen)
    kwargs = {"width": 12, "widths": [3, 5], "tag": None}
    est = gb.GlassBoxUMAP(encoder="seen", encoder_kwargs=kwargs, **KW).fit(digits)
    path = est.save(tmp_path / "seen.npz")
    back = gb.GlassBoxUMAP.load(path)
    assert Seen.calls[-1]["widths"] == [3, 5] and Seen.calls[-1]["tag"] is None
    np.testing.assert_array_equal(back.transform(digits), est.transform(digits))
    np.testing.assert_array_equal(
        back.compute_contributions(digits), est.compute_contributions(digits)
    )
    assert back == est and back.encoder == "seen"
    registry.clear()
    with pytest.raises(ModelFormatError, match=r"register_encoder\('seen'\)"):
        gb.GlassBoxUMAP.load(path)


def test_kwargs_that_cannot_be_stored(wine, tmp_path):
    gb.register_encoder("seen")(Seen)
    X, _ = wine
    est = gb.GlassBoxUMAP(encoder="seen", encoder_kwargs={"tag": {"a": 1}}, **KW).fit(X)
    with pytest.raises(ModelFormatError, match="tag"):
        est.save(tmp_path / "bad.npz")


def test_registration_rules(registry):
    with pytest.raises(ValueError, match="built-in"):
        gb.register_encoder("conv")
    with pytest.raises(ValueError, match="built-in"):
        gb.register_encoder("default")
    with pytest.raises(ValueError, match="non-empty"):
        gb.register_encoder("")
    with pytest.raises(TypeError, match=r"nn\.Module"):
        gb.register_encoder("f")(lambda x: x)
    assert gb.register_encoder("seen")(Seen) is Seen
    assert gb.register_encoder("seen")(Seen) is Seen  # the same class again: a re-run cell

    class Other(Seen):
        pass

    with pytest.raises(ValueError, match="already registered"):
        gb.register_encoder("seen")(Other)
    assert registry == {"seen": Seen}


def test_unknown_and_broken_encoders_are_refused(wine):
    X, _ = wine
    with pytest.raises(ValueError, match="register_encoder"):
        gb.GlassBoxUMAP(encoder="nope", **KW).fit(X)

    @gb.register_encoder("biased")
    class Biased(nn.Module):
        def __init__(self, input_dims, n_components):
            super().__init__()
            self.net = nn.Linear(math.prod(input_dims), n_components)  # a bias: not exact

        def forward(self, x):
            return self.net(x)

    with pytest.raises(ValueError, match="do not sum to its output"):
        gb.GlassBoxUMAP(encoder="biased", **KW).fit(X)

    @gb.register_encoder("no_dims")
    class NoDims(nn.Module):
        def __init__(self, n_components):
            super().__init__()

    with pytest.raises(TypeError, match="input_dims and n_components"):
        gb.GlassBoxUMAP(encoder="no_dims", **KW).fit(X)


def test_frozen_scale_factors_are_frozen_for_attribution(wine):
    """A registered encoder with a normalisation that declares ``frozen_scale`` is exact."""
    X, _ = wine

    @gb.register_encoder("normed")
    class Normed(nn.Module):
        def __init__(self, input_dims, n_components):
            super().__init__()
            self.first = nn.Linear(math.prod(input_dims), 16, bias=False)
            self.norm = _encoder.ScaleNorm()
            self.act = nn.PReLU()
            self.last = nn.Linear(16, n_components, bias=False)

        def forward(self, x):
            return self.last(self.norm(self.act(self.first(x))))

    est = gb.GlassBoxUMAP(encoder="normed", **KW).fit(X)
    contrib, emb = est.compute_contributions(X, return_embedding=True)
    assert exactness(emb, contrib) <= 1e-6
    assert torch.is_tensor(next(est.encoder_.parameters()))
