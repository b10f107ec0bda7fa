"""The fused CPU loss (``_loss``): UMAP's cross-entropy and its gradient, as PyTorch's."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scglassbox as gb
from scglassbox import _loss, _training
from scglassbox._training import DIST_EPS

A, B = 1.577, 0.895


def _reference(emb, heads, tails, negs, rep, n):
    """The loss as ``UMAPModule`` computes it with PyTorch's operators (float64 here)."""
    k = negs.shape[1]
    head, tail = emb[heads], emb[tails]
    neg = emb[negs.reshape(-1)].view(len(heads), k, -1)

    def s(dsq):
        return math.log(A) + B * torch.log(dsq + DIST_EPS)

    pos = F.softplus(s((head - tail).pow(2).sum(1))).sum()
    rep_terms = F.softplus(-s((head.unsqueeze(1) - neg).pow(2).sum(2))).sum()
    return (pos + rep * rep_terms) / n


def _pairs(seed, cells=300, edges=500, k=7, spread=4.0):
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(cells, 2, generator=gen, dtype=torch.float64) * spread
    heads = torch.randint(cells, (edges,), generator=gen)
    tails = torch.randint(cells, (edges,), generator=gen)
    negs = torch.randint(cells, (edges, k), generator=gen)
    # Edges and negatives onto the head itself (distance 0) and onto a copy of it.
    tails[:5] = heads[:5]
    negs[5:10, 0] = heads[5:10]
    emb[1] = emb[0]
    heads[10], tails[10], negs[10, 1] = 0, 1, 1
    return emb, heads, tails, negs


@pytest.mark.parametrize(
    ("seed", "rep", "spread"), [(0, 1.0, 4.0), (1, 2.5, 0.05), (2, 0.5, 300.0)]
)
def test_value_and_gradient_are_the_torch_losss(seed, rep, spread):
    emb64, heads, tails, negs = _pairs(seed, spread=spread)
    emb64.requires_grad_()
    want = _reference(emb64, heads, tails, negs, rep, 800)
    (want_grad,) = torch.autograd.grad(want, emb64)
    emb = emb64.detach().float().requires_grad_()
    got = _loss.UMAPLossCPU.apply(emb, heads, tails, negs, A, B, rep, DIST_EPS, 800)
    (got_grad,) = torch.autograd.grad(got * 3.0, emb)
    assert got.dtype == torch.float32 and got.shape == ()
    torch.testing.assert_close(got.double(), want.detach(), rtol=2e-6, atol=0)
    scale = 3.0 * want_grad.abs().max()  # float32 rounding relative to the largest
    torch.testing.assert_close(
        got_grad.double() / scale, 3.0 * want_grad / scale, rtol=0, atol=2e-5
    )


def test_the_value_can_weigh_the_negatives_apart_from_the_gradient():
    """With ``rep_value`` the value is the loss at that repulsion, the gradient at ``rep``."""
    emb64, heads, tails, negs = _pairs(4)
    emb64.requires_grad_()
    value = _reference(emb64, heads, tails, negs, 1.0, 500)
    (grad,) = torch.autograd.grad(_reference(emb64, heads, tails, negs, 0.4, 500), emb64)
    emb = emb64.detach().float().requires_grad_()
    got = _loss.UMAPLossCPU.apply(emb, heads, tails, negs, A, B, 0.4, DIST_EPS, 500, 1.0)
    (got_grad,) = torch.autograd.grad(got, emb)
    torch.testing.assert_close(got.double(), value.detach(), rtol=2e-6, atol=0)
    scale = grad.abs().max()
    torch.testing.assert_close(got_grad.double() / scale, grad / scale, rtol=0, atol=2e-5)


def test_deterministic_and_the_inputs_are_left_alone():
    emb, heads, tails, negs = _pairs(3)
    emb = emb.float().requires_grad_()
    before = [t.clone() for t in (emb, heads, tails, negs)]
    runs = []
    for _ in range(2):
        loss = _loss.UMAPLossCPU.apply(emb, heads, tails, negs, A, B, 1.0, DIST_EPS, 500)
        runs.append((loss, *torch.autograd.grad(loss, emb)))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    for a, b in zip(before, (emb, heads, tails, negs), strict=True):
        assert torch.equal(a, b)


def test_supported():
    assert _loss.supported(torch.zeros(3, 2))
    assert not _loss.supported(torch.zeros(3, 2, dtype=torch.float64))
    assert not _loss.supported(torch.zeros(3, 2, dtype=torch.bfloat16))
    assert not _loss.supported(torch.zeros(3, 2, 1))


def _module_losses(monkeypatch):
    calls = []
    real = _loss.UMAPLossCPU.apply
    monkeypatch.setattr(_loss.UMAPLossCPU, "apply", lambda *a: calls.append(1) or real(*a))
    return calls


def test_routed_cpu_fits_use_it_and_the_single_network_does_not(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 12)).astype(np.float32)
    calls = _module_losses(monkeypatch)
    gb.GlassBoxUMAP(encoder="mlp_norm", epochs=2, random_state=0, quiet=True).fit(X)
    assert calls == []
    gb.GlassBoxUMAP(
        encoder="mlp_routed", encoder_kwargs={"experts": 4}, epochs=2, random_state=0, quiet=True
    ).fit(X)
    assert len(calls) > 0


def test_the_modules_loss_takes_it_with_the_torch_losss_value_and_gradients():
    """``UMAPModule._loss`` on one part of a step, fused and in PyTorch."""
    gen = torch.Generator().manual_seed(1)
    n, k, cells = 400, 15, 500
    emb = torch.randn(cells, 2, generator=gen) * 3
    inverse = torch.randint(cells, (2 * n,), generator=gen)
    neg = torch.randint(cells, (n * k,), generator=gen)
    results = {}
    # (full repulsion, this step's): the value weighs the negatives by the first, the
    # gradient by the second (the ramp of REPULSION_START).
    for full, step in ((1.0, 1.0), (1.0, 0.4), (0.4, 0.4)):
        module = SimpleNamespace(
            batch_size=n, negative_sample_rate=k, a=A, b=B, repulsion_strength=full
        )
        module._repulsion = step
        module._log_q_terms = lambda dsq, m=module: _training.UMAPModule._log_q_terms(m, dsq)
        for fused in (True, False):
            module._fused_loss = fused
            e = emb.clone().requires_grad_()
            loss = _training.UMAPModule._loss(module, e, inverse, neg, slice(100, 350))
            results[full, step, fused] = (loss, *torch.autograd.grad(loss, e))
    for key in ((1.0, 1.0), (1.0, 0.4), (0.4, 0.4)):
        fused, torch_ = results[(*key, True)], results[(*key, False)]
        torch.testing.assert_close(fused[0], torch_[0], rtol=1e-5, atol=0)
        torch.testing.assert_close(fused[1], torch_[1], rtol=1e-4, atol=1e-7)
    for fused in (True, False):
        ramped = results[1.0, 0.4, fused]
        torch.testing.assert_close(ramped[0], results[1.0, 1.0, fused][0], rtol=1e-6, atol=0)
        torch.testing.assert_close(ramped[1], results[0.4, 0.4, fused][1], rtol=1e-6, atol=0)
    assert not torch.allclose(results[1.0, 1.0, True][1], results[0.4, 0.4, True][1])


def test_far_apart_points_give_an_infinite_loss_without_warnings():
    """A diverged map (points 1e25 apart) overflows ``p``: the loss is infinite, as the
    compiled loop's was, and NumPy's vectorised pass warns about nothing."""
    import warnings

    emb = np.array([[0.0, 0.0], [1e25, 0.0], [3.0, 0.0]], dtype=np.float32)
    heads, tails, negs = np.array([0]), np.array([1]), np.array([[2]])
    grad = np.zeros_like(emb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attraction, repulsion = _loss._pairs(
            emb, heads, tails, negs, np.float32(math.log(A)), np.float32(B), np.float32(1.0),
            np.float32(DIST_EPS), grad,
        )  # fmt: skip
    assert attraction == math.inf and np.isfinite(repulsion)
    assert np.isfinite(grad[2]).all() and grad[2, 0] != 0  # the negative's pull is finite
