"""Every consumer of contributions works when only the model holds them.

``pbmc_fitted`` stores the per-cell array; ``pbmc_none`` is the same fit (same seed, same
model) with ``contributions='none'``: whatever reads contributions must give the same numbers
from the model.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scanpy as sc

import scglassbox as gb
from tests.conftest import _quiet_logs

KEY = "glassbox_umap"


@pytest.fixture(scope="module")
def pbmc_none():
    _quiet_logs()
    adata = sc.datasets.pbmc68k_reduced()
    gb.tl.glassbox_umap(adata, epochs=20, random_state=0, quiet=True, contributions="none")
    assert f"{KEY}_contributions" not in adata.obsm
    return adata


def test_same_fit(pbmc_fitted, pbmc_none):
    np.testing.assert_array_equal(pbmc_none.obsm[f"X_{KEY}"], pbmc_fitted.obsm[f"X_{KEY}"])


@pytest.mark.parametrize("view", ["l2", "normed_l2", "dim1", "dim2"])
def test_get_views(pbmc_fitted, pbmc_none, view):
    ref = gb.get.contributions_df(pbmc_fitted, view)
    got = gb.get.contributions_df(pbmc_none, view)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-6 * np.abs(ref.to_numpy()).max())


@pytest.mark.parametrize("reference", [None, "rest", "Dendritic"])
def test_rank_contributions(pbmc_fitted, pbmc_none, reference):
    kw = {"reference": reference, "copy": True}
    ref = gb.tl.rank_contributions(pbmc_fitted, "bulk_labels", **kw)
    got = gb.tl.rank_contributions(pbmc_none, "bulk_labels", **kw)
    ukey = f"{KEY}_rank_bulk_labels" + ("" if reference is None else f"_vs_{reference}")
    res_ref, res = ref.uns[ukey], got.uns[ukey]
    np.testing.assert_array_equal(res["groups"], res_ref["groups"])
    scale = np.abs(res_ref["mean"]).max()
    np.testing.assert_allclose(res["mean"], res_ref["mean"], rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize(
    "draw",
    [
        lambda a: gb.pl.contributions(a, ["CST3", "NKG7"], view="dim1", show=False),
        lambda a: gb.pl.top_feature(a, show=False),
        lambda a: gb.pl.contribution_bars(a, groupby="bulk_labels", show=False),
        lambda a: gb.pl.contribution_dotplot(a, "bulk_labels", show=False),
        lambda a: gb.pl.contribution_matrixplot(a, "bulk_labels", show=False),
        lambda a: gb.pl.compare_markers(a, "bulk_labels", show=False),
        lambda a: gb.pl.ranking(a, show=False),
    ],
    ids=["contributions", "top_feature", "bars", "dotplot", "matrixplot", "markers", "ranking"],
)
def test_plots(pbmc_none, draw):
    draw(pbmc_none)
    plt.close("all")


def test_explore(pbmc_fitted, pbmc_none):
    pytest.importorskip("bokeh")
    from scglassbox.pl import _explore_data

    assert gb.pl.explore(pbmc_none, groupby="bulk_labels", show=False) is not None
    # The data sent to the browser is the same as with the cache.
    kw = {"n_genes": 30, "n_genes_per_group": 3, "genes": None, "n_top": 10}
    kw.update(max_cells=None, random_state=0, key=KEY, groupby="bulk_labels")
    ref = _explore_data.from_adata(pbmc_fitted, **kw)
    got = _explore_data.from_adata(pbmc_none, **kw)
    assert got.genes == ref.genes
    np.testing.assert_array_equal(got.top, ref.top)
    np.testing.assert_allclose(got.total, ref.total, rtol=1e-5)


def test_transform_and_ensemble(pbmc_none):
    q = sc.datasets.pbmc68k_reduced()[:50].copy()
    gb.tl.glassbox_transform(q, pbmc_none, contributions="none")
    np.testing.assert_allclose(
        q.obsm[f"X_{KEY}"], pbmc_none.obsm[f"X_{KEY}"][:50], rtol=1e-5, atol=1e-5
    )
    c = gb.get.contributions(q)
    assert np.abs(c.sum(-1) - q.obsm[f"X_{KEY}"]).max() <= 1e-5 * np.abs(c.sum(-1)).max()
