import io
import json
import zipfile

import numpy as np
import pytest

import scglassbox as gb
from scglassbox._storage import ModelFormatError


def test_round_trip_is_bitwise(fitted, wine, tmp_path):
    X, _ = wine
    path = fitted.save(tmp_path / "model.npz")
    loaded = gb.GlassBoxUMAP.load(path)
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(loaded.compute_contributions(X), fitted.compute_contributions(X))
    np.testing.assert_array_equal(loaded.loss_history_, fitted.loss_history_)
    assert loaded.n_components == fitted.n_components
    assert (loaded.precision, loaded.precision_) == (fitted.precision, fitted.precision_)


def test_round_trip_with_pca(fitted_pca, wine, tmp_path):
    X, _ = wine
    loaded = gb.GlassBoxUMAP.load(fitted_pca.save(tmp_path / "m"))  # suffix added
    np.testing.assert_array_equal(loaded.transform(X), fitted_pca.transform(X))
    np.testing.assert_array_equal(loaded.components_, fitted_pca.components_)


def _rewrite(path, out, mutate):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mutate(arrays)
    np.savez(out, **arrays)
    return out


def test_pickled_payload_is_refused_without_running_code(fitted, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = fitted.save(tmp_path / "model.npz")
    evil = np.empty(1, dtype=object)
    evil[0] = Evil()
    out = _rewrite(path, tmp_path / "evil.npz", lambda a: a.update({"mean": evil}))
    with pytest.raises(ModelFormatError):
        gb.GlassBoxUMAP.load(out)
    assert not marker.exists()


def test_truncated_file(fitted, tmp_path):
    data = fitted.save(tmp_path / "model.npz").read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="not a readable scglassbox model"):
        gb.GlassBoxUMAP.load(bad)


def test_random_bytes(tmp_path):
    bad = tmp_path / "noise.npz"
    bad.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ModelFormatError):
        gb.GlassBoxUMAP.load(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        gb.GlassBoxUMAP.load(tmp_path / "absent.npz")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda a: a.pop("__meta__"), "no metadata"),
        (lambda a: a.update({"__meta__": np.array("{not json")}), "corrupt metadata"),
        (
            lambda a: a.update(
                {"__meta__": np.array(json.dumps({**_meta(a), "format_version": 99}))}
            ),
            "format version 99",
        ),
        (
            lambda a: a.update({"__meta__": np.array(json.dumps({**_meta(a), "library": "x"}))}),
            "not a scglassbox",
        ),
        (lambda a: a.pop("state_dict/net.0.weight"), "missing"),
        (lambda a: a.update({"state_dict/net.0.weight": np.zeros((3, 3), np.float32)}), "shape"),
        (lambda a: a.update({"state_dict/extra": np.zeros(3, np.float32)}), "unexpected"),
        (lambda a: a.update({"mean": np.zeros(4, np.float32)}), "input width"),
    ],
)
def test_crafted_files_fail_clearly(fitted, tmp_path, mutate, match):
    path = fitted.save(tmp_path / "model.npz")
    out = _rewrite(path, tmp_path / "bad.npz", mutate)
    with pytest.raises(ModelFormatError, match=match):
        gb.GlassBoxUMAP.load(out)


def _meta(arrays):
    return json.loads(str(arrays["__meta__"]))


def test_file_is_a_plain_zip_of_npy(fitted, tmp_path):
    path = fitted.save(tmp_path / "model.npz")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert all(n.endswith(".npy") for n in names)
        for n in names:  # every member is a plain (non-object) array
            arr = np.lib.format.read_array(io.BytesIO(z.read(n)), allow_pickle=False)
            assert arr.dtype != object


def test_custom_encoder_needs_module_to_load(wine, tmp_path):
    X, _ = wine
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(
        torch.nn.Linear(13, 16, bias=False), torch.nn.ReLU(), torch.nn.Linear(16, 2, bias=False)
    )
    est = gb.GlassBoxUMAP(encoder=net, epochs=3, random_state=0, quiet=True).fit(X)
    path = est.save(tmp_path / "custom.npz")
    with pytest.raises(ModelFormatError, match="not a built-in encoder"):
        gb.GlassBoxUMAP.load(path)
    fresh = torch.nn.Sequential(
        torch.nn.Linear(13, 16, bias=False), torch.nn.ReLU(), torch.nn.Linear(16, 2, bias=False)
    )
    loaded = gb.GlassBoxUMAP.load(path, encoder=fresh)
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
