"""Seeded synthetic data: ``synthetic_trajectory`` (the cluster generators are used everywhere)."""

import numpy as np
import pytest

import scglassbox as gb
from scglassbox.datasets import synthetic_trajectory


def test_trajectory_is_seeded_and_labelled():
    a = synthetic_trajectory(400, 100, seed=5)
    b = synthetic_trajectory(400, 100, seed=5)
    c = synthetic_trajectory(400, 100, seed=6)
    assert a.shape == (400, 100)
    assert (a.X != b.X).nnz == 0 and (a.X != c.X).nnz > 0
    assert list(a.obs["branch"].cat.categories) == ["trunk", "branch_1", "branch_2", "branch_3"]
    trunk = (a.obs["branch"] == "trunk").to_numpy()
    t = a.obs["pseudotime"].to_numpy()
    assert (t[trunk] <= 1).all() and (t[~trunk] >= 1).all() and (t <= 2).all()
    assert a.X.dtype == np.float32 and np.array_equal(a.X.data, np.round(a.X.data))


def test_trajectory_is_one_branched_manifold():
    """The kNN graph joins the trunk's end to every branch's start, and nothing else across."""
    import scanpy as sc

    adata = synthetic_trajectory(3000, 1000, n_branches=3, seed=1)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=20)
    sc.pp.neighbors(adata, n_neighbors=15)
    g = adata.obsp["connectivities"].tocoo()
    branch = adata.obs["branch"].to_numpy()
    t = adata.obs["pseudotime"].to_numpy()
    cross = branch[g.row] != branch[g.col]
    assert cross.any()
    # Edges between segments join cells near the branch point (pseudotime 1); far from it a
    # segment's cells differ from the others' by its programme, beyond the sampling noise.
    off = np.abs(t[g.row[cross]] - 1)
    assert np.median(off) < 0.25 and np.quantile(off, 0.95) < 0.5
    for b in ("branch_1", "branch_2", "branch_3"):
        assert ((branch[g.row] == "trunk") & (branch[g.col] == b)).any()
    # Along the trunk, expression changes with pseudotime: the first PC follows it.
    trunk = branch == "trunk"
    r = np.corrcoef(adata.obsm["X_pca"][trunk, :3].T, t[trunk])[-1, :3]
    assert np.abs(r).max() > 0.8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_branches": 1}, "n_branches"),
        ({"trunk_share": 1.0}, "trunk_share"),
        ({"programme_share": 0.0}, "programme_share"),
        ({"n_obs": 0}, "n_obs"),
    ],
)
def test_trajectory_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic_trajectory(**{"n_obs": 50, "n_vars": 20, **kwargs})


def test_trajectory_is_exported():
    assert gb.datasets.synthetic_trajectory is synthetic_trajectory
