"""``batch_key``: the batch as exact input features, a per-cell batch term and share."""

import anndata as ad
import numpy as np
import pytest

import scglassbox as gb

from ..conftest import _quiet_logs
from .test_rep import FIT, _batches, _sums_to_embedding

N_BATCHES = 3


@pytest.fixture(scope="module")
def bbknn_fit():
    """BBKNN's graph on scanpy's PCA (graph-only integration), fitted with batch_key."""
    import bbknn

    _quiet_logs()
    adata = _batches()
    bbknn.bbknn(adata, batch_key="batch")
    before = adata.copy()
    gb.tl.glassbox_umap(adata, batch_key="batch", **FIT)
    return before, adata


def _batch_cols(adata, key="glassbox_umap"):
    names = np.asarray(adata.uns[key]["var_names"]).astype(str)
    return names, np.flatnonzero(np.char.startswith(names, "batch="))


def test_coordinates_split_into_genes_and_a_batch_term(bbknn_fit):
    _, adata = bbknn_fit
    info = adata.uns["glassbox_umap"]
    names, cols = _batch_cols(adata)
    hvg = list(adata.var_names[adata.var.highly_variable])
    assert list(names[: len(hvg)]) == hvg  # the genes, as without batch_key
    assert list(names[len(hvg) :]) == [f"batch=batch_{i}" for i in range(N_BATCHES)]
    assert info["params"]["batch_key"] == "batch"
    assert "reused scanpy's PCA" in info["input"] and "indicator column" in info["input"]
    C = adata.obsm["glassbox_umap_contributions"]
    emb = adata.obsm["X_glassbox_umap"]
    _sums_to_embedding(C, emb)
    assert info["exactness"] <= 1e-5
    # Only the cell's own batch column is non-zero: the term is that column's contribution.
    codes = adata.obs["batch"].cat.codes.to_numpy()
    own = C[np.arange(adata.n_obs), :, cols[codes]]
    np.testing.assert_array_equal(np.delete(C[:, :, cols], 0, axis=2)[codes == 0], 0)
    term = gb.get.batch_contributions(adata)
    np.testing.assert_allclose(term, own, atol=1e-7)
    np.testing.assert_allclose(
        C[:, :, : len(hvg)].sum(-1) + term, emb, atol=1e-5 * np.abs(emb).max()
    )
    # The share: the term's L2 over the sum of every feature's L2, in [0, 1].
    share = adata.obs["glassbox_umap_batch_share"].to_numpy()
    norms = np.linalg.norm(C.astype(np.float64), axis=1).sum(-1)
    np.testing.assert_allclose(share, np.linalg.norm(own, axis=1) / norms, rtol=1e-5)
    assert ((share >= 0) & (share <= 1)).all() and share.max() > 0
    # varm keeps one row per gene of var; the batch's own summary is in uns and the table
    assert adata.varm["glassbox_umap_contributions"].shape == (adata.n_vars, 2)
    np.testing.assert_allclose(
        info["batch"]["importance"], np.abs(C[:, :, cols]).mean(0).T, rtol=1e-4
    )
    df = gb.get.gene_importance_df(adata)
    assert {f"batch=batch_{i}" for i in range(N_BATCHES)} <= set(df.index)
    assert len(df) == len(names)


def test_batch_term_selection_and_errors(bbknn_fit):
    before, adata = bbknn_fit
    term = gb.get.batch_contributions(adata)
    np.testing.assert_array_equal(gb.get.batch_contributions(adata, obs=[5, 2]), term[[5, 2]])
    with pytest.raises(ValueError, match="read no batch"):
        b = before.copy()
        gb.tl.glassbox_umap(b, **FIT)
        gb.get.batch_contributions(b)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_round_trip_recomputes_exact_contributions(bbknn_fit, tmp_path, fmt):
    _, adata = bbknn_fit
    a = adata.copy()
    del a.obsm["glassbox_umap_contributions"]
    path = tmp_path / f"b.{fmt}"
    getattr(a, f"write_{fmt}")(path)
    b = getattr(ad, f"read_{fmt}")(path)
    C = gb.get.contributions(b)  # recomputed: genes from X, batch columns from obs
    _sums_to_embedding(C, b.obsm["X_glassbox_umap"])
    np.testing.assert_allclose(C, adata.obsm["glassbox_umap_contributions"], atol=1e-5)
    np.testing.assert_allclose(gb.get.batch_contributions(b), gb.get.batch_contributions(adata),
                               atol=1e-6)  # fmt: skip
    # the batch column is what places the term: without it nothing can be recomputed
    del b.obs["batch"]
    with pytest.raises(KeyError, match="batch_key='batch'"):
        gb.get.contributions(b)


def test_lazy_storage_reads_the_batch(bbknn_fit):
    before, adata = bbknn_fit
    a = before.copy()
    gb.tl.glassbox_umap(a, batch_key="batch", contributions="lazy", **FIT)
    C = np.asarray(a.obsm["glassbox_umap_contributions"])
    np.testing.assert_allclose(C, adata.obsm["glassbox_umap_contributions"], atol=1e-5)
    np.testing.assert_array_equal(
        a.obs["glassbox_umap_batch_share"], adata.obs["glassbox_umap_batch_share"]
    )


def test_transform_places_known_batches_and_refuses_new_ones(bbknn_fit):
    _, adata = bbknn_fit
    query = adata[:80].copy()
    for k in ("X_glassbox_umap", "glassbox_umap_contributions"):
        del query.obsm[k]
    del query.obs["glassbox_umap_batch_share"]
    gb.tl.glassbox_transform(query, adata)
    np.testing.assert_allclose(
        query.obsm["X_glassbox_umap"], adata.obsm["X_glassbox_umap"][:80], atol=1e-4
    )
    _sums_to_embedding(query.obsm["glassbox_umap_contributions"], query.obsm["X_glassbox_umap"])
    np.testing.assert_allclose(
        query.obs["glassbox_umap_batch_share"], adata.obs["glassbox_umap_batch_share"][:80],
        atol=1e-4,
    )  # fmt: skip
    lazy = adata[:80].copy()
    gb.tl.glassbox_transform(lazy, adata, contributions="lazy", key_added="q")
    np.testing.assert_allclose(
        np.asarray(lazy.obsm["q_contributions"]), query.obsm["glassbox_umap_contributions"],
        atol=1e-5,
    )  # fmt: skip
    new = adata[:30].copy()
    new.obs["batch"] = new.obs["batch"].cat.rename_categories({"batch_0": "batch_9"})
    snapshot = {k: v.copy() for k, v in new.obsm.items()}
    with pytest.raises(ValueError, match=r"not trained on: \['batch_9'\]"):
        gb.tl.glassbox_transform(new, adata, key_added="new")
    assert "new" not in new.uns and set(new.obsm) == set(snapshot)
    missing = adata[:30].copy()
    del missing.obs["batch"]
    with pytest.raises(KeyError, match="batch_key='batch'"):
        gb.tl.glassbox_transform(missing, adata, key_added="new")


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        (lambda a: None, KeyError, "batch_key='nope'"),
        (lambda a: a.obs.__setitem__("nope", "one"), ValueError, "one batch"),
        (
            lambda a: a.obs.__setitem__("nope", [None] + ["b"] * (a.n_obs - 1)),
            ValueError,
            "missing values",
        ),
    ],
)
def test_bad_batch_key_is_refused_and_changes_nothing(bbknn_fit, setup, error, match):
    before, _ = bbknn_fit
    a = before.copy()
    setup(a)
    snapshot = a.copy()
    with pytest.raises(error, match=match):
        gb.tl.glassbox_umap(a, batch_key="nope", **FIT)
    assert set(a.obsm) == set(snapshot.obsm) and set(a.uns) == set(snapshot.uns)
    assert set(a.varm) == set(snapshot.varm) and list(a.obs) == list(snapshot.obs)


def test_batch_feature_names_may_not_clash_with_genes(bbknn_fit):
    before, _ = bbknn_fit
    a = before.copy()
    names = list(a.var_names)
    hv = np.flatnonzero(a.var.highly_variable)[0]
    names[hv] = "batch=batch_1"
    a.var_names = names
    with pytest.raises(ValueError, match="also names of genes"):
        gb.tl.glassbox_umap(a, batch_key="batch", **FIT)
    assert "glassbox_umap" not in a.uns


@pytest.mark.parametrize("kwargs", [{"use_pca": False}, {"n_pcs": 10}])
def test_own_pca_and_no_pca_keep_the_batch_out_of_the_projection(kwargs):
    """Without scanpy's PCA: the projection is fitted on the genes alone (block-diagonal)."""
    import scanpy as sc

    _quiet_logs()
    adata = _batches(n_obs=300, seed=2)
    adata = adata[:, adata.var.highly_variable].copy()
    del adata.obsm["X_pca"], adata.varm["PCs"]
    sc.pp.neighbors(adata, use_rep="X", n_neighbors=10)
    gb.tl.glassbox_umap(adata, batch_key="batch", **kwargs, **FIT)
    est = gb.GlassBoxUMAP.from_adata(adata)
    n_genes = adata.n_vars
    np.testing.assert_array_equal(est.mean_[n_genes:], 0)  # not centred: baseline "no batch"
    if kwargs.get("use_pca") is False:
        assert est.components_ is None
    else:
        comps = est.components_
        assert comps.shape == (n_genes + N_BATCHES, 10 + N_BATCHES)
        np.testing.assert_array_equal(comps[n_genes:, 10:], np.eye(N_BATCHES))
        np.testing.assert_array_equal(comps[:n_genes, 10:], 0)
        np.testing.assert_array_equal(comps[n_genes:, :10], 0)
    _sums_to_embedding(adata.obsm["glassbox_umap_contributions"], adata.obsm["X_glassbox_umap"])


def test_with_a_corrected_pca_both_apply(bbknn_fit):
    before, _ = bbknn_fit
    a = before.copy()
    rng = np.random.default_rng(0)
    a.obsm["X_pca_c"] = a.obsm["X_pca"] + rng.normal(0, 0.1, a.obsm["X_pca"].shape)
    gb.tl.glassbox_umap(a, use_rep="X_pca_c", batch_key="batch", **FIT)
    info = a.uns["glassbox_umap"]
    assert info["params"]["source"] == "obsm/X_pca_c" and "corrected PCA" in info["input"]
    C = a.obsm["glassbox_umap_contributions"]
    _sums_to_embedding(C, a.obsm["X_glassbox_umap"])
    del a.obsm["glassbox_umap_contributions"]
    np.testing.assert_allclose(gb.get.contributions(a), C, atol=1e-5)
    q = a[:40].copy()
    gb.tl.glassbox_transform(q, a, key_added="q")
    np.testing.assert_allclose(q.obsm["X_q"], a.obsm["X_glassbox_umap"][:40], atol=1e-4)


def test_refit_without_batch_key_removes_the_share(bbknn_fit):
    _, adata = bbknn_fit
    a = adata.copy()
    gb.tl.glassbox_umap(a, epochs=1, random_state=0, quiet=True)
    assert "glassbox_umap_batch_share" not in a.obs and "batch" not in a.uns["glassbox_umap"]
    assert a.uns["glassbox_umap"]["params"]["batch_key"] == "none"


def test_same_seed_same_result(bbknn_fit):
    before, adata = bbknn_fit
    a = before.copy()
    gb.tl.glassbox_umap(a, batch_key="batch", **FIT)
    np.testing.assert_array_equal(a.obsm["X_glassbox_umap"], adata.obsm["X_glassbox_umap"])


def test_plot_shows_batches_and_share(bbknn_fit):
    _, adata = bbknn_fit
    a = adata.copy()
    fig = gb.pl.batch_share(a, show=False, return_fig=True)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["batch", "batch share"]
    bar = fig.axes[-1]
    assert "batch term" in bar.get_ylabel()
    assert set(a.uns) == set(adata.uns)  # no colours written into the user's object
    b = adata.copy()
    gb.tl.glassbox_umap(b, epochs=1, random_state=0, quiet=True)
    with pytest.raises(ValueError, match="read no batch"):
        gb.pl.batch_share(b, show=False)


def test_cli_batch_key(bbknn_fit, tmp_path, capsys):
    from scglassbox import cli

    before, _ = bbknn_fit
    src, out = tmp_path / "in.h5ad", tmp_path / "out.h5ad"
    before.write_h5ad(src)
    args = ["run", str(src), "-o", str(out), "--epochs", "2", "-q", "--batch-key", "batch"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "obs['glassbox_umap_batch_share']" in printed and "batch term (batch)" in printed
    b = ad.read_h5ad(out)
    _sums_to_embedding(gb.get.contributions(b), b.obsm["X_glassbox_umap"])
    assert cli.main(["run", str(src), "-o", str(out), "-q", "--batch-key", "nope"]) != 0


def test_explorer_reads_genes_and_batch_features(bbknn_fit):
    from scglassbox.pl._explore_data import _expression

    _, adata = bbknn_fit
    names, cols = _batch_cols(adata)
    cells = np.array([3, 0, 7])
    picked = np.array([names[0], names[cols[1]]])
    values = _expression(adata, "glassbox_umap", picked, cells)
    gene = adata[cells, names[0]].X
    np.testing.assert_allclose(
        values[:, 0], np.ravel(gene.toarray() if hasattr(gene, "toarray") else gene)
    )
    np.testing.assert_array_equal(values[:, 1], (adata.obs["batch"].iloc[cells] == "batch_1"))
    lay = gb.pl.explore(adata, groupby="cell_type", genes=[str(names[cols[0]])], show=False)
    feature = next(m for m in lay.references() if m.name == "feature")
    assert str(names[cols[0]]) in feature.completions  # the batch term asked for is sent


def test_ensemble_ranks_the_batch_features(bbknn_fit):
    before, adata = bbknn_fit
    b = before.copy()
    gb.tl.glassbox_ensemble(b, "cell_type", seeds=(0, 1), epochs=2, quiet=True, batch_key="batch")
    res = b.uns["glassbox_ensemble_cell_type"]
    assert list(res["genes"]) == list(adata.uns["glassbox_umap"]["var_names"])
    assert np.isfinite(res["mean"]).all() and (res["mean"][:, -N_BATCHES:] > 0).any()
