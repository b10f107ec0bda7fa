import numpy as np
import pytest
import torch
from scipy import sparse

import scglassbox as gb
from scglassbox._contributions import exactness


def test_same_seed_is_bitwise_reproducible(wine):
    X, _ = wine
    a = gb.GlassBoxUMAP(random_state=3, epochs=5, quiet=True).fit_transform(X)
    b = gb.GlassBoxUMAP(random_state=3, epochs=5, quiet=True).fit_transform(X)
    c = gb.GlassBoxUMAP(random_state=4, epochs=5, quiet=True).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_transform_transform_and_shapes(fitted, wine):
    X, _ = wine
    emb = fitted.transform(X)
    assert emb.shape == (X.shape[0], 2) and emb.dtype == np.float32
    np.testing.assert_array_equal(emb, fitted.embedding_)
    assert fitted.loss_history_.shape == (30,) and np.isfinite(fitted.loss_history_).all()
    assert fitted.loss_history_[-5:].mean() < fitted.loss_history_[:5].mean()
    assert fitted.graph_.shape == (X.shape[0], X.shape[0])


def test_learns_structure(fitted, wine):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    _, y = wine
    acc = cross_val_score(KNeighborsClassifier(15), fitted.embedding_, y, cv=5).mean()
    assert acc > 0.85


def test_sparse_input_matches_dense(wine):
    X, _ = wine
    Xs = X.copy()
    Xs[np.abs(Xs) < 0.3] = 0
    kw = {"random_state": 0, "epochs": 3, "quiet": True}
    first = gb.GlassBoxUMAP(**kw).fit(Xs)
    # Same graph (sklearn's kNN distances differ in the last bits for sparse input); the
    # centring mean may differ by one float32 ulp, which training carries along.
    for fmt in (sparse.csr_matrix, sparse.csc_matrix):
        emb = gb.GlassBoxUMAP(**kw).fit_transform(fmt(Xs), graph=first.graph_)
        np.testing.assert_allclose(emb, first.embedding_, rtol=0, atol=1e-4)


def test_float64_and_int_input(wine):
    X, _ = wine
    est = gb.GlassBoxUMAP(random_state=0, epochs=3, quiet=True).fit(X.astype(np.float64))
    assert est.transform(X.astype(np.float64)).dtype == np.float32
    est.transform((X * 10).astype(np.int64))


def test_precomputed_graph_is_used(wine):
    X, _ = wine
    first = gb.GlassBoxUMAP(random_state=0, epochs=3, quiet=True).fit(X)
    again = gb.GlassBoxUMAP(random_state=0, epochs=3, quiet=True).fit(X, graph=first.graph_)
    np.testing.assert_array_equal(first.embedding_, again.embedding_)
    with pytest.raises(ValueError, match="graph has shape"):
        gb.GlassBoxUMAP(epochs=1, quiet=True).fit(X, graph=first.graph_[:10, :10])


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n_neighbors", 1),
        ("n_neighbors", 2.5),
        ("n_components", 0),
        ("min_dist", -0.1),
        ("spread", 0),
        ("negative_sample_rate", 0),
        ("repulsion_strength", float("nan")),
        ("pca_components", 0),
        ("lr", 0),
        ("epochs", -1),
        ("batch_size", True),
        ("random_state", "seed"),
        ("random_state", -1),
        ("random_state", 2**32),
        ("transform_seed", -5),
        ("encoder", "transformer"),
        ("metric", 3),
        ("precision", "16"),
    ],
)
def test_invalid_parameters_name_the_parameter(wine, param, value):
    X, _ = wine
    with pytest.raises(ValueError, match=param):
        gb.GlassBoxUMAP(**{param: value}, quiet=True).fit(X)


def test_min_dist_above_spread(wine):
    with pytest.raises(ValueError, match="min_dist"):
        gb.GlassBoxUMAP(min_dist=2.0, spread=1.0).fit(wine[0])


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.zeros(5), "2D array"),
        (np.array([["a", "b"]] * 20), "numeric"),
        (np.full((20, 3), np.nan), "NaN"),
        (np.zeros((0, 3)), "0 sample"),
        (np.zeros((1, 3)), "1 sample"),
        (np.full((20, 3), 1e39), "float32's range"),
    ],
)
def test_invalid_X(X, match):
    with pytest.raises(ValueError, match=match):
        gb.GlassBoxUMAP(quiet=True).fit(X)


def test_too_many_neighbours_and_components():
    X = np.random.default_rng(0).normal(size=(10, 4))
    # as umap-learn: n_neighbors is cut to n_samples - 1, with a warning
    with pytest.warns(UserWarning, match="n_neighbors"):
        gb.GlassBoxUMAP(quiet=True, epochs=1).fit(X)
    with pytest.raises(ValueError, match="pca_components"):
        gb.GlassBoxUMAP(pca_components=5, n_neighbors=3, quiet=True).fit(X)


def test_not_fitted_and_wrong_width(fitted):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        gb.GlassBoxUMAP().transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="13"):
        fitted.transform(np.zeros((2, 5)))


def test_custom_encoder_accepted(wine):
    X, _ = wine
    net = torch.nn.Sequential(
        torch.nn.Linear(13, 32, bias=False),
        torch.nn.LeakyReLU(0.1),
        torch.nn.Linear(32, 3, bias=False),
    )
    est = gb.GlassBoxUMAP(encoder=net, n_components=3, epochs=3, random_state=0, quiet=True)
    C, emb = est.fit(X).compute_contributions(X, return_embedding=True)
    assert C.shape == (X.shape[0], 3, 13)
    assert exactness(emb, C) <= 1e-5


@pytest.mark.parametrize(
    ("net", "match"),
    [
        (
            torch.nn.Sequential(torch.nn.Linear(13, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)),
            "do not sum",
        ),
        (
            torch.nn.Sequential(torch.nn.Linear(13, 8, bias=False), torch.nn.Tanh(),
                                torch.nn.Linear(8, 2, bias=False)),
            "do not sum",
        ),
        (torch.nn.Linear(13, 3, bias=False), "expected"),
        (torch.nn.Linear(5, 2, bias=False), "failed on input"),
    ],
)  # fmt: skip
def test_custom_encoder_refused(wine, net, match):
    with pytest.raises(ValueError, match=match):
        gb.GlassBoxUMAP(encoder=net, epochs=1, quiet=True).fit(wine[0])


def test_auto_epochs():
    from scglassbox._estimator import auto_epochs

    assert auto_epochs(3_000, 10_000) == 500
    assert auto_epochs(400_000, 10_000) == 25
    assert auto_epochs(50_000_000, 10_000) == 10


def test_repr(fitted):
    # scikit-learn's repr: the parameters that differ from their defaults
    assert repr(fitted) == "GlassBoxUMAP(epochs=30, quiet=True, random_state=0)"
    assert "GlassBoxUMAP" in fitted._repr_html_()


def test_auto_batch_size(wine, tmp_path):
    from scglassbox._estimator import auto_batch_size, auto_epochs

    assert auto_batch_size(178) == 10_000
    assert auto_batch_size(3_000) == 12_000
    assert auto_batch_size(5_000) == 20_000
    assert auto_batch_size(7_500) == 15_000
    assert auto_batch_size(20_000) == 10_000
    # Large graphs: the batch grows so that the 10-epoch floor takes about 1,000 steps.
    assert auto_batch_size(20_000, 400_000) == 10_000  # the floor is not binding
    assert auto_batch_size(60_000, 1_240_000) == 12_400
    assert auto_batch_size(100_000, 2_070_000) == 20_000
    assert auto_batch_size(1_000_000, 21_000_000) == 20_000  # capped: steps matter for quality
    assert auto_epochs(2_070_000, auto_batch_size(100_000, 2_070_000)) == 10
    assert auto_epochs(1_240_000, auto_batch_size(60_000, 1_240_000)) == 10
    X, _ = wine
    est = gb.GlassBoxUMAP(random_state=0, epochs=2, quiet=True).fit(X)
    assert est.batch_size is None
    from scglassbox._graph import edge_list

    assert est.batch_size_ == min(10_000, edge_list(est.graph_).n_edges)  # capped at |E|
    again = gb.GlassBoxUMAP.load(est.save(tmp_path / "m.npz"))
    assert again.batch_size is None and again.batch_size_ == est.batch_size_
    np.testing.assert_array_equal(again.transform(X), est.transform(X))
    fixed = gb.GlassBoxUMAP(random_state=0, epochs=2, batch_size=500, quiet=True).fit(X)
    assert fixed.batch_size_ == 500


# ---------------------------------------------------------------------- DataFrame feature names
@pytest.fixture(scope="module")
def wine_df():
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    df, _ = load_wine(as_frame=True, return_X_y=True)
    df[:] = StandardScaler().fit_transform(df)
    return df


@pytest.fixture(scope="module")
def fitted_df(wine_df):
    return gb.GlassBoxUMAP(random_state=0, epochs=3, quiet=True).fit(wine_df)


def test_dataframe_names_are_recorded(fitted_df, wine_df):
    assert list(fitted_df.feature_names_in_) == list(wine_df.columns)


def test_reordered_columns_are_aligned_by_name(fitted_df, wine_df):
    shuffled = wine_df[list(wine_df.columns[::-1])]
    np.testing.assert_array_equal(fitted_df.transform(shuffled), fitted_df.transform(wine_df))
    np.testing.assert_array_equal(
        fitted_df.compute_contributions(shuffled), fitted_df.compute_contributions(wine_df)
    )
    np.testing.assert_array_equal(
        fitted_df.compute_jacobian(shuffled), fitted_df.compute_jacobian(wine_df)
    )


def test_missing_columns_are_listed(fitted_df, wine_df):
    with pytest.raises(ValueError, match=r"'proline'.*'hue'|'hue'.*'proline'"):
        fitted_df.transform(wine_df.drop(columns=["proline", "hue"]))
    with pytest.raises(ValueError, match="'ash'"):
        fitted_df.compute_contributions(wine_df.drop(columns=["ash"]))


def test_numpy_after_dataframe_fit_warns_like_sklearn(fitted_df, wine_df):
    with pytest.warns(UserWarning, match="feature names"):
        fitted_df.transform(wine_df.to_numpy())


# ---------------------------------------------------------------------- umap-learn's names
#: A non-default value for each of umap.UMAP's parameters, and what it does here: "fit" (works
#: in a fit), "accepted" (validated only; a fit would be slow, e.g. pynndescent's JIT) or
#: "refused" (a clear ValueError naming the parameter at fit).
UMAP_NAMES = {
    "n_neighbors": (10, "fit"),
    "n_components": (3, "fit"),
    "metric": ("manhattan", "fit"),
    "metric_kwds": ({"p": 3.0}, "fit"),
    "output_metric": ("haversine", "refused"),
    "output_metric_kwds": ({"x": 1}, "refused"),
    "n_epochs": (2, "fit"),
    "learning_rate": (1e-3, "fit"),
    "init": ("spectral", "fit"),
    "min_dist": (0.3, "fit"),
    "spread": (2.0, "fit"),
    "low_memory": (False, "fit"),
    "n_jobs": (1, "fit"),
    "set_op_mix_ratio": (0.5, "fit"),
    "local_connectivity": (2.0, "fit"),
    "repulsion_strength": (0.5, "fit"),
    "negative_sample_rate": (3, "fit"),
    "transform_queue_size": (2.0, "fit"),
    "a": (1.5, "fit"),
    "b": (0.9, "fit"),
    "random_state": (1, "fit"),
    "angular_rp_forest": (True, "fit"),
    "target_n_neighbors": (5, "refused"),
    "target_metric": ("l2", "refused"),
    "target_metric_kwds": ({"x": 1}, "refused"),
    "target_weight": (0.9, "refused"),
    "transform_seed": (1, "fit"),
    "transform_mode": ("graph", "refused"),
    "force_approximation_algorithm": (True, "accepted"),
    "verbose": (False, "fit"),
    "tqdm_kwds": ({"disable": True}, "fit"),
    "unique": (True, "fit"),
    "densmap": (True, "refused"),
    "dens_lambda": (1.0, "fit"),
    "dens_frac": (0.5, "fit"),
    "dens_var_shift": (0.2, "fit"),
    "output_dens": (True, "refused"),
    "disconnection_distance": (4.0, "fit"),
    "precomputed_knn": ("knn", "fit"),
}


def test_every_umap_name_is_covered():
    import inspect

    umap = pytest.importorskip("umap")
    names = set(inspect.signature(umap.UMAP).parameters)
    assert names == set(UMAP_NAMES)
    assert names <= set(gb.GlassBoxUMAP().get_params())


@pytest.mark.parametrize("name", sorted(UMAP_NAMES))
def test_umap_name(wine, name):
    X, _ = wine
    value, what = UMAP_NAMES[name]
    if value == "knn":
        from sklearn.neighbors import NearestNeighbors

        dists, idx = NearestNeighbors(n_neighbors=15).fit(X).kneighbors(X)
        value = (idx, dists, None)
    kwargs = {"quiet": name != "verbose", "epochs": 2, "random_state": 0}
    if name in ("a", "b"):
        kwargs.update(a=1.5, b=0.9)
    if name == "metric_kwds":
        kwargs["metric"] = "minkowski"
    if name == "n_epochs":
        del kwargs["epochs"]
    kwargs[name] = value
    est = gb.GlassBoxUMAP(**kwargs)
    assert est.get_params()[name] is value
    if what == "refused":
        with pytest.raises(ValueError, match=name):
            est.fit(X)
    elif what == "accepted":
        est._check_params()
    else:
        emb = est.fit_transform(X)
        assert np.isfinite(emb).all()


def test_synonyms(wine):
    X, _ = wine
    est = gb.GlassBoxUMAP(n_epochs=3, learning_rate=1e-3, encoder_name="mlp", quiet=True)
    est.fit(X)
    assert est.epochs_ == 3 and est.encoder_.architecture["name"] == "mlp"
    assert est.to_dict()["params"]["lr"] == 1e-3
    for kwargs, match in [
        ({"epochs": 2, "n_epochs": 3}, "n_epochs"),
        ({"lr": 1e-2, "learning_rate": 1e-3}, "learning_rate"),
        ({"encoder": "mlp", "encoder_name": "mlp_norm"}, "encoder_name"),
        ({"verbose": True, "quiet": True}, "verbose"),
        ({"a": 1.0}, "pass both"),
    ]:
        with pytest.raises(ValueError, match=match):
            gb.GlassBoxUMAP(**kwargs).fit(X)
    with pytest.warns(UserWarning, match="learning_rate=1.0 is Adam"):
        gb.GlassBoxUMAP(learning_rate=1.0)._check_params()


def test_umap_graph_options_need_the_graph_fit_builds(wine, fitted):
    X, _ = wine
    with pytest.raises(ValueError, match="local_connectivity"):
        gb.GlassBoxUMAP(local_connectivity=2.0, quiet=True).fit(X, graph=fitted.graph_)


def test_disconnection_distance_drops_long_edges(wine):
    X, _ = wine
    kw = {"epochs": 1, "quiet": True, "random_state": 0}
    full = gb.GlassBoxUMAP(**kw, set_op_mix_ratio=1.0 - 1e-9).fit(X).graph_
    cut = gb.GlassBoxUMAP(**kw, disconnection_distance=3.0).fit(X).graph_
    assert cut.nnz < full.nnz


@pytest.mark.parametrize("init", ["spectral", "pca", "tswspectral", "array"])
def test_init_layouts(wine, init):
    X, y = wine
    if init == "array":
        from sklearn.decomposition import PCA

        init = PCA(2).fit_transform(X)
    est = gb.GlassBoxUMAP(init=init, epochs=2, random_state=0, quiet=True)
    emb = est.fit_transform(X)
    assert np.isfinite(emb).all()
    # The short regression already separates the cultivars.
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    assert cross_val_score(KNeighborsClassifier(15), emb, y, cv=5).mean() > 0.8


def test_init_default_is_unchanged_and_bad_init_refused(wine):
    X, _ = wine
    kw = {"epochs": 2, "random_state": 0, "quiet": True}
    a = gb.GlassBoxUMAP(**kw).fit_transform(X)
    b = gb.GlassBoxUMAP(**kw, init="random").fit_transform(X)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="init"):
        gb.GlassBoxUMAP(init="umap", **kw).fit(X)
    with pytest.raises(ValueError, match="init"):
        gb.GlassBoxUMAP(init=np.zeros((5, 2)), **kw).fit(X)


# ---------------------------------------------------------------------- the reference's API
def test_reference_constructor_arguments(wine, tmp_path):
    import lightning.pytorch as lp

    X, _ = wine

    class Count(lp.Callback):
        epochs = 0

        def on_train_epoch_end(self, trainer, module):
            Count.epochs += 1

    est = gb.GlassBoxUMAP(
        encoder_name="mlp",
        encoder_kwargs={"hidden": [16]},
        num_batches=3,
        num_workers=2,
        restore_best_weights=True,
        extra_callbacks=[Count()],
        epochs=4,
        quiet=True,
        random_state=0,
    ).fit(X)
    assert Count.epochs == 4 and 0 <= est.best_epoch_ < 4
    assert est.loss_history_[est.best_epoch_] == np.nanmin(est.loss_history_)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        gb.GlassBoxUMAP(checkpoint_dir=tmp_path, quiet=True).fit(X)


def test_num_batches_sets_steps_per_epoch(wine):
    X, _ = wine
    module, *_ = gb.GlassBoxUMAP(num_batches=7, epochs=2)._training_module(X, None, None)
    assert module.steps_per_epoch == 7


def test_large_graphs_take_larger_steps():
    # 60,000 cells, about 20 edges each once symmetrised: 10 epochs of 10,000-edge steps would
    # be about 2,400 steps, so a step draws |E| / 100 edges (10 epochs of about 1,000 steps),
    # at most 20,000. With num_batches the user sets the steps and the batch stays 10,000.
    from scipy import sparse

    from scglassbox._graph import edge_list

    rng = np.random.default_rng(0)
    n = 60_000
    heads = np.repeat(np.arange(n), 10)
    tails = rng.integers(0, n, heads.size)
    graph = sparse.coo_matrix((rng.uniform(0.5, 1.0, heads.size), (heads, tails)), (n, n))
    graph = (graph + graph.T).tocsr()
    X = rng.normal(size=(n, 3)).astype(np.float32)
    n_edges = edge_list(graph).n_edges
    est = gb.GlassBoxUMAP(init="random", random_state=0, encoder="mlp_norm")
    module, *_ = est._training_module(X, graph, None)
    assert module.batch_size == min(20_000, -(-n_edges * 10 // 1000)) > 10_000
    assert module.epochs == 10 and module.steps_per_epoch * module.epochs <= 1_100
    # The routed encoder (the CPU default at this size) trains half the automatic epochs.
    for encoder in ("mlp_routed", "default"):
        routed, *_ = gb.GlassBoxUMAP(
            init="random", random_state=0, encoder=encoder
        )._training_module(X, graph, None)
        assert routed.encoder.architecture["name"] == "mlp_routed"
        assert routed.encoder.architecture["experts"] == 128  # one per 208 cells, at most 128
        assert routed.encoder.architecture["hidden"] == [64, 64]  # 469 cells each
        assert routed.batch_size == module.batch_size and routed.epochs == 5
    fixed, *_ = gb.GlassBoxUMAP(init="random", num_batches=50)._training_module(X, graph, None)
    assert fixed.batch_size == 10_000


def test_to_before_fit_records_the_device(wine):
    X, _ = wine
    est = gb.GlassBoxUMAP(epochs=2, quiet=True, random_state=0)
    assert est.to("cpu") is est
    assert est._check_params()["accelerator"] == "cpu"
    est.fit(X)
    assert next(est.encoder_.parameters()).device.type == "cpu"
    if torch.cuda.is_available():
        assert gb.GlassBoxUMAP().to("cuda:1")._check_params()["devices"] == [1]
    else:  # refused where it is asked for, not at the end of a long fit; nothing recorded
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            est.to("cuda:1")
        assert est._check_params()["accelerator"] == "cpu"


def test_transform_batch_size_and_jacobian(fitted, fitted_pca, wine):
    X, _ = wine
    # other batch sizes change BLAS blocking, so the last float32 bits may differ
    np.testing.assert_allclose(fitted.transform(X, batch_size=7), fitted.transform(X), atol=1e-5)
    for est in (fitted, fitted_pca):
        J = est.compute_jacobian(X, batch_size=50)
        C, emb = est.compute_contributions(X, return_embedding=True)
        assert J.shape == C.shape == (X.shape[0], 2, 13) and J.dtype == np.float32
        np.testing.assert_allclose(J * (X - est.mean_)[:, None, :], C, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(C.sum(-1), emb, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="batch_size"):
        fitted.transform(X, batch_size=0)


@pytest.mark.parametrize("name", ["model.pt", "model.npz", "model", "model.pkl"])
def test_save_load_any_suffix(fitted, wine, tmp_path, name):
    X, _ = wine
    path = fitted.save(tmp_path / name)
    assert path == tmp_path / name and sorted(p.name for p in tmp_path.iterdir()) == [name]
    loaded = gb.GlassBoxUMAP.load(tmp_path / name)
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    assert loaded.get_params()["n_neighbors"] == fitted.n_neighbors


def test_to_dict_is_built_on_get_params(fitted):
    params = fitted.to_dict()["params"]
    assert params["epochs"] == 30 and params["random_state"] == 0
    assert not {"quiet", "trainer_kwargs", "accelerator", "n_epochs"} & set(params)
    est = gb.GlassBoxUMAP(epochs=2, quiet=True, set_op_mix_ratio=0.5, init="pca")
    est.fit(np.random.default_rng(0).normal(size=(60, 4)))
    params = est.to_dict()["params"]
    assert params["set_op_mix_ratio"] == 0.5 and params["init"] == "pca"
    again = gb.GlassBoxUMAP.from_dict(est.to_dict())
    assert again.set_op_mix_ratio == 0.5 and again.init == "pca"


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="this machine has a GPU: nothing to refuse"
)
@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_gpu_without_a_gpu_is_refused_in_plain_words(wine, accelerator):
    X, _ = wine
    est = gb.GlassBoxUMAP(accelerator=accelerator, quiet=True)
    with pytest.raises(ValueError, match="PyTorch sees no CUDA GPU here"):
        est.fit(X)
    assert not hasattr(est, "encoder_")
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        gb.GlassBoxUMAP(quiet=True).to("cuda").fit(X)


def test_save_into_a_missing_folder_names_the_folder(fitted, tmp_path):
    target = tmp_path / "no" / "such" / "model.npz"
    with pytest.raises(FileNotFoundError, match=r"folder .*no/such does not exist"):
        fitted.save(target)
    assert not (tmp_path / "no").exists()
    with pytest.raises(IsADirectoryError, match="is a directory"):
        fitted.save(tmp_path)
    assert list(tmp_path.iterdir()) == []
