"""Bad input to the estimator and crafted model files: each gets a clear error naming it.

Part of the bad-input matrix (issue 12): float64 beyond float32's range, model files and
``uns`` blocks with bad values or fields, Trainer options the estimator owns.
"""

import json
import time
import zipfile

import numpy as np
import pytest
from scipy import sparse

import scglassbox as gb
from scglassbox._storage import ModelFormatError

# ---------------------------------------------------------------------- input data


def _huge(X, where):
    X = X.astype(np.float64)
    X[3, 2] = 1e39
    return sparse.csr_matrix(X) if where == "sparse" else X


@pytest.mark.parametrize("where", ["dense", "sparse"])
@pytest.mark.parametrize("method", ["fit", "transform", "compute_contributions", "jacobian"])
def test_float64_beyond_float32_range_is_refused(fitted, wine, where, method):
    X, _ = wine
    bad = _huge(X, where)
    est = gb.GlassBoxUMAP(epochs=1, quiet=True) if method == "fit" else fitted
    call = {"jacobian": "compute_jacobian"}.get(method, method)
    with pytest.raises(ValueError, match="float32's range"):
        getattr(est, call)(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", ["fit", "transform", "compute_contributions"])
def test_nan_and_inf_are_refused(fitted, wine, value, method):
    X, _ = wine
    bad = X.copy()
    bad[0, 0] = value
    est = gb.GlassBoxUMAP(epochs=1, quiet=True) if method == "fit" else fitted
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        getattr(est, method)(bad)


@pytest.mark.parametrize(
    "key", ["max_epochs", "min_epochs", "max_steps", "accelerator", "devices", "precision"]
)
def test_trainer_options_the_estimator_owns_are_refused(wine, key):
    X, _ = wine
    with pytest.raises(ValueError, match=f"trainer_kwargs may not set \\['{key}'\\]"):
        gb.GlassBoxUMAP(epochs=2, trainer_kwargs={key: 1}, quiet=True).fit(X)


def test_other_trainer_options_still_pass(wine):
    X, _ = wine
    est = gb.GlassBoxUMAP(epochs=2, quiet=True, trainer_kwargs={"gradient_clip_val": 1.0})
    assert est.fit(X).epochs_ == 2


# ---------------------------------------------------------------------- model files (.npz)


def _rewrite(path, out, mutate):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mutate(arrays)
    np.savez(out, **arrays)
    return out


def _meta(arrays, **changes):
    meta = json.loads(str(arrays["__meta__"]))
    for path, value in changes.items():
        node = meta
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    arrays["__meta__"] = np.array(json.dumps(meta))


def _set(key, fn):
    def mutate(a):
        a[key] = fn(a[key])

    return mutate


def _nan_at_0(w):
    w = w.copy()
    w.flat[0] = np.nan
    return w


def _inf_at_0(w):
    w = w.copy()
    w.flat[0] = np.inf
    return w


def _params_without(arrays, key):
    params = json.loads(str(arrays["__meta__"]))["params"]
    return {k: v for k, v in params.items() if k != key}


FILE_CASES = {
    "nan weight": (_set("state_dict/net.0.weight", _nan_at_0), "NaN or infinite"),
    "inf weight": (_set("state_dict/net.0.weight", _inf_at_0), "NaN or infinite"),
    "nan mean": (_set("mean", _nan_at_0), "'mean' contains NaN"),
    "inf mean": (_set("mean", _inf_at_0), "'mean' contains NaN"),
    "string mean": (_set("mean", lambda m: np.array(["a"] * m.size)), "'mean' must be"),
    "2-D mean": (_set("mean", lambda m: m[None, :]), "'mean' must be a 1-D"),
    "n_in < 0": (lambda a: _meta(a, architecture__n_in=-3), r"architecture\['n_in'\]"),
    "n_in float": (lambda a: _meta(a, architecture__n_in=2.5), r"architecture\['n_in'\]"),
    "n_out text": (lambda a: _meta(a, architecture__n_out="2"), r"architecture\['n_out'\]"),
    "format_version 1.5": (lambda a: _meta(a, format_version=1.5), "'format_version'"),
    "format_version text": (lambda a: _meta(a, format_version="one"), "'format_version'"),
    "n_components '2'": (lambda a: _meta(a, params__n_components="2"), "n_components"),
    "n_components 3": (lambda a: _meta(a, params__n_components=3), "n_components"),
    "injected trainer_kwargs": (
        lambda a: _meta(a, params__trainer_kwargs={"max_epochs": 1}),
        "trainer_kwargs",
    ),
    "unknown param": (lambda a: _meta(a, params__payload="x"), "payload"),
    "params not a dict": (lambda a: _meta(a, params=[1, 2]), "'params'"),
    "epochs missing": (lambda a: _meta(a, params=_params_without(a, "epochs")), "epochs"),
    "negative a": (lambda a: _meta(a, params__a=-1.0), "a must be"),
    "lr text": (lambda a: _meta(a, params__lr="fast"), "lr"),
    "loss_history text": (
        lambda a: a.update({"loss_history": np.array(["x", "y"])}),
        "loss_history",
    ),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_crafted_model_file_is_refused(fitted, tmp_path, case):
    mutate, match = FILE_CASES[case]
    out = _rewrite(fitted.save(tmp_path / "model.npz"), tmp_path / "bad.npz", mutate)
    with pytest.raises(ModelFormatError, match=match):
        gb.GlassBoxUMAP.load(out)


@pytest.mark.parametrize("hidden", [[20000, 20000], [200000, 200000]])
def test_huge_architecture_allocates_nothing(fitted, tmp_path, hidden):
    """Shapes are checked on the meta device first: 160 GB of weights are never allocated."""
    out = _rewrite(
        fitted.save(tmp_path / "model.npz"),
        tmp_path / "huge.npz",
        lambda a: a.update({"architecture/hidden": np.array(hidden)}),
    )
    start = time.perf_counter()
    with pytest.raises(ModelFormatError, match="shape"):
        gb.GlassBoxUMAP.load(out)
    assert time.perf_counter() - start < 5


def test_deeply_nested_metadata(fitted, tmp_path):
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    out = _rewrite(
        fitted.save(tmp_path / "model.npz"),
        tmp_path / "deep.npz",
        lambda a: a.update({"__meta__": np.array(deep)}),
    )
    with pytest.raises(ModelFormatError, match="nested too deeply"):
        gb.GlassBoxUMAP.load(out)


def test_nan_components_are_refused(fitted_pca, tmp_path):
    out = _rewrite(
        fitted_pca.save(tmp_path / "model.npz"), tmp_path / "bad.npz", _set("components", _nan_at_0)
    )
    with pytest.raises(ModelFormatError, match="'components' contains NaN"):
        gb.GlassBoxUMAP.load(out)


# ---------------------------------------------------------------------- files of other tools


def test_torch_archive_is_refused_without_loading(tmp_path):
    """A torch.save zip (what the reference writes) is recognised by its member names."""
    path = tmp_path / "reference_model.pt"
    with zipfile.ZipFile(path, "w") as z:  # the layout only: no pickle is written or read
        z.writestr("reference_model/data.pkl", b"not read")
        z.writestr("reference_model/version", b"3\n")
        z.writestr("reference_model/data/0", b"\0" * 16)
    with pytest.raises(ModelFormatError, match=r"torch pickle archive.*refit with scglassbox"):
        gb.GlassBoxUMAP.load(path)


def test_legacy_pickle_is_refused_without_loading(tmp_path):
    path = tmp_path / "old.pt"
    path.write_bytes(b"\x80\x02" + b"\0" * 64)  # a pickle protocol marker, nothing more
    with pytest.raises(ModelFormatError, match="is a pickle"):
        gb.GlassBoxUMAP.load(path)


def test_old_suffixless_save_still_loads(fitted, wine, tmp_path):
    """Earlier versions saved ``save('m')`` as ``m.npz``; ``load('m')`` still finds it."""
    X, _ = wine
    fitted.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(
        gb.GlassBoxUMAP.load(tmp_path / "m").transform(X), fitted.transform(X)
    )


def test_save_does_not_leave_a_partial_file(fitted, tmp_path, monkeypatch):
    target = tmp_path / "model.npz"
    fitted.save(target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="No space"):
        fitted.save(target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


# ---------------------------------------------------------------------- uns blocks


def _block(fitted, **changes):
    block = fitted.to_dict()
    block["var_names"] = np.array([f"g{i}" for i in range(block["mean"].shape[0])])
    for k, v in changes.items():
        if k.startswith("params__"):
            block["params"] = {**block["params"], k[8:]: v}
        else:
            block[k] = v
    return block


BLOCK_CASES = {
    "var_names shorter": ({"var_names": np.array(["a", "b"])}, "'var_names' has 2 names"),
    "var_names duplicated": (
        {"var_names": np.array(["a"] * 12 + ["b"])},
        "'var_names' has duplicated names",
    ),
    "nan mean": ({"mean": np.full(13, np.nan, np.float32)}, "'mean' contains NaN"),
    "mean objects": ({"mean": np.array([None] * 13)}, "'mean' must be"),
    "n_components text": ({"params__n_components": "2"}, "n_components"),
    "trainer_kwargs": ({"params__trainer_kwargs": {"max_epochs": 1}}, "trainer_kwargs"),
    "format_version float": ({"format_version": 1.5}, "'format_version'"),
    "format_version 0-d text": ({"format_version": np.array("1")}, "'format_version'"),
}


@pytest.mark.parametrize("case", sorted(BLOCK_CASES))
def test_bad_uns_block_is_refused(fitted, case):
    changes, match = BLOCK_CASES[case]
    with pytest.raises(ModelFormatError, match=match):
        gb.GlassBoxUMAP.from_dict(_block(fitted, **changes))


def test_good_uns_block_with_h5ad_scalars(fitted, wine):
    """h5ad hands scalars back as 0-d arrays: still a valid block."""
    X, _ = wine
    block = _block(fitted, format_version=np.array(1))
    block["params"] = {k: np.array(v) for k, v in block["params"].items()}
    est = gb.GlassBoxUMAP.from_dict(block)
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"g{i}" for i in range(X.shape[1])])
    np.testing.assert_array_equal(est.transform(df), fitted.transform(X))
    assert list(est.feature_names_in_[:2]) == ["g0", "g1"]
