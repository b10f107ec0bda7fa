"""Encoders whose outputs split exactly into per-feature contributions.

Two built-in families, both bias-free with PReLU activations:

``"mlp"``
    Strictly positively homogeneous of degree 1: ``f(c x) = c f(x)`` for ``c > 0``. Within each
    linear region ``f(x) = J(x) x``, so the contributions ``J(x) * x`` are true gradient x input
    (equal to Integrated Gradients from the baseline 0).
``"mlp_norm"``
    The same with a shift-free normalisation after each hidden activation (divide by the root
    mean square of the layer). The network is scale-invariant (degree 0):
    ``f(2x) = f(x)``. Its contributions ``A(x) * x`` use the Jacobian with every normalisation
    scale frozen at its value for that cell: still an exact additive split, but not a
    gradient (the true gradient satisfies ``J x = 0``).
``"mlp_gate"``
    Like ``"mlp_norm"``, with each PReLU replaced by a gated unit
    ``h = z * sigmoid(s * (z + b))`` (``z = W x`` bias-free; ``s`` and ``b`` learned per unit).
    The value path has no bias, but the gate bends where ``z = -b``, away from the origin, so a
    tight cluster far from the mean cell gets linear pieces of its own. With every gate and
    normalisation scale frozen at its value for the cell (attribution), each layer is
    ``diag(g) W x``: ``f(x) = A(x) x`` exactly, and the contributions ``A(x) * x`` are an exact
    additive split, not gradient x input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

ENCODERS = ("mlp", "mlp_norm", "mlp_gate")
#: What ``encoder="default"`` means; chosen by ``benchmarks/run.py``.
DEFAULT_ENCODER = "mlp_norm"
DEFAULT_HIDDEN = (128, 128)


class ScaleNorm(nn.Module):
    """Divide a hidden vector by its root mean square (no shift, no gain).

    Maps 0 to 0. With ``frozen_scale`` set (during attribution) the scale is treated as a
    constant, which makes the layer linear in its input. A gain would be redundant: the next
    bias-free linear layer absorbs it.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.frozen_scale = False

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        inv_scale = torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        if self.frozen_scale:
            inv_scale = inv_scale.detach()
        return h * inv_scale


class PReLU(nn.PReLU):
    """:class:`torch.nn.PReLU` computed as ``relu(x) - a * relu(-x)``.

    The same function, bit for bit in float32 (one of the two terms is exactly zero), with
    the same parameter, but its backward pass avoids PyTorch's PReLU backward kernel (3x
    slower in bfloat16, 1.4x in float32, measured on 4,608 x 128 activations), which the
    contributions' backward passes would otherwise run. Training uses
    :meth:`GlassBoxMLP.hidden_for_training` instead.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) - self.weight.to(x.dtype) * torch.relu(-x)


class Gate(nn.Module):
    """``z * sigmoid(s * (z + b))`` per unit: a bias-free value, a gate with an offset.

    With ``frozen_scale`` set (during attribution) the gate is treated as a constant, which
    makes the unit linear in ``z``. ``b`` starts from N(0, 1), so units bend at different
    places from the first step (measured better than starting at 0, docs/performance.md).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.randn(width))
        self.slope = nn.Parameter(torch.ones(width))
        self.frozen_scale = False

    def gate(self, z: torch.Tensor) -> torch.Tensor:
        """The gate's value ``sigmoid(s * (z + b))``."""
        s, b = self.slope.to(z.dtype), self.offset.to(z.dtype)
        return torch.sigmoid(s * (z + b))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        g = self.gate(z)
        if self.frozen_scale:
            g = g.detach()
        return z * g


class _GateScaleNorm(torch.autograd.Function):
    """:class:`Gate` followed by :class:`ScaleNorm`, with a hand-written backward pass.

    The same function as the two modules (up to rounding), for training only; attribution
    keeps the modules, whose frozen gate and scale this does not model.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, slope: torch.Tensor, offset: torch.Tensor, eps: float):
        s, b = slope.to(z.dtype), offset.to(z.dtype)
        u = z + b
        g = torch.sigmoid(s * u)
        y = z * g
        sq = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
        sq = sq.to(torch.promote_types(sq.dtype, torch.float32)).square_()
        inv = torch.rsqrt(sq.div_(y.shape[-1]).add_(eps)).to(y.dtype)
        out = y.mul_(inv)
        ctx.save_for_backward(z, u, g, s, out, inv)
        ctx.param_dtype = slope.dtype
        return out

    @staticmethod
    def backward(ctx, gout: torch.Tensor):
        z, u, g, s, out, inv = ctx.saved_tensors
        # Through the normalisation: inv * (g - out * mean(g * out)) along the layer.
        dot = (gout * out).sum(-1, keepdim=True).div_(-out.shape[-1])
        gy = torch.addcmul(gout, out, dot).mul_(inv)
        # y = z * sigmoid(s * u), u = z + b: dy/dz = g + z g (1 - g) s, dy/db = z g (1 - g) s,
        # dy/ds = z g (1 - g) u.
        q = gy * z * g * (1 - g)
        grad_s = (q * u).sum(0).to(ctx.param_dtype)
        qs = q.mul_(s)
        grad_b = qs.sum(0).to(ctx.param_dtype)
        return torch.addcmul(qs, gy, g), grad_s, grad_b, None


class _PReLUScaleNorm(torch.autograd.Function):
    """PReLU, optionally followed by :class:`ScaleNorm`, with a hand-written backward pass.

    The same function as the two modules (up to rounding in the normalisation), for training
    only: about 12 passes over the activations, forward and backward, where autograd makes
    about 20, and those passes are the larger part of a CPU training step after the matrix
    products. Comparisons and masks are avoided: on CPU they run several times slower than
    arithmetic in bfloat16. Attribution keeps the modules, whose frozen normalisation this
    does not model.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, norm: bool, eps: float):
        w = weight.to(x.dtype)
        ctx.weight_dtype, ctx.norm = weight.dtype, norm
        y = torch.prelu(x, w)  # torch's forward kernel is fast; its backward is not
        if not norm:
            ctx.save_for_backward(x, w)
            return y
        # Reductions stay in x's dtype: CPU reductions accumulate bfloat16 in float32 anyway,
        # and asking for a float32 result first copies the whole tensor to float32.
        sq = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
        sq = sq.to(torch.promote_types(sq.dtype, torch.float32)).square_()
        inv = torch.rsqrt(sq.div_(y.shape[-1]).add_(eps)).to(y.dtype)
        out = y * inv
        ctx.save_for_backward(x, w, out, inv)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        if ctx.norm:
            x, w, out, inv = ctx.saved_tensors
            # d(y * inv)/dy applied to g: inv * (g - out * mean(g * out)) along the layer.
            dot = (g * out).sum(-1, keepdim=True).div_(-out.shape[-1])
            g = torch.addcmul(g, out, dot).mul_(inv)
        else:
            x, w = ctx.saved_tensors
        # Slope 1 where x > 0, w elsewhere (torch's PReLU convention at 0).
        g_pos = torch.ops.aten.threshold_backward(g, x, 0)
        g_neg = g - g_pos
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = (g_neg * x).sum(0).to(ctx.weight_dtype)
        return g_neg.mul_(w).add_(g_pos), grad_w, None, None


class GlassBoxMLP(nn.Module):
    """Bias-free PReLU multilayer perceptron, optionally with :class:`ScaleNorm` layers.

    Parameters
    ----------
    n_in
        Number of input features.
    n_out
        Number of embedding dimensions.
    hidden
        Widths of the hidden layers.
    norm
        Insert a :class:`ScaleNorm` after each hidden activation.
    gate
        Use :class:`Gate` units instead of PReLU (requires ``norm``).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = DEFAULT_HIDDEN,
        norm: bool = False,
        gate: bool = False,
    ) -> None:
        super().__init__()
        if gate and not norm:
            raise ValueError("gated units are built with ScaleNorm (norm=True).")
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h, bias=False), Gate(h) if gate else PReLU(h)]
            if norm:
                layers.append(ScaleNorm())
            width = h
        layers.append(nn.Linear(width, n_out, bias=False))
        self.net = nn.Sequential(*layers)
        self.n_in, self.n_out, self.hidden, self.norm = n_in, n_out, tuple(hidden), norm
        self.gate = gate

    #: Trains in bfloat16 under ``precision='auto'`` (measured: faster at the same quality), and
    #: reads its input through a Linear layer first, so inputs may be stored in that dtype.
    bf16_training = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_forward(
        self, x: torch.Tensor, compute_dtype: torch.dtype | None = None, rows: int | None = None
    ) -> torch.Tensor:
        """The forward pass training uses: the same function, faster.

        Hidden layers go through the fused activation (in ``compute_dtype`` under autocast when
        given); the output layer stays float32, since bfloat16's 8-bit mantissa would round
        coordinates near 10 to about 0.04, the scale of nearest-neighbour distances. Only the
        first ``rows`` rows reach the output layer (the rest are padding).
        """
        if compute_dtype is None:
            h = self.hidden_for_training(x)
        else:
            with torch.autocast(x.device.type, dtype=compute_dtype):
                h = self.hidden_for_training(x)
            h = h.float() if rows is None else h[:rows].float()
        return self.net[-1](h)

    def hidden_for_training(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's output, through the fused activation (training only)."""
        layers = list(self.net)[:-1]
        step = 3 if self.norm else 2  # Linear, PReLU[, ScaleNorm]
        for i in range(0, len(layers), step):
            linear, act = layers[i], layers[i + 1]
            eps = layers[i + 2].eps if self.norm else 0.0
            if self.gate:
                x = _GateScaleNorm.apply(linear(x), act.slope, act.offset, eps)
            else:
                x = _PReLUScaleNorm.apply(linear(x), act.weight, self.norm, eps)
        return x

    @property
    def architecture(self) -> dict:
        """Everything needed to rebuild this module (weights aside)."""
        return {
            "name": "mlp_gate" if self.gate else ("mlp_norm" if self.norm else "mlp"),
            "n_in": self.n_in,
            "n_out": self.n_out,
            "hidden": list(self.hidden),
        }


def training_forward(
    encoder: nn.Module, x: torch.Tensor, compute_dtype: torch.dtype | None, rows: int | None
) -> torch.Tensor:
    """An encoder's training forward: its own ``training_forward`` if it has one, else a call.

    Returns the first ``rows`` rows (all when ``None``) in float32.
    """
    own = getattr(encoder, "training_forward", None)
    if own is not None:
        return own(x, compute_dtype, rows)
    if compute_dtype is None:
        return encoder(x)
    with torch.autocast(x.device.type, dtype=compute_dtype):
        return encoder(x)[:rows].float()


def build_encoder(name: str, n_in: int, n_out: int, **kwargs) -> GlassBoxMLP:
    """Build a built-in encoder by name (``"default"`` or one of :data:`ENCODERS`)."""
    if name == "default":
        name = DEFAULT_ENCODER
    if name not in ENCODERS:
        raise ValueError(
            f"encoder must be one of {('default', *ENCODERS)} or a torch.nn.Module, got {name!r}."
        )
    allowed = {"hidden"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(
            f"encoder_kwargs has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}."
        )
    hidden = tuple(int(h) for h in kwargs.get("hidden", DEFAULT_HIDDEN))
    if any(h < 1 for h in hidden):
        raise ValueError(f"encoder_kwargs['hidden'] must hold positive widths, got {hidden}.")
    return GlassBoxMLP(
        n_in, n_out, hidden=hidden, norm=name in ("mlp_norm", "mlp_gate"), gate=name == "mlp_gate"
    )


@contextlib.contextmanager
def attribution_mode(module: nn.Module) -> Iterator[None]:
    """Freeze every normalisation scale in ``module`` while contributions are taken."""
    frozen = [m for m in module.modules() if hasattr(m, "frozen_scale")]
    before = [m.frozen_scale for m in frozen]
    for m in frozen:
        m.frozen_scale = True
    try:
        yield
    finally:
        for m, b in zip(frozen, before, strict=True):
            m.frozen_scale = b
