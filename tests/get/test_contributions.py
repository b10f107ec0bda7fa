"""The contributions accessor: cache or model, the same numbers, bounded memory."""

import anndata as ad
import numpy as np
import pytest

import scglassbox as gb
from scglassbox import _memory
from scglassbox._contributions import exactness
from scglassbox.tl import _results
from tests.conftest import make_synthetic

KEY = "glassbox_umap"
CKEY = f"{KEY}_contributions"


@pytest.fixture(scope="module")
def fits():
    """One synthetic set fitted once per storage mode (same seed, so the same model)."""
    base = make_synthetic(n_obs=500, n_vars=150)
    out = {}
    for mode in ("full", "float16", "lazy", "none"):
        a = base.copy()
        gb.tl.glassbox_umap(a, epochs=5, random_state=0, quiet=True, contributions=mode)
        out[mode] = a
    return out


def test_same_model_whatever_the_storage(fits):
    ref = fits["full"].obsm[f"X_{KEY}"]
    for mode, a in fits.items():
        np.testing.assert_array_equal(a.obsm[f"X_{KEY}"], ref, err_msg=mode)
        assert a.uns[KEY]["params"]["contributions"] == mode
    assert CKEY not in fits["none"].obsm


@pytest.mark.parametrize("mode", ["full", "float16", "lazy"])
def test_accessor_returns_the_stored_array_bitwise(fits, mode):
    a = fits[mode]
    stored = np.asarray(a.obsm[CKEY])  # computes the dask array for 'lazy'
    got = gb.get.contributions(a, dtype=stored.dtype)
    np.testing.assert_array_equal(got, stored)


def test_model_recomputes_what_was_stored(fits):
    stored = fits["full"].obsm[CKEY]
    again = gb.get.contributions(fits["none"])
    np.testing.assert_allclose(again, stored, rtol=1e-6, atol=2e-6 * np.abs(stored).max())
    emb = fits["none"].obsm[f"X_{KEY}"]
    assert exactness(emb, again) <= 1e-5


def test_chunk_size_does_not_change_the_numbers(fits):
    a = fits["none"]
    whole = gb.get.contributions(a, chunk_size=10_000)
    # Matrix products of another batch shape round differently in float32's last bits.
    tol = 2e-6 * np.abs(whole).max()
    for chunk in (1, 7, 128):
        np.testing.assert_allclose(gb.get.contributions(a, chunk_size=chunk), whole, atol=tol)


def test_subsets_in_the_order_asked(fits):
    a, full = fits["none"], gb.get.contributions(fits["full"])
    genes = list(a.uns[KEY]["var_names"][[9, 2, 40]])
    obs = np.array([31, 4, 250, 4])
    part = gb.get.contributions(a, obs=obs, genes=genes, dims=[1])
    np.testing.assert_allclose(part, full[obs][:, [1]][:, :, [9, 2, 40]], rtol=1e-6, atol=1e-7)
    names = a.obs_names[[31, 4]]
    np.testing.assert_allclose(
        gb.get.contributions(a, obs=names), full[[31, 4]], rtol=1e-6, atol=1e-7
    )
    mask = np.arange(a.n_obs) % 5 == 0
    l2 = gb.get.contributions(a, obs=mask, view="l2")
    np.testing.assert_allclose(l2, np.sqrt((full[mask] ** 2).sum(1)), rtol=1e-5, atol=1e-7)
    normed = gb.get.contributions(a, genes=genes, view="normed_l2")
    ref = np.sqrt((full**2).sum(1))
    ref = ref / ref.sum(1, keepdims=True)
    np.testing.assert_allclose(normed, ref[:, [9, 2, 40]], rtol=1e-5, atol=1e-7)
    # The L2 views reduce over the selected dims only; 'dimK' is one dimension, signed.
    one = gb.get.contributions(a, obs=mask, dims=[1], view="l2")
    np.testing.assert_allclose(one, np.abs(full[mask][:, 1]), rtol=1e-5, atol=1e-7)
    signed = gb.get.contributions(a, genes=genes, view="dim2")
    np.testing.assert_allclose(signed, full[:, 1][:, [9, 2, 40]], rtol=1e-6, atol=1e-7)
    blocks = [b for _, b in gb.get.iter_contributions(a, view="dim1", chunk_size=300)]
    # Chunks of another size round differently in float32's last bits.
    tol = 2e-6 * np.abs(full).max()
    np.testing.assert_allclose(np.concatenate(blocks), full[:, 0], atol=tol)


def test_reduction_is_the_old_name_of_view(fits):
    a = fits["full"]
    with pytest.warns(FutureWarning, match="reduction= is deprecated.*view="):
        old = gb.get.contributions(a, reduction="normed_l2")
    np.testing.assert_array_equal(old, gb.get.contributions(a, view="normed_l2"))
    with pytest.warns(FutureWarning, match="reduction= is deprecated"):
        blocks = list(gb.get.iter_contributions(a, reduction="l2"))
    np.testing.assert_array_equal(
        np.concatenate([b for _, b in blocks]), gb.get.contributions(a, view="l2")
    )
    with pytest.raises(ValueError, match="pass only view="):
        gb.get.contributions(a, reduction="l2", view="l2")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"genes": ["NOT_A_GENE"]}, KeyError, "not among"),
        ({"dims": 2}, ValueError, "dims must be"),
        ({"view": "l1"}, ValueError, "view must be"),
        ({"view": "dim3"}, ValueError, "view must be 'l2', 'normed_l2' or one of 'dim1', 'dim2'"),
        ({"view": "dim1", "dims": 0}, ValueError, "names one dimension already"),
        ({"obs": ["nope"]}, KeyError, "not in adata.obs_names"),
        ({"obs": np.ones(3, bool)}, ValueError, "length n_obs"),
        ({"key": "other"}, KeyError, "key_added='other'"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
    ],
)
def test_clear_errors(fits, kwargs, error, match):
    with pytest.raises(error, match=match):
        gb.get.contributions(fits["none"], **kwargs)


def test_refuses_what_cannot_fit_and_changes_nothing(fits, monkeypatch):
    a = fits["none"].copy()
    before = sorted(a.obsm), sorted(a.uns), a.obsm[f"X_{KEY}"].copy()
    monkeypatch.setattr(_memory, "available_bytes", lambda: 10_000)
    with pytest.raises(MemoryError, match="view='l2'"):
        gb.get.contributions(a)
    with pytest.raises(MemoryError, match="contributions='none'"):
        gb.tl.glassbox_umap(a, epochs=2, contributions="full", quiet=True)
    assert (sorted(a.obsm), sorted(a.uns)) == before[:2]
    np.testing.assert_array_equal(a.obsm[f"X_{KEY}"], before[2])
    # What fits is still served.
    assert gb.get.contributions(a, obs=[0], dims=0, genes=list(a.uns[KEY]["var_names"][:2])).size


def test_auto_stores_only_small_arrays(monkeypatch):
    a = make_synthetic(n_obs=300, n_vars=100)
    gb.tl.glassbox_umap(a, epochs=2, quiet=True)
    assert CKEY in a.obsm and a.uns[KEY]["params"]["contributions"] == "full"
    monkeypatch.setattr(_results, "AUTO_MAX_BYTES", 1000)
    gb.tl.glassbox_umap(a, epochs=2, quiet=True)
    assert CKEY not in a.obsm and a.uns[KEY]["params"]["contributions"] == "none"
    assert exactness(a.obsm[f"X_{KEY}"], gb.get.contributions(a)) <= 1e-5


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_lazy_round_trip(fits, tmp_path, fmt):
    a = fits["lazy"]
    assert hasattr(a.obsm[CKEY], "dask")
    path = tmp_path / f"lazy.{fmt}"
    getattr(a, f"write_{fmt}")(path)
    back = getattr(ad, f"read_{fmt}")(path)
    emb = back.obsm[f"X_{KEY}"]
    stored = np.asarray(back.obsm[CKEY])
    assert stored.shape == (a.n_obs, 2, len(a.uns[KEY]["var_names"]))
    assert exactness(emb, stored) <= 1e-5
    np.testing.assert_array_equal(stored, np.asarray(a.obsm[CKEY]))


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_model_only_file_round_trip(fits, tmp_path, fmt):
    a = fits["none"]
    path = tmp_path / f"none.{fmt}"
    getattr(a, f"write_{fmt}")(path)
    back = getattr(ad, f"read_{fmt}")(path)
    assert CKEY not in back.obsm
    c = gb.get.contributions(back)
    assert exactness(back.obsm[f"X_{KEY}"], c) <= 1e-5
    np.testing.assert_array_equal(c, gb.get.contributions(a))


def test_float16_exactness_reports_what_is_stored(fits):
    uns = fits["float16"].uns[KEY]
    assert uns["exactness"] <= 1e-5
    stored = fits["float16"].obsm[CKEY]
    measured = exactness(fits["float16"].obsm[f"X_{KEY}"], stored)
    assert uns["exactness_stored"] == pytest.approx(measured, rel=1e-3)
    assert uns["exactness_stored"] > uns["exactness"]


def test_backed_csr(tmp_path):
    """Fit and contributions on a file opened with backed='r' (CSR X stays on disk)."""
    a = make_synthetic(n_obs=400, n_vars=120)
    assert a.X.format == "csr"
    a.write_h5ad(tmp_path / "in.h5ad")
    b = ad.read_h5ad(tmp_path / "in.h5ad", backed="r")
    gb.tl.glassbox_umap(b, epochs=3, random_state=0, quiet=True, contributions="none")
    c = gb.get.contributions(b, chunk_size=64)
    assert exactness(b.obsm[f"X_{KEY}"], c) <= 1e-5
    mem = a.copy()
    gb.tl.glassbox_umap(mem, epochs=3, random_state=0, quiet=True, contributions="none")
    np.testing.assert_allclose(b.obsm[f"X_{KEY}"], mem.obsm[f"X_{KEY}"], rtol=1e-5, atol=1e-5)
    b.file.close()
