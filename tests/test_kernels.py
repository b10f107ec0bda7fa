"""The fused CPU kernels: the function, its gradients, bfloat16 rounding, and their use."""

import numba
import numpy as np
import pytest
import torch

from scglassbox import _kernels
from scglassbox._kernels import GateScaleNormCPU, PReLUScaleNormCPU, supported
from scglassbox._routed import RoutedMLP, gate_value

EPS = 1e-6


def _reference(z: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """PReLU then ScaleNorm with autograd's own operators."""
    y = torch.relu(z) - slope * torch.relu(-z)
    return y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + EPS)


@pytest.mark.parametrize(("rows", "width"), [(1, 1), (7, 3), (300, 64), (129, 50)])
def test_float32_matches_float64_autograd(rows, width):
    gen = torch.Generator().manual_seed(rows * width)
    z = torch.randn(rows, width, dtype=torch.float64, generator=gen) * 3
    slope = torch.rand(width, dtype=torch.float64, generator=gen) * 2 - 0.5
    g = torch.randn(rows, width, dtype=torch.float64, generator=gen)
    z64, s64 = z.clone().requires_grad_(), slope.clone().requires_grad_()
    gz, gs = torch.autograd.grad(_reference(z64, s64), (z64, s64), g)
    z32, s32 = z.float().requires_grad_(), slope.float().requires_grad_()
    y = PReLUScaleNormCPU.apply(z32, s32, EPS)
    y.backward(g.float())
    assert y.dtype == torch.float32 and s32.grad.dtype == torch.float32
    torch.testing.assert_close(y.double(), _reference(z, slope), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(z32.grad.double(), gz, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s32.grad.double(), gs, rtol=1e-4, atol=1e-3)


def test_matches_the_torch_pass_at_zero():
    """At exactly 0 the gradient takes the slope, as torch's PReLU (and the torch pass)."""
    from scglassbox._encoder import _PReLUScaleNorm

    z = torch.tensor([[0.0, 1.0, -2.0, 0.5]])
    slope = torch.tensor([0.3, 0.1, 0.2, 0.4])
    g = torch.tensor([[1.0, -1.0, 0.5, 2.0]])
    grads = []
    for fn in (PReLUScaleNormCPU.apply, lambda a, b, e: _PReLUScaleNorm.apply(a, b, True, e)):
        x = z.clone().requires_grad_()
        fn(x, slope, EPS).backward(g)
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])
    assert grads[0][0, 0] != 0


def test_a_zero_row_stays_zero():
    z = torch.zeros(3, 8, requires_grad=True)
    y = PReLUScaleNormCPU.apply(z, torch.full((8,), 0.25), EPS)
    y.sum().backward()
    assert torch.equal(y, torch.zeros(3, 8)) and torch.isfinite(z.grad).all()


def test_bfloat16_is_the_float32_result_rounded():
    gen = torch.Generator().manual_seed(0)
    z = (torch.randn(500, 64, generator=gen) * 4).to(torch.bfloat16)
    g = torch.randn(500, 64, generator=gen).to(torch.bfloat16)
    slope = torch.rand(64, generator=gen) - 0.2
    outs = {}
    for dtype in (torch.bfloat16, torch.float32):
        x = z.to(dtype).detach().clone().requires_grad_()
        s = slope.clone().requires_grad_()
        y = PReLUScaleNormCPU.apply(x, s, EPS)
        y.backward(g.to(dtype))
        outs[dtype] = (y, x.grad, s.grad)
    y16, gz16, gs16 = outs[torch.bfloat16]
    y32, gz32, gs32 = outs[torch.float32]
    assert y16.dtype == gz16.dtype == torch.bfloat16 and gs16.dtype == torch.float32
    # Same float32 arithmetic, then rounded: within half a bfloat16 step (2^-8 relative).
    for a, b in ((y16, y32), (gz16, gz32)):
        assert ((a.float() - b).abs() <= b.abs() * 2**-8 + 1e-30).all()
    torch.testing.assert_close(gs16, gs32, rtol=1e-5, atol=1e-4)


@numba.njit
def _round_all(values, out):  # pragma: no cover (compiled)
    for j in range(values.shape[0]):
        _kernels._store(out, j, values[j])


def test_rounding_to_bfloat16_is_torchs():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32)
    ties = (rng.integers(0, 2**16, 1000, dtype=np.uint64).astype(np.uint32) << 16) | 0x8000
    special = np.array([0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x7F7FFFFF, 0, 1 << 31])
    bits = np.concatenate([bits, ties, special.astype(np.uint32)])
    got = np.empty(bits.size, dtype=np.int16)
    _round_all(bits.view(np.float32), got)
    want = torch.from_numpy(bits.view(np.float32).copy()).to(torch.bfloat16)
    finite = np.isfinite(bits.view(np.float32))
    np.testing.assert_array_equal(got[finite], want.view(torch.int16).numpy()[finite])
    # NaN stays NaN (payloads aside); infinities stay infinite.
    back = torch.from_numpy(got).view(torch.bfloat16).float().numpy()
    src = bits.view(np.float32)
    assert np.isnan(back[np.isnan(src)]).all()
    np.testing.assert_array_equal(back[np.isinf(src)], src[np.isinf(src)])


def test_deterministic():
    z = torch.randn(1000, 32).to(torch.bfloat16)
    g = torch.randn(1000, 32).to(torch.bfloat16)
    runs = []
    for _ in range(2):
        x, s = z.clone().requires_grad_(), torch.zeros(32, requires_grad=True)
        PReLUScaleNormCPU.apply(x, s, EPS).backward(g)
        runs.append((x.grad, s.grad))
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_supported():
    assert supported(torch.zeros(2, 3)) and supported(torch.zeros(2, 3, dtype=torch.bfloat16))
    assert not supported(torch.zeros(2, 3, dtype=torch.float64))
    assert not supported(torch.zeros(2, 3, 4))


@pytest.mark.parametrize("gate", [False, True])
def test_routed_training_uses_the_kernels_with_the_modules_gradients(monkeypatch, gate):
    """float32 training through the kernels: values and gradients of the modules' forward."""
    torch.manual_seed(0)
    net = RoutedMLP(10, 2, hidden=(24, 16), experts=4, margin=2.0, gate=gate)
    with torch.no_grad():
        for s in net.slopes:
            s.uniform_(-0.3, 0.8)
        for b in getattr(net, "gate_offsets", []):
            b.normal_()
        net.centroids.normal_()
    x = torch.randn(400, 10)
    w = torch.randn(400, 2)
    calls = []
    kernel = GateScaleNormCPU if gate else PReLUScaleNormCPU
    real = kernel.apply
    monkeypatch.setattr(kernel, "apply", lambda *a: calls.append(1) or real(*a))
    grads = []
    for fn in (net, net.training_forward):
        net.zero_grad()
        (fn(x) * w).sum().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    assert len(calls) == 2  # one per hidden layer, in training_forward only
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _gate_reference(z, slope, scale, offsets):
    """The routed encoder's gated unit, then ScaleNorm, with autograd's own operators."""
    y = z * gate_value(z, slope, scale, offsets)
    return y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + EPS)


def _gate_inputs(tiles, tile, width, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(tiles * tile, width, dtype=dtype, generator=gen) * 3
    slope = torch.rand(width, dtype=dtype, generator=gen) * 2 - 0.5
    scale = torch.rand(width, dtype=dtype, generator=gen) * 6
    offsets = torch.randn(tiles, width, dtype=dtype, generator=gen) * 2
    g = torch.randn(tiles * tile, width, dtype=dtype, generator=gen)
    return (z, slope, scale, offsets), g


@pytest.mark.parametrize(("tiles", "tile", "width"), [(1, 1, 1), (3, 5, 7), (4, 128, 64)])
def test_gate_float32_matches_float64_autograd(tiles, tile, width):
    inputs, g = _gate_inputs(tiles, tile, width, tiles * tile * width)
    ref = [t.clone().requires_grad_() for t in inputs]
    want = torch.autograd.grad(_gate_reference(*ref), ref, g)
    leaves = [t.float().requires_grad_() for t in inputs]
    y = GateScaleNormCPU.apply(*leaves, EPS)
    y.backward(g.float())
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), _gate_reference(*inputs), rtol=1e-5, atol=1e-5)
    for leaf, w in zip(leaves, want, strict=True):
        assert leaf.grad.dtype == torch.float32
        torch.testing.assert_close(leaf.grad.double(), w, rtol=1e-4, atol=1e-3)


def test_gate_bfloat16_is_the_float32_result_rounded_and_deterministic():
    (z, slope, scale, offsets), g = _gate_inputs(4, 128, 64, 0, torch.float32)
    z, g = z.to(torch.bfloat16), g.to(torch.bfloat16)
    outs = {}
    for dtype in (torch.bfloat16, torch.float32, "again"):
        d = torch.bfloat16 if dtype == "again" else dtype
        x = z.to(d).clone().requires_grad_()
        params = [t.clone().requires_grad_() for t in (slope, scale, offsets)]
        y = GateScaleNormCPU.apply(x, *params, EPS)
        y.backward(g.to(d))
        outs[dtype] = (y, x.grad, *(p.grad for p in params))
    y16, gz16, *p16 = outs[torch.bfloat16]
    y32, gz32, *p32 = outs[torch.float32]
    assert y16.dtype == gz16.dtype == torch.bfloat16
    for a, b in ((y16, y32), (gz16, gz32)):
        assert ((a.float() - b).abs() <= b.abs() * 2**-8 + 1e-30).all()
    for a, b in zip(p16, p32, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)
    assert all(torch.equal(a, b) for a, b in zip(outs[torch.bfloat16], outs["again"], strict=True))


def test_gate_is_finite_far_from_its_hinge():
    """Huge arguments are clipped (the gate is 0 or 1 there), in the kernel and in torch."""
    z = torch.tensor([[1e3, -1e3, 3.0, -3.0]], requires_grad=True)
    slope, scale = torch.full((4,), 0.1), torch.full((4,), 1e30)
    offsets = torch.zeros(1, 4)
    y = GateScaleNormCPU.apply(z, slope, scale, offsets, EPS)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(z.grad).all()
    torch.testing.assert_close(y, _gate_reference(z.detach(), slope, scale, offsets))
    # 1 on the positive side, the slope on the negative one.
    gates = gate_value(z.detach(), slope, scale, offsets)
    torch.testing.assert_close(gates, torch.tensor([[1.0, 0.1, 1.0, 0.1]]))


def test_gate_offsets_must_tile_the_rows():
    with pytest.raises(ValueError, match="do not tile"):
        GateScaleNormCPU.apply(
            torch.zeros(10, 4), torch.zeros(4), torch.ones(4), torch.zeros(3, 4), EPS
        )
