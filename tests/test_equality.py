"""``==`` between estimators (the reference package's semantic equality), hashing, stdout."""

import lightning.pytorch as lp
import numpy as np
import pytest
import torch
from sklearn.base import clone

import scglassbox as gb
from scglassbox._equality import IGNORED_FOR_EQ

KW = {"epochs": 3, "random_state": 0, "quiet": True}


@pytest.fixture(scope="module")
def pair(wine):
    """Two fits of the same recipe, differing only in run-time settings."""
    X, _ = wine
    a = gb.GlassBoxUMAP(**KW).fit(X)
    b = gb.GlassBoxUMAP(
        **{**KW, "quiet": False}, num_workers=3, extra_callbacks=[lp.Callback()]
    ).fit(X)
    return a, b


def test_reference_ignored_parameters():
    assert {"quiet", "num_workers", "checkpoint_dir", "extra_callbacks"} <= IGNORED_FOR_EQ


def test_unfitted_compare_their_parameters(tmp_path):
    assert gb.GlassBoxUMAP() == gb.GlassBoxUMAP()
    assert gb.GlassBoxUMAP(quiet=True, num_workers=2) == gb.GlassBoxUMAP(
        checkpoint_dir=tmp_path, extra_callbacks=[lp.Callback()], verbose=True
    )
    assert gb.GlassBoxUMAP(n_neighbors=10) != gb.GlassBoxUMAP()
    assert gb.GlassBoxUMAP(encoder_kwargs={"hidden": [8]}) != gb.GlassBoxUMAP()
    # Synonyms and aliases name one setting.
    assert gb.GlassBoxUMAP(encoder_name="mlp") == gb.GlassBoxUMAP(encoder="mlp")
    assert gb.GlassBoxUMAP(encoder_name="default_conv") == gb.GlassBoxUMAP(encoder="conv")
    assert gb.GlassBoxUMAP(n_epochs=3) == gb.GlassBoxUMAP(epochs=3)
    assert gb.GlassBoxUMAP(learning_rate=1e-3) == gb.GlassBoxUMAP(lr=1e-3)
    init = np.zeros((5, 2))
    assert gb.GlassBoxUMAP(init=init) == gb.GlassBoxUMAP(init=init.copy())
    assert gb.GlassBoxUMAP(init=init) != gb.GlassBoxUMAP(init=init + 1)
    assert gb.GlassBoxUMAP() != "GlassBoxUMAP()" and gb.GlassBoxUMAP() != 3


def test_fitted_compare_their_models(pair, wine):
    a, b = pair
    assert a == b and not (a != b)
    assert a != clone(a) and clone(a) != a  # fitted vs unfitted
    X, _ = wine
    other = gb.GlassBoxUMAP(**{**KW, "random_state": 1}).fit(X)
    assert other != a


def test_a_changed_weight_breaks_equality(pair):
    a, _ = pair
    copy = gb.GlassBoxUMAP.from_dict(a.to_dict())
    assert copy == a
    with torch.no_grad():
        w = next(copy.encoder_.parameters())
        w[0, 0] = torch.nextafter(w[0, 0], torch.tensor(np.inf))
    assert copy != a


def test_equality_survives_save_load_and_devices(pair, tmp_path):
    a, _ = pair
    back = gb.GlassBoxUMAP.load(a.save(tmp_path / "m.npz"))
    assert back == a and a == back
    back.to("cpu")
    assert back == a
    back.set_params(n_neighbors=a.n_neighbors + 1)  # a different recipe
    assert back != a


def test_not_hashable_but_sklearn_still_works(pair, wine):
    a, _ = pair
    with pytest.raises(TypeError, match="unhashable"):
        hash(a)
    c = clone(a)
    assert c.get_params() == a.get_params() and c == gb.GlassBoxUMAP(**KW)
    c.set_params(encoder_name="mlp")
    X, _ = wine
    assert c.fit(X).encoder_.architecture["name"] == "mlp"


def test_encoder_name_defaults_to_default(pair):
    est = gb.GlassBoxUMAP()
    assert est.encoder_name == "default" and est.get_params()["encoder_name"] == "default"
    a, _ = pair
    assert "encoder_name" not in a.to_dict()["params"]
    assert gb.GlassBoxUMAP.from_dict(a.to_dict()).encoder_name == "default"


def test_progress_goes_to_stderr_not_stdout(wine, capfd):
    X, _ = wine
    gb.GlassBoxUMAP(epochs=2, random_state=0, quiet=False).fit(X)
    out, err = capfd.readouterr()
    assert out == ""
    assert "glassbox-umap" in err
