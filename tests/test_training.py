import numpy as np
import pytest
import torch

import scglassbox as gb
from scglassbox._contributions import exactness
from scglassbox._graph import EdgeList, edge_list
from scglassbox._training import UMAPModule


def test_ddp_on_two_cpu_processes(wine):
    """Lightning's trainer options pass through: 2 CPU processes with DDP train one model."""
    X, _ = wine
    est = gb.GlassBoxUMAP(
        random_state=0,
        epochs=10,
        quiet=True,
        accelerator="cpu",
        devices=2,
        trainer_kwargs={"strategy": "ddp_spawn"},
    ).fit(X)
    assert np.isfinite(est.loss_history_).all() and len(est.loss_history_) == 10
    C, emb = est.compute_contributions(X, return_embedding=True)
    assert exactness(emb, C) <= 1e-5
    # The weights came back from the workers: the embedding is not the untrained one.
    untrained = gb.GlassBoxUMAP(random_state=0, epochs=1, lr=1e-12, quiet=True).fit(X)
    assert not np.allclose(emb, untrained.embedding_, atol=1e-3)


def test_one_epoch_is_one_pass_of_edge_draws():
    rng = np.random.default_rng(0)
    edges = EdgeList(
        heads=rng.integers(0, 50, 2500),
        tails=rng.integers(0, 50, 2500),
        weights=rng.random(2500) + 0.1,
    )
    import torch

    module = UMAPModule(
        torch.nn.Linear(3, 2, bias=False),
        torch.zeros(50, 3),
        edges,
        a=1.0,
        b=1.0,
        negative_sample_rate=5,
        repulsion_strength=1.0,
        lr=1e-3,
        batch_size=1000,
        epochs=1,
        seed=0,
    )
    assert module.steps_per_epoch * module.batch_size >= edges.n_edges
    assert (module.steps_per_epoch - 1) * module.batch_size < edges.n_edges


def test_edge_pruning_and_self_loops():
    from scipy import sparse

    g = sparse.csr_matrix(np.array([[1.0, 1.0, 0.01], [1.0, 0, 0.5], [0.01, 0.5, 0]]))
    edges = edge_list(g)
    pairs = set(zip(edges.heads.tolist(), edges.tails.tolist(), strict=True))
    assert pairs == {(0, 1), (1, 0), (1, 2), (2, 1)}  # no self loop, 0.01 < 2.5% of 1.0
    with pytest.raises(ValueError, match="no edges"):
        edge_list(sparse.csr_matrix(np.eye(3)))


def test_mask_unique_matches_torch_unique():
    from scglassbox._training import SORT_ABOVE, _unique

    g = torch.Generator().manual_seed(0)
    # Both branches: the mask (n <= SORT_ABOVE m) and the sort (n > SORT_ABOVE m).
    cases = [(1, 5), (10, 3), (1000, 5000), (50, 10_000), (100_000, 2_000), (4 * 300 + 1, 300)]
    assert any(n > SORT_ABOVE * m for n, m in cases) and any(n <= SORT_ABOVE * m for n, m in cases)
    for n, m in cases:
        ids = torch.randint(n, (m,), generator=g)
        nodes, inverse = _unique(ids, n)
        want_nodes, want_inverse = torch.unique(ids, return_inverse=True)
        assert torch.equal(nodes, want_nodes)
        assert torch.equal(inverse, want_inverse)
        assert torch.equal(nodes[inverse], ids)


@pytest.mark.parametrize("precision", ["32", "bf16"])
def test_training_precision(wine, precision):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    X, y = wine
    kw = {"random_state": 0, "epochs": 60, "quiet": True, "precision": precision}
    a = gb.GlassBoxUMAP(**kw).fit(X)
    b = gb.GlassBoxUMAP(**kw).fit(X)
    assert a.precision_ == precision
    np.testing.assert_array_equal(a.embedding_, b.embedding_)  # reproducible in either mode
    assert a.embedding_.dtype == np.float32
    assert next(a.encoder_.parameters()).dtype == torch.float32
    contrib = a.compute_contributions(X)
    assert exactness(a.embedding_, contrib) <= 1e-5
    acc = cross_val_score(KNeighborsClassifier(15), a.embedding_, y, cv=5).mean()
    assert acc > 0.85


def test_precision_changes_training_and_auto_resolves(wine):
    from scglassbox._training import AUTO_BF16_MIN_CELLS, _cpu_has_fast_bf16, compute_dtype

    X, _ = wine
    kw = {"random_state": 0, "epochs": 5, "quiet": True}
    e32 = gb.GlassBoxUMAP(precision="32", **kw).fit_transform(X)
    e16 = gb.GlassBoxUMAP(precision="bf16", **kw).fit_transform(X)
    assert not np.array_equal(e32, e16)
    auto = gb.GlassBoxUMAP(**kw).fit(X)
    assert auto.precision_ == "32"  # 178 cells: below the bfloat16 threshold
    np.testing.assert_array_equal(auto.embedding_, e32)

    mlp = auto.encoder_
    cpu, cuda, big = torch.device("cpu"), torch.device("cuda"), AUTO_BF16_MIN_CELLS
    fast = torch.bfloat16 if _cpu_has_fast_bf16() else None
    assert compute_dtype("auto", cpu, mlp, big) is fast
    assert compute_dtype("auto", cpu, mlp, big - 1) is None
    assert compute_dtype("32", cpu, mlp, big) is None
    assert compute_dtype("bf16", cuda, mlp, 10) is torch.bfloat16
    assert compute_dtype("auto", cuda, mlp, big) is None  # not measured on GPUs: float32
    assert compute_dtype("auto", cpu, torch.nn.Linear(2, 2, bias=False), big) is None


def test_custom_encoder_trains_in_bfloat16(wine):
    X, _ = wine

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(13, 32, bias=False),
            torch.nn.PReLU(32),
            torch.nn.Linear(32, 2, bias=False),
        )

    kw = {"precision": "bf16", "epochs": 10, "quiet": True, "random_state": 0}
    a = gb.GlassBoxUMAP(encoder=make(), **kw).fit(X)
    b = gb.GlassBoxUMAP(encoder=make(), **kw).fit(X)
    assert a.precision_ == "bf16"
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    assert exactness(a.embedding_, a.compute_contributions(X)) <= 1e-5


def test_progress_bar_shows_the_epochs_real_loss(wine, capsys):
    """The bar's loss is the epoch's (it read the history before it was written: nan)."""
    import re

    X, _ = wine
    est = gb.GlassBoxUMAP(random_state=0, epochs=4).fit(X)
    err = capsys.readouterr().err
    shown = re.findall(r"loss=([^\s,\]]+)", err)
    assert shown, err
    assert "nan" not in shown
    assert shown[-1] == f"{est.loss_history_[-1]:.4f}"
    assert set(shown) <= {f"{x:.4f}" for x in est.loss_history_}


def test_progress_follows_scanpy_verbosity(wine, capsys):
    import scanpy as sc

    from scglassbox._logging import progress_enabled

    X, _ = wine
    before = sc.settings.verbosity
    try:
        sc.settings.verbosity = 0
        assert not progress_enabled(False)
        gb.GlassBoxUMAP(random_state=0, epochs=2).fit(X)
        assert "glassbox-umap" not in capsys.readouterr().err
        sc.settings.verbosity = 1  # scanpy's default
        assert progress_enabled(False) and not progress_enabled(True)
        gb.GlassBoxUMAP(random_state=0, epochs=2, quiet=True).fit(X)
        assert "glassbox-umap" not in capsys.readouterr().err
    finally:
        sc.settings.verbosity = before


def test_messages_go_through_scanpy_logging():
    import io

    import scanpy as sc

    from scglassbox import _logging

    before, logfile = sc.settings.verbosity, sc.settings.logfile
    buf = io.StringIO()
    sc.settings.logfile = buf  # scanpy's handler writes here
    try:
        sc.settings.verbosity = 0
        _logging.warning("w-hidden")
        _logging.info("i-hidden")
        sc.settings.verbosity = 1
        _logging.warning("w-shown")
        _logging.info("i-hidden-too")
        sc.settings.verbosity = 2
        _logging.info("i-shown")
        _logging.hint("h-hidden")
    finally:
        sc.settings.verbosity = before
        sc.settings.logfile = logfile
    out = buf.getvalue()
    assert "w-shown" in out and "i-shown" in out
    assert not any(s in out for s in ("w-hidden", "i-hidden", "h-hidden"))


def test_lightning_banners_are_silenced_not_warnings(wine):
    """GPU/TPU availability, the litlogger tip and the max_epochs line never show."""
    import logging
    import warnings

    from scglassbox._training import _DropBanners, _quiet_lightning

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    lg = logging.getLogger("lightning.pytorch")
    level = lg.level
    handler = Keep()
    lg.addHandler(handler)
    lg.setLevel(logging.INFO)
    try:
        X, _ = wine
        gb.GlassBoxUMAP(random_state=0, epochs=2).fit(X)
    finally:
        lg.removeHandler(handler)
        lg.setLevel(level)
    banners = ("GPU available", "TPU available", "litlogger", "`Trainer.fit` stopped")
    assert not [r for r in records if any(b in r for b in banners)], records

    def rec(msg):
        return logging.LogRecord("x", logging.INFO, "", 0, msg, None, None)

    drop = _DropBanners()
    assert not drop.filter(rec("GPU available: False, used: False"))
    assert not drop.filter(rec("`Trainer.fit` stopped: `max_epochs=5` reached."))
    assert drop.filter(rec("Restoring states from the checkpoint path"))
    # a real warning raised during the fit still reaches the user
    with _quiet_lightning(quiet=False), pytest.warns(UserWarning, match="real problem"):
        warnings.warn("a real problem", UserWarning, stacklevel=1)


def test_learning_rate_is_constant_over_the_fit(wine):
    """The documented schedule: Adam at ``lr`` for every step of the fit."""
    import lightning.pytorch as lp

    X, _ = wine
    seen: list[float] = []

    class Record(lp.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    gb.GlassBoxUMAP(
        random_state=0, epochs=30, lr=1e-2, quiet=True, trainer_kwargs={"callbacks": [Record()]}
    ).fit(X)
    assert len(seen) >= 30
    assert seen == [1e-2] * len(seen)
