"""Issue 12, AnnData side: bad input gets a clear error (or correct output), and the user's
AnnData is bit-identical afterwards, including a previous result under the same key.

Model-file and estimator cases live in test_bad_input_model.py; the CLI's atomic writes (a full
disk, Ctrl-C while writing) in test_cli.py (test_disk_full_or_interrupt_keeps_the_input).
Every fit here is tiny (300 cells x 100 genes, 2 epochs).
"""

import copy

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import scglassbox as gb
from scglassbox import _keys

from .conftest import _quiet_logs, make_synthetic

KEY = _keys.DEFAULT_KEY
FIT = {"epochs": 2, "quiet": True, "random_state": 0}


# ---------------------------------------------------------------- snapshot: bit-identical or not


def _copy(value):
    if isinstance(value, pd.DataFrame | pd.Series):
        return value.copy(deep=True)
    if sparse.issparse(value) or isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)


def snapshot(adata) -> dict:
    """A deep copy of everything a tool could change."""
    return {
        "shape": adata.shape,
        "obs": adata.obs.copy(deep=True),
        "var": adata.var.copy(deep=True),
        "X": _copy(adata.X),
        **{
            slot: {k: _copy(v) for k, v in getattr(adata, slot).items()}
            for slot in ("layers", "obsm", "varm", "obsp")
        },
        "uns": copy.deepcopy(dict(adata.uns)),
    }


def assert_same(a, b, path="adata"):
    """``a`` and ``b`` hold the same keys, types, dtypes and bytes (NaN payloads included)."""
    if isinstance(a, dict):
        assert isinstance(b, dict), path
        assert sorted(map(str, a)) == sorted(map(str, b)), f"{path}: keys differ"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, pd.DataFrame | pd.Series):
        assert type(a) is type(b), path
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b, check_exact=True, obj=path)
        else:
            pd.testing.assert_series_equal(a, b, check_exact=True, obj=path)
    elif sparse.issparse(a):
        assert sparse.issparse(b) and a.format == b.format, path
        assert a.dtype == b.dtype and a.shape == b.shape, path
        for part in ("data", "indices", "indptr"):
            assert_same(getattr(a, part), getattr(b, part), f"{path}.{part}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), f"{path}: {type(b).__name__}"
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: dtype/shape"
        if a.dtype == object:
            assert a.tolist() == b.tolist(), path
        else:
            assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), path
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), path
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


def assert_unchanged(adata, before: dict) -> None:
    assert_same(before, snapshot(adata))


# ---------------------------------------------------------------- data


@pytest.fixture(scope="module")
def base():
    """300 x 100 processed synthetic set with a previous result under the default key."""
    _quiet_logs()
    adata = make_synthetic(n_obs=300, n_vars=100)
    gb.tl.glassbox_umap(adata, **FIT)
    return adata


@pytest.fixture
def adata(base):
    return base.copy()


def _hvg_col(a) -> int:
    return int(np.flatnonzero(a.var["highly_variable"].to_numpy())[0])


def _dense(a, dtype=np.float32) -> np.ndarray:
    return (a.X.toarray() if sparse.issparse(a.X) else np.asarray(a.X)).astype(dtype)


def _set_dense(value, dtype=np.float32):
    def mutate(a):
        X = _dense(a, dtype)
        X[3, _hvg_col(a)] = value
        a.X = X

    return mutate


def _sparse_value(value):
    def mutate(a):
        X = sparse.csr_matrix(a.X, copy=True)
        col = _hvg_col(a)
        row = int(np.flatnonzero(X[:, col].toarray().ravel())[0])
        X[row, col] = value
        a.X = X

    return mutate


def _layer_value(value):
    def mutate(a):
        X = _dense(a)
        X[0, _hvg_col(a)] = value
        a.layers["bad"] = X

    return mutate


def _string_x(a):
    a.X = _dense(a).astype(str)


def _duplicate_var_names(a):
    names = a.var_names.to_numpy().copy()
    names[1] = names[0]
    a.var_names = names


def _del_uns_neighbors(a):
    del a.uns["neighbors"]


def _uns_neighbors_not_dict(a):
    a.uns["neighbors"] = "connectivities"


def _del_obsp(a):
    del a.obsp["connectivities"]


def _mask_all_false(a):
    a.var["none"] = False


def _mask_nullable_na(a):
    col = pd.array(a.var["highly_variable"].to_numpy(), dtype="boolean")
    col[0] = pd.NA
    a.var["hv_na"] = col


def _mask_float_nan(a):
    col = a.var["highly_variable"].to_numpy().astype(float)
    col[0] = np.nan
    a.var["hv_float"] = col


def _graph_outlier(a):
    g = sparse.csr_matrix(a.obsp["connectivities"], copy=True)
    g.data[0] = 1e30
    a.obsp["connectivities"] = g


def _graph_negative(a):
    g = sparse.csr_matrix(a.obsp["connectivities"], copy=True)
    g.data[0] = -1.0
    a.obsp["connectivities"] = g


def _nothing(a):
    pass


# (id, mutate, kwargs, exception, message)
UMAP_CASES = [
    ("nan_in_X", _set_dense(np.nan), {}, ValueError, r"adata\.X holds 1 NaN"),
    ("inf_in_X", _set_dense(np.inf), {}, ValueError, r"adata\.X holds 1 infinite"),
    ("nan_in_sparse_X", _sparse_value(np.nan), {}, ValueError, r"adata\.X holds 1 NaN"),
    ("inf_in_sparse_X", _sparse_value(-np.inf), {}, ValueError, r"adata\.X holds 1 infinite"),
    ("nan_in_layer", _layer_value(np.nan), {"layer": "bad"}, ValueError,
     r"adata\.layers\['bad'\] holds 1 NaN"),
    ("inf_in_layer", _layer_value(np.inf), {"layer": "bad"}, ValueError,
     r"adata\.layers\['bad'\] holds 1 infinite"),
    ("1e39_float64_X", _set_dense(1e39, np.float64), {}, ValueError,
     r"adata\.X holds 1 value\(s\) beyond float32's range"),
    ("string_X", _string_x, {}, ValueError, r"numeric"),
    ("duplicate_var_names", _duplicate_var_names, {}, ValueError, r"not unique"),
    ("key_added_slash", _nothing, {"key_added": "a/b"}, ValueError, r"contains '/'"),
    ("random_state_negative", _nothing, {"random_state": -1}, ValueError, r"random_state"),
    ("random_state_huge", _nothing, {"random_state": 2**40}, ValueError, r"random_state"),
    ("key_added_int", _nothing, {"key_added": 123}, ValueError, r"non-empty string"),
    ("key_added_empty", _nothing, {"key_added": ""}, ValueError, r"non-empty string"),
    ("key_added_pca", _nothing, {"key_added": "pca"}, ValueError, r"scanpy's own tools"),
    ("key_added_neighbors", _nothing, {"key_added": "neighbors"}, ValueError, r"scanpy's own"),
    ("no_uns_neighbors", _del_uns_neighbors, {}, ValueError, r"run sc.pp.neighbors"),
    ("uns_neighbors_not_dict", _uns_neighbors_not_dict, {}, ValueError, r"not the dict"),
    ("no_obsp_connectivities", _del_obsp, {}, ValueError, r"obsp\['connectivities'\]"),
    ("mask_var_missing", _nothing, {"mask_var": "nope"}, ValueError, r"not a column of var"),
    ("mask_var_all_false", _mask_all_false, {"mask_var": "none"}, ValueError, r"no genes"),
    ("mask_var_nullable_na", _mask_nullable_na, {"mask_var": "hv_na"}, ValueError, r"missing"),
    ("mask_var_float_nan", _mask_float_nan, {"mask_var": "hv_float"}, ValueError, r"missing"),
    ("n_pcs_0", _nothing, {"n_pcs": 0}, ValueError, r"n_pcs"),
    ("n_pcs_negative", _nothing, {"n_pcs": -3}, ValueError, r"n_pcs"),
    ("n_pcs_float", _nothing, {"n_pcs": 2.5}, ValueError, r"n_pcs"),
    ("contributions_bogus", _nothing, {"contributions": "bogus"}, ValueError, r"contributions"),
    ("trainer_owned_option", _nothing, {"trainer_kwargs": {"max_epochs": 5}}, ValueError,
     r"max_epochs"),
    ("graph_weight_outlier", _graph_outlier, {}, ValueError, r"times the median"),
    ("graph_weight_negative", _graph_negative, {}, ValueError, r"non-negative"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "kwargs", "exc", "match"),
    [pytest.param(*case[1:], id=case[0]) for case in UMAP_CASES],
)
def test_glassbox_umap_refuses_and_leaves_adata_unchanged(adata, mutate, kwargs, exc, match):
    mutate(adata)
    before = snapshot(adata)
    with pytest.raises(exc, match=match):
        gb.tl.glassbox_umap(adata, **{**FIT, **kwargs})
    assert_unchanged(adata, before)


def test_nan_in_a_gene_outside_the_mask_is_fine(adata):
    """Only the genes used are checked: NaN in a gene that mask_var leaves out is no error."""
    adata.var["use"] = np.arange(adata.n_vars) != 5
    X = _dense(adata)
    X[0, 5] = np.nan
    adata.X = X
    gb.tl.glassbox_umap(adata, key_added="masked", mask_var="use", **FIT)
    assert np.isfinite(adata.obsm["X_masked"]).all()


# ---------------------------------------------------------------- glassbox_transform


def _query(base, n=40):
    q = base[:n].copy()
    for slot in (q.obsm, q.varm):
        for k in [k for k in slot if KEY in k]:
            del slot[k]
    del q.uns[KEY]
    return q


def _q_dense(value, dtype=np.float32):
    def mutate(q):
        X = _dense(q, dtype)
        X[2, _hvg_col(q)] = value
        q.X = X

    return mutate


def _q_no_cells(q):
    return q[:0].copy()


def _q_x_none(q):
    q.X = None


def _q_rename_genes(q):
    q.var_names = [f"other_{i}" for i in range(q.n_vars)]


TRANSFORM_CASES = [
    ("nan_query", _q_dense(np.nan), {}, r"adata.X holds 1 NaN value"),
    ("inf_query", _q_dense(np.inf), {}, r"adata.X holds 1 infinite value"),
    ("1e39_query", _q_dense(1e39, np.float64), {}, r"float32"),
    ("nan_sparse_query", _sparse_value(np.nan), {}, r"adata.X holds 1 NaN value"),
    ("zero_cells", _q_no_cells, {}, r"no cells"),
    ("X_none", _q_x_none, {}, r"None"),
    ("all_genes_missing_zero", _q_rename_genes, {"missing_genes": "zero"}, r"genes are missing"),
    ("all_genes_missing_error", _q_rename_genes, {}, r"missing_genes='zero'"),
    ("duplicate_var_names", _duplicate_var_names, {}, r"not unique"),
    ("key_added_slash", _nothing, {"key_added": "a/b"}, r"contains '/'"),
    ("key_added_pca", _nothing, {"key_added": "pca"}, r"scanpy's own tools"),
    ("missing_genes_bogus", _nothing, {"missing_genes": "drop"}, r"missing_genes"),
    ("contributions_bogus", _nothing, {"contributions": "bogus"}, r"contributions"),
    ("no_model_under_key", _nothing, {"key": "elsewhere"}, r"glassbox_umap"),
]


@pytest.mark.parametrize(
    ("mutate", "kwargs", "match"),
    [pytest.param(*case[1:], id=case[0]) for case in TRANSFORM_CASES],
)
def test_glassbox_transform_refuses_and_leaves_both_unchanged(base, mutate, kwargs, match):
    query = _query(base)
    changed = mutate(query)
    query = query if changed is None else changed
    before, ref_before = snapshot(query), snapshot(base)
    with pytest.raises((ValueError, KeyError), match=match):
        gb.tl.glassbox_transform(query, base, **kwargs)
    assert_unchanged(query, before)
    assert_unchanged(base, ref_before)


def _ref_duplicate_name(uns):
    names = np.array(uns["var_names"], dtype=object)
    names[3] = names[4]
    uns["var_names"] = names


def _ref_shorter(uns):
    uns["var_names"] = np.asarray(uns["var_names"])[:-10]


def _ref_reordered(uns):
    names = np.array(uns["var_names"], dtype=object)
    names[[0, 1]] = names[[1, 0]]
    uns["var_names"] = names


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (_ref_duplicate_name, r"duplicate gene names"),
        (_ref_shorter, r"lists \d+ genes but the model reads \d+"),
        (_ref_reordered, r"differs from the model's gene list at 2 positions"),
    ],
    ids=["duplicate", "shorter", "reordered"],
)
def test_damaged_reference_gene_list_is_refused(adata, damage, match):
    """A reference whose uns var_names no longer match its model: no silent column swap."""
    damage(adata.uns[KEY])
    query = _query(adata)
    before, ref_before = snapshot(query), snapshot(adata)
    with pytest.raises(ValueError, match=match):
        gb.tl.glassbox_transform(query, adata)
    assert_unchanged(query, before)
    assert_unchanged(adata, ref_before)
    with pytest.raises(ValueError, match=match):
        gb.get.contributions(adata)


def test_glassbox_transform_copies_the_model(base):
    query = _query(base)
    ref_before = snapshot(base)
    gb.tl.glassbox_transform(query, base)
    assert np.isfinite(query.obsm[f"X_{KEY}"]).all()
    q_model, r_model = query.uns[KEY]["model"], base.uns[KEY]["model"]
    assert q_model is not r_model
    for name, w in q_model["state_dict"].items():
        assert not np.shares_memory(w, r_model["state_dict"][name]), name
        w[...] = 0  # editing the query's model ...
    q_model["mean"][...] = 0
    q_model["params"]["n_components"] = 99
    assert_unchanged(base, ref_before)  # ... leaves the reference's intact


def test_glassbox_transform_is_the_reference_embedding(base):
    """A query of reference cells lands where those cells are (the correct output)."""
    query = _query(base)
    gb.tl.glassbox_transform(query, base)
    np.testing.assert_allclose(
        query.obsm[f"X_{KEY}"], base.obsm[f"X_{KEY}"][: query.n_obs], rtol=1e-4, atol=1e-4
    )


# ---------------------------------------------------------------- rank_contributions


def test_rank_contributions_leaves_out_cells_with_nan_group(adata, scanpy_log):
    labels = np.where(np.arange(adata.n_obs) % 2 == 0, "a", "b").astype(object)
    labels[:7] = np.nan
    adata.obs["grp"] = pd.Categorical(labels)
    gb.tl.rank_contributions(adata, "grp", key_added="ranked")
    assert "7 cells with no grp are left out" in scanpy_log.getvalue()
    got = adata.uns["ranked"]
    assert got["n_cells"].sum() == adata.n_obs - 7

    # The same as ranking only the labelled cells.
    clean = adata[~adata.obs["grp"].isna()].copy()
    gb.tl.rank_contributions(clean, "grp", key_added="ranked")
    want = clean.uns["ranked"]
    assert got["groups"].tolist() == want["groups"].tolist() == ["a", "b"]
    np.testing.assert_array_equal(got["n_cells"], want["n_cells"])
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-5)
    np.testing.assert_allclose(got["sem"], want["sem"], rtol=1e-5)


def test_rank_contributions_refusal_leaves_adata_unchanged(adata):
    adata.obs["empty"] = pd.Categorical([np.nan] * adata.n_obs, categories=["a"])
    before = snapshot(adata)
    with pytest.raises(ValueError, match="no cell with a value"):
        gb.tl.rank_contributions(adata, "empty")
    assert_unchanged(adata, before)


# ---------------------------------------------------------------- interrupts at each stage


def _interrupt_fit(monkeypatch, adata):
    from scglassbox import _training

    def step(self, batch, batch_idx):
        raise KeyboardInterrupt

    monkeypatch.setattr(_training.UMAPModule, "training_step", step)


def _interrupt_contributions(monkeypatch, adata):
    from scglassbox.tl import _results

    real = _results.stream_contributions

    def stream(*args, **kwargs):
        for chunk in real(*args, **kwargs):
            yield chunk  # the first chunk is done, then Ctrl-C
            raise KeyboardInterrupt

    monkeypatch.setattr(_results, "stream_contributions", stream)


def _interrupt_write(attrname, nth=1):
    """Ctrl-C on the ``nth`` write into ``adata.<attrname>`` (obsm, varm) or into uns."""

    def inject(monkeypatch, adata):
        if attrname == "uns":  # a plain dict: swap in a subclass that can be trapped
            adata.uns = type("TrappedUns", (dict,), {})(adata.uns)
        target = type(getattr(adata, attrname))

        def mapping_of(self):
            return self is adata.uns if attrname == "uns" else self.attrname == attrname

        real = target.__setitem__
        seen = []

        def setitem(self, key, value):
            if mapping_of(self):
                seen.append(key)
                if len(seen) == nth:
                    raise KeyboardInterrupt
            return real(self, key, value)

        monkeypatch.setattr(target, "__setitem__", setitem)

    return inject


INTERRUPTS = {
    "during_fit": _interrupt_fit,
    "during_contributions": _interrupt_contributions,
    "write_obsm_embedding": _interrupt_write("obsm", 1),
    "write_obsm_contributions": _interrupt_write("obsm", 2),
    "between_obsm_and_varm": _interrupt_write("varm", 1),
    "write_uns": _interrupt_write("uns", 1),
}


@pytest.mark.parametrize("stage", list(INTERRUPTS))
def test_interrupt_keeps_adata_and_previous_result(adata, monkeypatch, stage):
    before = snapshot(adata)
    assert f"X_{KEY}" in adata.obsm and KEY in adata.uns  # a previous result to keep
    INTERRUPTS[stage](monkeypatch, adata)
    with pytest.raises(KeyboardInterrupt):
        gb.tl.glassbox_umap(adata, **{**FIT, "random_state": 1, "contributions": "full"})
    monkeypatch.undo()
    assert_unchanged(adata, before)
    gb.get.contributions(adata)  # the previous result still reads back


def test_interrupt_in_transform_write_keeps_query(base, monkeypatch):
    query = _query(base)
    gb.tl.glassbox_transform(query, base)  # a previous mapping to keep
    before = snapshot(query)
    _interrupt_write("varm", 1)(monkeypatch, query)
    with pytest.raises(KeyboardInterrupt):
        gb.tl.glassbox_transform(query, base)
    monkeypatch.undo()
    assert_unchanged(query, before)


# ---------------------------------------------------------------- determinism


def test_same_seed_is_bitwise_identical(base):
    a, b = base.copy(), base.copy()
    for x in (a, b):
        gb.tl.glassbox_umap(x, **{**FIT, "random_state": 7}, key_added="det", contributions="full")
    for slot, k in (
        ("obsm", "X_det"),
        ("obsm", "det_contributions"),
        ("varm", "det_contributions"),
    ):
        assert_same(getattr(a, slot)[k], getattr(b, slot)[k], f"{slot}[{k!r}]")
    assert_same(a.uns["det"]["model"], b.uns["det"]["model"], "uns['det']['model']")
    np.testing.assert_array_equal(a.uns["det"]["loss_history"], b.uns["det"]["loss_history"])


# ---------------------------------------------------------------- correct output where it was wrong


def test_float16_storage_records_the_exactness_of_what_is_stored(adata):
    gb.tl.glassbox_umap(adata, **FIT, key_added="half", contributions="float16")
    info, stored = adata.uns["half"], adata.obsm["half_contributions"]
    assert stored.dtype == np.float16
    emb = adata.obsm["X_half"]
    recon = stored.astype(np.float64).sum(-1)
    measured = np.abs(recon - emb).max() / np.abs(emb).max()
    assert info["exactness"] < 1e-5
    np.testing.assert_allclose(info["exactness_stored"], measured, rtol=1e-3)
    assert info["exactness_stored"] >= info["exactness"]


def test_backed_sparse_x_works_and_matches_in_memory(base, tmp_path):
    import anndata as ad

    path = tmp_path / "backed.h5ad"
    base.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    gb.tl.glassbox_umap(backed, **FIT, key_added="bk")
    inmem = base.copy()
    gb.tl.glassbox_umap(inmem, **FIT, key_added="bk")
    assert_same(backed.obsm["X_bk"], inmem.obsm["X_bk"], "obsm['X_bk']")
    backed.file.close()
