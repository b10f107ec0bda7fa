import copy

import numpy as np
import pytest
import torch

import scglassbox as gb
from scglassbox import _training
from scglassbox._optim import MOMENTUM, MuonAdam, orthogonalise


@pytest.mark.parametrize("shape", [(3, 5, 8), (3, 8, 5), (6, 6), (2, 2, 4, 7)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_orthogonalise_keeps_the_singular_vectors_and_evens_the_values(shape, dtype):
    """U^T O V is diagonal, with every singular value moved into about [0.6, 1.3]."""
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g[..., 0, :] *= 30.0  # one dominant direction, as in a gradient
    o = orthogonalise(g.float(), dtype=dtype).double()
    assert o.shape == g.shape and o.dtype == torch.float64
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    core = u.mT @ o @ vh.mT
    diag = torch.diagonal(core, dim1=-2, dim2=-1)
    off = core - torch.diag_embed(diag)
    tol = 0.05 if dtype == torch.bfloat16 else 1e-4
    assert off.abs().max() < tol
    assert diag.min() > 0.6 and diag.max() < 1.3


def test_orthogonalise_is_per_matrix_and_keeps_zeros():
    g = torch.randn(4, 6, 9, generator=torch.Generator().manual_seed(1))
    g[2] = 0.0
    o = orthogonalise(g)
    assert torch.equal(o[2], torch.zeros(6, 9))
    for k in (0, 1, 3):
        torch.testing.assert_close(o[k], orthogonalise(g[k]), rtol=1e-5, atol=1e-6)


def _params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.randn(3, 4, 6, generator=gen))
    b = torch.nn.Parameter(torch.randn(6, generator=gen))
    return w, b


def test_one_step_is_nesterov_muon_and_plain_adam():
    """By the definitions: Adam's parameters move as under torch.optim.Adam alone; each
    matrix by -lr * sqrt(max(1, out / in)) * orthogonalise(nesterov momentum)."""
    w, b = _params()
    w_ref, b_ref = w.detach().clone(), torch.nn.Parameter(b.detach().clone())
    gen = torch.Generator().manual_seed(2)
    gw, gb_ = torch.randn(w.shape, generator=gen), torch.randn(b.shape, generator=gen)
    opt = MuonAdam([w], [b], lr=1e-2, muon_lr=0.05)
    adam = torch.optim.Adam([b_ref], lr=1e-2)
    w.grad, b.grad, b_ref.grad = gw.clone(), gb_.clone(), gb_.clone()
    opt.step()
    adam.step()
    assert torch.equal(b.detach(), b_ref.detach())
    buf = torch.zeros_like(gw).lerp_(gw, 1.0 - MOMENTUM)
    expected = w_ref - 0.05 * (6 / 4) ** 0.5 * orthogonalise(gw.lerp(buf, MOMENTUM))
    torch.testing.assert_close(w.detach(), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunks_split_the_work_and_not_the_update(dtype):
    """Any number of chunks moves every matrix as one task per stack does (the matrices are
    orthogonalised one by one), in as many tasks as asked, a stack at most one per matrix."""
    shapes = ((7, 5, 6), (7, 6, 6), (4, 3))
    runs = []
    for chunks in (1, 2, 3, 9):
        gen = torch.Generator().manual_seed(5)
        params = [
            torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(1)))
            for s in shapes
        ]
        tasks = []

        def recording_map(fn, items, tasks=tasks):
            items = list(items)
            tasks.append(len(items))
            return map(fn, items)

        opt = MuonAdam(
            params, [], lr=1e-2, muon_lr=0.05, ns_dtype=dtype, map_fn=recording_map, chunks=chunks
        )
        for _ in range(3):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen)
            opt.step()
        runs.append([p.detach().clone() for p in params])
        assert tasks == [2 * min(chunks, 7) + 1] * 3
    for run in runs[1:]:
        for a, b in zip(runs[0], run, strict=True):
            assert torch.equal(a, b)


def test_no_gradient_no_move_and_map_fn_used():
    w, b = _params()
    before = w.detach().clone()
    calls = []

    def recording_map(fn, items):
        items = list(items)
        calls.append(len(items))
        return map(fn, items)

    opt = MuonAdam([w], [b], lr=1e-2, muon_lr=0.05, map_fn=recording_map)
    b.grad = torch.ones_like(b)
    opt.step()
    assert torch.equal(w.detach(), before) and calls == [1]
    opt.zero_grad()
    assert w.grad is None and b.grad is None


def test_state_dict_round_trip_continues_identically():
    def run(load_from=None):
        w, b = _params()
        opt = MuonAdam([w], [b], lr=1e-2, muon_lr=0.05)
        gen = torch.Generator().manual_seed(3)
        for step in range(4):
            if step == 2 and load_from is not None:
                opt.load_state_dict(load_from)
            w.grad, b.grad = torch.randn(w.shape, generator=gen), torch.randn(6, generator=gen)
            opt.step()
            if step == 1:
                saved = copy.deepcopy(opt.state_dict())
        return w.detach(), b.detach(), saved

    w1, b1, saved = run()
    w2, b2, _ = run(load_from=saved)
    assert torch.equal(w1, w2) and torch.equal(b1, b2)


def test_vectors_are_refused():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        MuonAdam([torch.nn.Parameter(torch.zeros(3))], [], lr=1e-3, muon_lr=0.05)


def _optimizer_of(X, graph=None, **kwargs):
    import lightning.pytorch as lp

    seen = []

    class Record(lp.Callback):
        def on_train_start(self, trainer, module):
            seen.append(trainer.optimizers[0])

    gb.GlassBoxUMAP(
        random_state=0, epochs=1, quiet=True, trainer_kwargs={"callbacks": [Record()]}, **kwargs
    ).fit(X, graph=graph)
    return seen[0]


def test_routed_experts_train_with_muon_other_encoders_with_adam(wine, monkeypatch):
    X, _ = wine
    opt = _optimizer_of(X, encoder="mlp_routed", encoder_kwargs={"experts": 4})
    assert isinstance(opt, MuonAdam)
    assert [p.shape[0] for p in opt.param_groups[0]["params"]] == [4, 4]  # the hidden stacks
    assert opt.param_groups[0]["lr"] == pytest.approx(_training.MUON_LR_RATIO * 1e-3 * 3)
    assert type(_optimizer_of(X)) is torch.optim.Adam  # mlp_norm
    monkeypatch.setattr(_training, "MUON_LR_RATIO", 0.0)
    opt = _optimizer_of(X, encoder="mlp_routed", encoder_kwargs={"experts": 4})
    assert type(opt) is torch.optim.Adam


def test_muon_changes_the_routed_fit_and_stays_exact(wine, monkeypatch):
    """Muon is a different optimiser, not a no-op, and the fit is exact either way."""
    X, _ = wine
    kw = dict(random_state=0, epochs=20, quiet=True, encoder="mlp_routed")
    kw["encoder_kwargs"] = {"experts": 4}
    muon = gb.GlassBoxUMAP(**kw).fit(X)
    monkeypatch.setattr(_training, "MUON_LR_RATIO", 0.0)
    adam = gb.GlassBoxUMAP(**kw).fit(X)
    assert not np.allclose(muon.embedding_, adam.embedding_, atol=1e-3)
    C, emb = muon.compute_contributions(X, return_embedding=True)
    assert np.abs(C.sum(-1) - emb).max() <= 1e-5 * np.abs(emb).max()


def test_muon_takes_four_newton_schulz_steps_on_narrow_experts_five_on_wider(wine, monkeypatch):
    """4 steps while every matrix is at most MUON_NS4_WIDTH wide (the experts of 20,000
    cells), 5 beyond (those of 100,000); MUON_NS_STEPS, when set, wins."""
    X, _ = wine
    narrow = {"experts": 4, "hidden": (48, 48)}
    opt = _optimizer_of(X, encoder="mlp_routed", encoder_kwargs=narrow)
    assert _training.MUON_NS4_WIDTH == 48 and opt.ns_steps == 4
    wide = {"experts": 4, "hidden": (64, 64)}
    assert _optimizer_of(X, encoder="mlp_routed", encoder_kwargs=wide).ns_steps == 5
    # One matrix wider on both sides is enough (the smaller side is what counts: 48 x 64 is
    # 48 wide): its smallest singular values need the fifth step.
    mixed = {"experts": 4, "hidden": (48, 64, 64)}
    assert _optimizer_of(X, encoder="mlp_routed", encoder_kwargs=mixed).ns_steps == 5
    monkeypatch.setattr(_training, "MUON_NS_STEPS", 3)
    assert _optimizer_of(X, encoder="mlp_routed", encoder_kwargs=wide).ns_steps == 3
