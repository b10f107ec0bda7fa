"""Fused CPU kernels (numba) for the routed encoder's training pass.

PReLU followed by :class:`~scglassbox._encoder.ScaleNorm`, forward and backward, one row at a
time: two passes over the activations where PyTorch's element-wise operators make about
twelve (see :class:`~scglassbox._encoder._PReLUScaleNorm`), which were about half of a CPU
training step of the routed default. bfloat16 activations are read and written as their bit
patterns (16-bit integers), so no tensor-wide casts are needed; arithmetic is float32, and
results are rounded to bfloat16 to nearest, ties to even, as PyTorch rounds.

Same function as the PyTorch pass up to rounding; deterministic (a row's work, and the slope
gradient's sum over a block's rows, have a fixed order). The kernels release the GIL, so the
row blocks of :mod:`scglassbox._threads` run them in parallel. Compiled on first use in each
process (about a second for the bfloat16 pair), never cached on disk: numba's disk cache is
pickled, and this package neither writes nor loads pickles.

``mlp_norm`` keeps the PyTorch pass: its fits (the default below 10,000 cells) are pinned bit
for bit by the small-set fingerprints, and moving them needs the multi-seed small-set check.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_SHIFT = np.uint32(16)
_ROUND = np.uint32(0x7FFF)
_ONE = np.uint32(1)
_ABS = np.uint32(0x7FFFFFFF)
_INF = np.uint32(0x7F800000)
_QNAN = np.uint32(0x7FC00000)
_HALF = np.float32(0.5)
#: The gate's argument is clipped to +-this (``u * u`` stays finite): see ``_routed.GATE_CLIP``.
_CLIP = np.float32(1e4)


#: The kernels' compile options: no ``cache`` (see the module docstring).
_jit = numba.njit(nogil=True, fastmath=True)
_inline = numba.njit(inline="always")
#: The gated kernels' options: NumPy's error model, as Python's check for a division by zero
#: keeps their loops from vectorising (4x slower). It made the PReLU kernels 1.5-2x slower, so
#: they keep Python's (which they never pay for: they divide outside their loops).
_jit_gate = numba.njit(nogil=True, fastmath=True, error_model="numpy")
_inline_gate = numba.njit(inline="always", error_model="numpy")


@_inline
def _widen(row16, bits):
    """bfloat16 bits (int16) of a row into float32 bits (uint32)."""
    for j in range(row16.shape[0]):
        bits[j] = np.uint32(np.uint16(row16[j])) << _SHIFT


@_inline
def _narrow(bits, row16):
    """float32 bits into bfloat16 bits, rounded to nearest even (NaN stays NaN)."""
    for j in range(bits.shape[0]):
        u = bits[j]
        if (u & _ABS) > _INF:
            u = _QNAN
        u = u + _ROUND + ((u >> _SHIFT) & _ONE)
        row16[j] = np.int16(np.uint16(u >> _SHIFT))


@_inline
def _normalise(out, s, eps) -> np.float32:
    """Divide the row ``out`` by its root mean square (``s``: its sum of squares); the scale."""
    inv = _F1 / np.sqrt(s / np.float32(out.shape[0]) + eps)
    for j in range(out.shape[0]):
        out[j] *= inv
    return inv


@_inline
def _act_norm(x, w, eps, out) -> np.float32:
    """``out = prelu(x) * inv`` with ``inv`` the row's inverse RMS; returns ``inv``."""
    s = _F0
    for j in range(x.shape[0]):
        v = max(x[j], _F0) + w[j] * min(x[j], _F0)
        out[j] = v
        s += v * v
    return _normalise(out, s, eps)


@_inline
def _act_norm_grad(g, x, w, inv, gx, gw) -> None:
    """``gx``: the gradient of ``prelu(x) * inv(x)`` along ``g``; adds the slopes' to ``gw``."""
    h = x.shape[0]
    dot = _F0
    for j in range(h):
        dot += g[j] * (max(x[j], _F0) + w[j] * min(x[j], _F0))
    # d(y * inv)/dy applied to g: inv * (g - out * mean(g * out)), out = y * inv.
    dot = -dot * inv * inv / np.float32(h)
    for j in range(h):
        y = max(x[j], _F0) + w[j] * min(x[j], _F0)
        gy = (g[j] + y * dot) * inv
        gw[j] += gy * min(x[j], _F0)
        gx[j] = gy * (_F1 if x[j] > _F0 else w[j])


@_jit
def _forward_f32(z, w, eps, out, inv):  # pragma: no cover (compiled)
    for i in range(z.shape[0]):
        inv[i] = _act_norm(z[i], w, eps, out[i])


@_jit
def _backward_f32(g, z, inv, w, gz, gw):  # pragma: no cover (compiled)
    for i in range(z.shape[0]):
        _act_norm_grad(g[i], z[i], w, inv[i], gz[i], gw)


@_jit
def _forward_bf16(z, w, eps, out, inv):  # pragma: no cover (compiled)
    h = z.shape[1]
    xb, yb = np.empty(h, np.uint32), np.empty(h, np.uint32)
    x, y = xb.view(np.float32), yb.view(np.float32)
    for i in range(z.shape[0]):
        _widen(z[i], xb)
        inv[i] = _act_norm(x, w, eps, y)
        _narrow(yb, out[i])


@_jit
def _backward_bf16(g, z, inv, w, gz, gw):  # pragma: no cover (compiled)
    h = z.shape[1]
    xb, gb, ob = np.empty(h, np.uint32), np.empty(h, np.uint32), np.empty(h, np.uint32)
    x, gr, o = xb.view(np.float32), gb.view(np.float32), ob.view(np.float32)
    for i in range(z.shape[0]):
        _widen(z[i], xb)
        _widen(g[i], gb)
        _act_norm_grad(gr, x, w, inv[i], o, gw)
        _narrow(ob, gz[i])


@_inline_gate
def _gate_norm(x, w, scale, off, eps, out) -> np.float32:
    """``out = x * gate * inv``, ``gate = w + (1 - w) sigmoid(scale (x + off))``; ``inv``."""
    s = _F0
    for j in range(x.shape[0]):
        u = min(max(scale[j] * (x[j] + off[j]), -_CLIP), _CLIP)
        v = x[j] * (w[j] + (_F1 - w[j]) * _HALF * (_F1 + u / np.sqrt(_F1 + u * u)))
        out[j] = v
        s += v * v
    return _normalise(out, s, eps)


@_inline_gate
def _gate_norm_grad(g, x, w, scale, off, inv, gx, gw, gscale, goff) -> None:
    """``gx``: the gradient of the gated unit and ScaleNorm along ``g``.

    Adds the slopes', the gate scales' and the offsets' gradients to ``gw``, ``gscale`` and
    ``goff``.
    """
    h = x.shape[0]
    dot = _F0
    for j in range(h):
        u = min(max(scale[j] * (x[j] + off[j]), -_CLIP), _CLIP)
        dot += g[j] * x[j] * (w[j] + (_F1 - w[j]) * _HALF * (_F1 + u / np.sqrt(_F1 + u * u)))
    dot = -dot * inv * inv / np.float32(h)
    for j in range(h):
        a = x[j] + off[j]
        u = min(max(scale[j] * a, -_CLIP), _CLIP)
        r = _F1 / np.sqrt(_F1 + u * u)
        sig = _HALF * (_F1 + u * r)
        gate = w[j] + (_F1 - w[j]) * sig
        gy = (g[j] + x[j] * gate * dot) * inv
        # The path through the gate's argument: d gate / d u times the value.
        q = gy * x[j] * (_F1 - w[j]) * _HALF * r * r * r
        gw[j] += gy * x[j] * (_F1 - sig)
        gscale[j] += q * a
        goff[j] += q * scale[j]
        gx[j] = gy * gate + q * scale[j]


@_jit_gate
def _gate_forward_f32(z, w, scale, off, tile, eps, out, inv):  # pragma: no cover (compiled)
    for i in range(z.shape[0]):
        inv[i] = _gate_norm(z[i], w, scale, off[i // tile], eps, out[i])


@_jit_gate
def _gate_backward_f32(g, z, inv, w, scale, off, tile, gz, gw, gscale, goff):  # pragma: no cover
    for i in range(z.shape[0]):
        t = i // tile
        _gate_norm_grad(g[i], z[i], w, scale, off[t], inv[i], gz[i], gw, gscale, goff[t])


@_jit_gate
def _gate_forward_bf16(z, w, scale, off, tile, eps, out, inv):  # pragma: no cover (compiled)
    h = z.shape[1]
    xb, yb = np.empty(h, np.uint32), np.empty(h, np.uint32)
    x, y = xb.view(np.float32), yb.view(np.float32)
    for i in range(z.shape[0]):
        _widen(z[i], xb)
        inv[i] = _gate_norm(x, w, scale, off[i // tile], eps, y)
        _narrow(yb, out[i])


@_jit_gate
def _gate_backward_bf16(g, z, inv, w, scale, off, tile, gz, gw, gscale, goff):  # pragma: no cover
    h = z.shape[1]
    xb, gb, ob = np.empty(h, np.uint32), np.empty(h, np.uint32), np.empty(h, np.uint32)
    x, gr, o = xb.view(np.float32), gb.view(np.float32), ob.view(np.float32)
    for i in range(z.shape[0]):
        t = i // tile
        _widen(z[i], xb)
        _widen(g[i], gb)
        _gate_norm_grad(gr, x, w, scale, off[t], inv[i], o, gw, gscale, goff[t])
        _narrow(ob, gz[i])


def _bits(t: torch.Tensor) -> np.ndarray:
    """A writable NumPy view of a contiguous CPU tensor (bfloat16 as its int16 bits)."""
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()


def supported(z: torch.Tensor) -> bool:
    """Whether the kernels take ``z``: a 2-D float32 or bfloat16 tensor on the CPU."""
    return z.device.type == "cpu" and z.dim() == 2 and z.dtype in (torch.float32, torch.bfloat16)


class PReLUScaleNormCPU(torch.autograd.Function):
    """PReLU with per-unit slopes, then ScaleNorm, along the last axis (training only).

    ``forward(z, slope, eps)`` takes a tensor for which :func:`supported` holds; it returns a
    tensor of ``z``'s dtype. Saves ``z`` and one float32 scale per row for the backward pass
    (which recomputes the activation instead of saving it).
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, slope: torch.Tensor, eps: float):
        z = z.contiguous()
        w = slope.detach().to(torch.float32).contiguous()
        out = torch.empty_like(z)
        inv = torch.empty(z.shape[0], dtype=torch.float32)
        kernel = _forward_bf16 if z.dtype == torch.bfloat16 else _forward_f32
        kernel(_bits(z), w.numpy(), np.float32(eps), _bits(out), inv.numpy())
        ctx.save_for_backward(z, inv, w)
        ctx.slope_dtype = slope.dtype
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        z, inv, w = ctx.saved_tensors
        g = g.to(z.dtype).contiguous()
        gz = torch.empty_like(z)
        gw = np.zeros(z.shape[1], dtype=np.float32)
        kernel = _backward_bf16 if z.dtype == torch.bfloat16 else _backward_f32
        kernel(_bits(g), _bits(z), inv.numpy(), w.numpy(), _bits(gz), gw)
        grad_slope = torch.from_numpy(gw).to(ctx.slope_dtype) if ctx.needs_input_grad[1] else None
        return gz, grad_slope, None


class GateScaleNormCPU(torch.autograd.Function):
    """The routed encoder's gated unit, then ScaleNorm, along the last axis (training only).

    ``forward(z, slope, scale, offset, eps)``: ``z * (slope + (1 - slope) sigmoid(scale (z +
    offset)))``, each row divided by its root mean square. ``offset`` has one row per
    ``z.shape[0] // offset.shape[0]`` consecutive rows of ``z`` (a tile's expert's offsets);
    ``slope``, ``scale`` and ``offset`` are float32 and get gradients; ``z`` is a tensor for
    which :func:`supported` holds. Saves ``z`` and one float32 scale per row.
    """

    @staticmethod
    def forward(ctx, z, slope, scale, offset, eps):
        z = z.contiguous()
        w, s, o = (t.detach().to(torch.float32).contiguous() for t in (slope, scale, offset))
        tile = z.shape[0] // max(o.shape[0], 1)
        if tile * o.shape[0] != z.shape[0]:
            raise ValueError(f"{o.shape[0]} offset rows do not tile {z.shape[0]} rows.")
        out = torch.empty_like(z)
        inv = torch.empty(z.shape[0], dtype=torch.float32)
        kernel = _gate_forward_bf16 if z.dtype == torch.bfloat16 else _gate_forward_f32
        kernel(
            _bits(z),
            w.numpy(),
            s.numpy(),
            o.numpy(),
            tile,
            np.float32(eps),
            _bits(out),
            inv.numpy(),
        )
        ctx.save_for_backward(z, inv, w, s, o)
        ctx.tile = tile
        ctx.dtypes = (slope.dtype, scale.dtype, offset.dtype)
        return out

    @staticmethod
    def backward(ctx, g):
        z, inv, w, s, o = ctx.saved_tensors
        g = g.to(z.dtype).contiguous()
        gz = torch.empty_like(z)
        gw, gs, go = np.zeros_like(w.numpy()), np.zeros_like(s.numpy()), np.zeros_like(o.numpy())
        kernel = _gate_backward_bf16 if z.dtype == torch.bfloat16 else _gate_backward_f32
        kernel(
            _bits(g),
            _bits(z),
            inv.numpy(),
            w.numpy(),
            s.numpy(),
            o.numpy(),
            ctx.tile,
            _bits(gz),
            gw,
            gs,
            go,
        )
        grads = [torch.from_numpy(a).to(d) for a, d in zip((gw, gs, go), ctx.dtypes, strict=True)]
        return (
            gz,
            *(
                gr if need else None
                for gr, need in zip(grads, ctx.needs_input_grad[1:4], strict=True)
            ),
            None,
        )


@numba.njit(nogil=True)
def _tile_order(route, fill, end, tile, rows, position, tile_expert):  # pragma: no cover
    """The counting sort of :func:`tiles`: ``fill`` holds each expert's first tiled row."""
    for i in range(route.shape[0]):
        e = route[i]
        rows[fill[e]] = i
        position[i] = fill[e]
        fill[e] += 1
    first = rows[0]
    begin = 0
    for e in range(end.shape[0]):
        for p in range(fill[e], end[e]):  # the last tile padded with copies of its last row
            rows[p] = rows[fill[e] - 1]
        for t in range(begin // tile, end[e] // tile):
            tile_expert[t] = e
        begin = end[e]
    for p in range(begin, rows.shape[0]):  # extra tiles: expert 0 on the first row
        rows[p] = first
    for t in range(begin // tile, tile_expert.shape[0]):
        tile_expert[t] = 0


def tiles(
    route: torch.Tensor, experts: int, tile: int, group: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``RoutedMLP._tiles`` as one counting sort: the same three tensors, in O(rows).

    ``(rows, tile_experts, position)``: each expert's rows (in order) fill whole tiles of
    ``tile`` rows, the last one padded with copies of its last row; the number of tiles is
    padded to a multiple of ``group`` with tiles of expert 0 on the first tiled row.
    ``position[i]`` is where row ``i`` sits. A stable sort in PyTorch took about 1 ms of a
    20,000-cell step's 15,000 rows, which now run in one thread.
    """
    r = route.detach().to(torch.int64).contiguous().numpy()
    padded = -(-np.bincount(r, minlength=experts) // tile) * tile
    end = np.cumsum(padded)
    tiles_ = int(end[-1]) // tile
    tiles_ += -tiles_ % group
    rows = np.empty(tiles_ * tile, np.int64)
    position = np.empty(r.shape[0], np.int64)
    tile_expert = np.empty(tiles_, np.int64)
    if r.shape[0]:  # the sort reads the first row
        _tile_order(r, end - padded, end, tile, rows, position, tile_expert)
    return torch.from_numpy(rows), torch.from_numpy(tile_expert), torch.from_numpy(position)
