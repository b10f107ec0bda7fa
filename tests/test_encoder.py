import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scglassbox._contributions import jacobian
from scglassbox._encoder import (
    ENCODERS,
    Gate,
    GlassBoxMLP,
    ScaleNorm,
    attribution_mode,
    build_encoder,
)

RTOL = 1e-5


def _random_net(seed, n_in, hidden, n_out, norm, gate=False):
    torch.manual_seed(seed)
    net = GlassBoxMLP(n_in, n_out, hidden=hidden, norm=norm or gate, gate=gate)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(-0.5, 1.5)  # any slope, not only the initial 0.25
            if isinstance(m, Gate):
                m.slope.uniform_(-3.0, 3.0)  # any sharpness and direction
                m.offset.mul_(2.0)
    return net


def _true_jacobian(net, x):
    """Full autograd Jacobian, one cell at a time (no frozen scales)."""
    return torch.stack([torch.autograd.functional.jacobian(net, xi[None])[0, :, 0] for xi in x])


nets = st.builds(
    dict,
    seed=st.integers(0, 10_000),
    n_in=st.integers(1, 40),
    hidden=st.lists(st.integers(1, 64), min_size=1, max_size=3),
    n_out=st.integers(1, 4),
    norm=st.booleans(),
    gate=st.booleans(),
)


def _reconstruction_error(net, x):
    y, jac = jacobian(net, x)
    recon = (jac.double() * x.double()[:, None, :]).sum(-1)
    return (recon - y.double()).abs().max() / y.double().abs().max().clamp_min(1e-30)


@settings(max_examples=40, deadline=None)
@given(spec=nets, scale=st.floats(1e-3, 1e3))
def test_contributions_reconstruct_random_networks(spec, scale):
    # The split is exact in exact arithmetic: in float64 only rounding at 1e-16 remains.
    # (float32 is not used here because a layer of one or two units can, after RMS
    # normalisation of a near-zero activation, give contributions ~1,000x the output whose
    # cancellation alone exceeds 1e-5; the float32 test below uses realistic widths.)
    net = _random_net(**spec).double()
    g = torch.Generator().manual_seed(spec["seed"])
    x = torch.randn(16, spec["n_in"], generator=g, dtype=torch.float64) * scale
    assert _reconstruction_error(net, x) <= 1e-10


@settings(max_examples=40, deadline=None)
@given(spec=nets.filter(lambda s: min(s["hidden"]) >= 8), scale=st.floats(1e-3, 1e3))
def test_contributions_reconstruct_random_networks_float32(spec, scale):
    net = _random_net(**spec)
    x = torch.randn(16, spec["n_in"], generator=torch.Generator().manual_seed(spec["seed"]))
    assert _reconstruction_error(net, x * scale) <= RTOL


def test_mlp_is_degree_one_homogeneous_and_gradient_times_input():
    net = _random_net(0, 10, [32, 32], 2, norm=False)
    x = torch.randn(8, 10)
    with torch.no_grad():
        torch.testing.assert_close(net(3.0 * x), 3.0 * net(x), rtol=1e-5, atol=1e-6)
    _, jac = jacobian(net, x)
    true = _true_jacobian(net, x)
    torch.testing.assert_close(jac, true)


def test_mlp_norm_is_scale_invariant_and_contributions_are_not_gradients():
    net = _random_net(1, 10, [32, 32], 2, norm=True)
    x = torch.randn(8, 10)
    with torch.no_grad():
        torch.testing.assert_close(net(3.0 * x), net(x), rtol=1e-4, atol=1e-5)
    true = _true_jacobian(net, x)
    # Degree-0 homogeneity: the true Jacobian annihilates x (Euler), so J x = 0 ...
    assert (true @ x[:, :, None]).abs().max() < 1e-4
    # ... while the frozen-scale split still sums to f(x).
    y, jac = jacobian(net, x)
    torch.testing.assert_close((jac * x[:, None, :]).sum(-1), y, rtol=1e-5, atol=1e-5)


def test_mlp_gate_bends_off_the_origin_and_contributions_are_not_gradients():
    """Gated units: neither degree-1 nor degree-0 homogeneous, yet an exact frozen-gate split."""
    net = _random_net(2, 10, [32, 32], 2, norm=True, gate=True)
    x = torch.randn(8, 10)
    with torch.no_grad():
        y1, y3 = net(x), net(3.0 * x)
    assert not torch.allclose(y3, y1, rtol=1e-3) and not torch.allclose(y3, 3 * y1, rtol=1e-3)
    y, jac = jacobian(net, x)
    torch.testing.assert_close((jac * x[:, None, :]).sum(-1), y, rtol=1e-5, atol=1e-5)
    true = _true_jacobian(net, x)
    assert (true - jac).abs().max() > 1e-3  # the gradient also differentiates the gates


def test_every_encoder_round_trips_its_architecture():
    for name in ENCODERS:
        net = build_encoder(name, 6, 2, hidden=(8, 4))
        again = build_encoder(net.architecture["name"], 6, 2, hidden=net.architecture["hidden"])
        assert net.architecture == again.architecture
        assert set(net.state_dict()) == set(again.state_dict())


def test_attribution_mode_restores_flags():
    net = build_encoder("mlp_norm", 5, 2, hidden=(8, 8))
    norms = [m for m in net.modules() if isinstance(m, ScaleNorm)]
    assert norms and not any(m.frozen_scale for m in norms)
    with attribution_mode(net):
        assert all(m.frozen_scale for m in norms)
    assert not any(m.frozen_scale for m in norms)


def test_build_encoder_has_no_bias():
    for name in (*ENCODERS, "default"):
        net = build_encoder(name, 7, 3)
        assert not any("bias" in k for k, _ in net.named_parameters())
        assert net(torch.zeros(2, 7)).abs().max() == 0  # the origin maps to the origin


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("nope", {}, "encoder must be one of"),
        ("mlp", {"width": 3}, "unknown keys"),
        ("mlp", {"hidden": (0,)}, "positive widths"),
    ],
)
def test_build_encoder_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_encoder(name, 3, 2, **kwargs)


def test_jacobian_matches_finite_differences():
    net = _random_net(3, 6, [16], 2, norm=False).double()
    x = torch.randn(1, 6, dtype=torch.float64)
    _, jac = jacobian(net, x)
    eps = 1e-6
    fd = np.stack(
        [
            ((net(x + eps * e) - net(x - eps * e)) / (2 * eps)).detach().numpy()[0]
            for e in torch.eye(6, dtype=torch.float64)[:, None, :]
        ],
        axis=1,
    )
    np.testing.assert_allclose(jac[0].numpy(), fd, rtol=1e-5, atol=1e-7)


def test_prelu_matches_torch_bitwise():
    from scglassbox._encoder import PReLU

    g = torch.Generator().manual_seed(0)
    x = torch.randn(257, 33, generator=g) * 10
    x[0, :5] = torch.tensor([0.0, -0.0, 1e-38, -1e-38, float("inf")])
    ours, ref = PReLU(33), torch.nn.PReLU(33)
    with torch.no_grad():
        ours.weight.uniform_(-1, 1, generator=g)
        ref.weight.copy_(ours.weight)
    assert torch.equal(ours(x), ref(x))
    xa, xb = x[1:].clone().requires_grad_(), x[1:].clone().requires_grad_()
    up = torch.randn(256, 33, generator=g)
    ours(xa).backward(up)
    ref(xb).backward(up)
    assert torch.equal(xa.grad, xb.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)


def _fused_op_gradcheck(kind, g):
    """gradcheck of the fused op alone, on a small random layer."""
    from torch.autograd import gradcheck

    from scglassbox._encoder import _GateScaleNorm, _PReLUScaleNorm

    z = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    if kind == "gate":
        s = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
        b = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
        return gradcheck(lambda z, s, b: _GateScaleNorm.apply(z.clone(), s, b, 1e-6), (z, s, b))
    norm = kind == "prelu_norm"
    w = (torch.rand(5, generator=g, dtype=torch.float64) - 0.5).requires_grad_()
    return gradcheck(lambda a, b: _PReLUScaleNorm.apply(a, b, norm, 1e-6), (z, w))


@pytest.mark.parametrize("kind", ["prelu", "prelu_norm", "gate"])
def test_fused_training_activation_matches_the_modules(kind):
    """The training-only fused activations (PReLU, +ScaleNorm, gate + ScaleNorm) have the
    modules' values and gradients."""
    net = _random_net(3, 12, (16, 9), 2, kind != "prelu", gate=kind == "gate").double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 12, generator=g, dtype=torch.float64, requires_grad=True)
    x.data[0, :3] = 0.0  # rows with exact zeros
    if kind == "gate":  # (PReLU's two implementations differ in their subgradient at 0)
        x.data[1] = 0.0  # a row at the origin
    up = torch.randn(40, 2, generator=g, dtype=torch.float64)
    params = [x, *net.parameters()]
    want = torch.autograd.grad(net(x), params, up)
    fused_out = net.net[-1](net.hidden_for_training(x))
    got = torch.autograd.grad(fused_out, params, up)
    torch.testing.assert_close(fused_out, net(x), rtol=1e-12, atol=1e-12)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert _fused_op_gradcheck(kind, g)


def test_fused_training_activation_in_bfloat16():
    net = _random_net(0, 10, (32, 32), 2, True)
    x = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused, plain = net.hidden_for_training(x), net.net[:-1](x)
    assert fused.dtype == torch.bfloat16
    torch.testing.assert_close(fused.float(), plain.float(), rtol=0.02, atol=0.02)
    fused.float().sum().backward()
    hidden = list(net.net[:-1].parameters())
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in hidden)
