import numpy as np
import pytest

from scglassbox.get import _contributions as get_contributions
from scglassbox.get import contribution_view as get_view
from scglassbox.pl import _read as v


@pytest.mark.parametrize("view", ["l2", "normed_l2", "dim1", "dim2"])
def test_contribution_view_matches_get(pbmc_gb, view):
    values, names = v.contribution_view(pbmc_gb, view)
    ref, ref_names = get_view(pbmc_gb, view)
    np.testing.assert_array_equal(names, ref_names)
    np.testing.assert_allclose(values, ref, rtol=1e-6, atol=1e-7)
    assert values.dtype == np.float32


def test_contribution_view_definitions(linear_gb):
    c = linear_gb.obsm["glassbox_umap_contributions"].astype(np.float64)
    l2 = np.sqrt((c**2).sum(axis=1))
    np.testing.assert_allclose(v.contribution_view(linear_gb, "l2")[0], l2, rtol=1e-5)
    normed = v.contribution_view(linear_gb, "normed_l2")[0]
    np.testing.assert_allclose(normed.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(v.contribution_view(linear_gb, "dim2")[0], c[:, 1], rtol=1e-6)


def test_chunked_subsets(linear_gb, monkeypatch):
    monkeypatch.setattr(get_contributions, "CHUNK_CELLS", 64)
    full, names = v.contribution_view(linear_gb, "normed_l2")
    genes = [names[5], names[0], names[17]]
    cells = np.arange(linear_gb.n_obs) % 3 == 0
    part, part_names = v.contribution_view(linear_gb, "normed_l2", genes=genes, cells=cells)
    assert list(part_names) == genes
    # normed_l2 is normalised over all genes, not over the requested ones
    np.testing.assert_allclose(part, full[cells][:, [5, 0, 17]], rtol=1e-6)


def test_float16_storage(linear_gb):
    a = linear_gb.copy()
    a.obsm["glassbox_umap_contributions"] = a.obsm["glassbox_umap_contributions"].astype(np.float16)
    values, _ = v.contribution_view(a, "l2")
    ref, _ = v.contribution_view(linear_gb, "l2")
    assert values.dtype == np.float32
    np.testing.assert_allclose(values, ref, rtol=2e-3, atol=1e-4)


def test_errors(linear_gb):
    with pytest.raises(KeyError, match=r"not among the .* genes.*'NOPE1', 'NOPE2'"):
        v.contribution_view(linear_gb, "l2", genes=["CST3", "NOPE1", "NOPE2"])
    with pytest.raises(ValueError, match="view must be"):
        v.contribution_view(linear_gb, "dim3")
    with pytest.raises(KeyError, match=r"run gb\.tl\.glassbox_umap"):
        v.contribution_view(linear_gb, "l2", key="other")
    a = linear_gb.copy()
    del a.obsm["glassbox_umap_contributions"]
    with pytest.raises(KeyError, match="holds no model"):
        v.contribution_view(a, "l2")


def test_selection_stats(linear_gb, monkeypatch):
    monkeypatch.setattr(get_contributions, "CHUNK_CELLS", 100)
    values, _ = v.contribution_view(linear_gb, "dim1")
    rng = np.random.default_rng(0)
    masks = [rng.random(linear_gb.n_obs) < 0.3, np.arange(linear_gb.n_obs) == 7]
    mean, sem, n, _ = v.selection_stats(linear_gb, "dim1", "glassbox_umap", masks)
    np.testing.assert_array_equal(n, [m.sum() for m in masks])
    np.testing.assert_allclose(mean[0], values[masks[0]].mean(axis=0), rtol=1e-5, atol=1e-8)
    ref_sem = values[masks[0]].std(axis=0, ddof=1) / np.sqrt(masks[0].sum())
    np.testing.assert_allclose(sem[0], ref_sem, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(mean[1], values[7], rtol=1e-6)
    assert np.isnan(sem[1]).all()  # one cell: the SEM is undefined, the same in every summary


def test_in_top_k(linear_gb):
    values, names = v.contribution_view(linear_gb, "dim1")
    genes = list(names[:40])
    hits = v.in_top_k(linear_gb, "dim1", "glassbox_umap", genes, 5)
    rank = (-np.abs(values)).argsort(axis=1)[:, :5]
    ref = np.array([[g in set(r) for g in range(40)] for r in rank])
    np.testing.assert_array_equal(hits, ref)


def test_linear_fixture_has_a_fits_layout(linear_gb, pbmc_gb):
    """The training-free glass box of the baselines sits where, and as, a real fit does."""
    key = "glassbox_umap"
    for attr in ("obsm", "varm"):
        ours, fits = getattr(linear_gb, attr), getattr(pbmc_gb, attr)
        assert {k for k in ours if key in k} == {k for k in fits if key in k}
        for k in (k for k in ours if key in k):
            assert (ours[k].dtype, ours[k].ndim) == (fits[k].dtype, fits[k].ndim), k
            assert ours[k].shape[:2] == fits[k].shape[:2], k
    assert set(linear_gb.uns[key]) <= set(pbmc_gb.uns[key])
    assert set(linear_gb.uns[key]["params"]) <= set(pbmc_gb.uns[key]["params"])
