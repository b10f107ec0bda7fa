"""Fused CPU kernels (numba) for the routed encoder's training pass.

PReLU followed by :class:`~scglassbox._encoder.ScaleNorm`, forward and backward, one row at a
time: two passes over the activations where PyTorch's element-wise operators make about
twelve (see :class:`~scglassbox._encoder._PReLUScaleNorm`), which were about half of a CPU
training step of the routed default. bfloat16 activations are read and written as their bit
patterns (16-bit integers), so no tensor-wide casts are needed; arithmetic is float32, and
results are rounded to bfloat16 to nearest, ties to even, as PyTorch rounds. One kernel serves
both dtypes: ``_load`` and ``_store`` convert each element (an LLVM bitcast, not a view of a
scratch row, which took twice as long to compile).

Same function as the PyTorch pass up to rounding; deterministic (a row's work, and the slope
gradient's sum over a block's rows, have a fixed order). The kernels release the GIL, so the
row blocks of :mod:`scglassbox._threads` run them in parallel. Compiled on first use in each
process (about 0.6 s for the bfloat16 pair), never cached on disk: numba's disk cache is
pickled, and this package neither writes nor loads pickles.

``mlp_norm`` keeps the PyTorch pass: its fits (the default below 10,000 cells) are pinned bit
for bit by the small-set fingerprints, and moving them needs the multi-seed small-set check.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import types
from numba.extending import intrinsic, overload

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


#: The kernels' compile options: no ``cache`` (see the module docstring). NumPy's error model:
#: Python's check for a division by zero kept the gated loops from vectorising (4x slower);
#: the PReLU kernels, which divide outside their loops, run as fast either way.
_jit = numba.njit(nogil=True, fastmath=True, error_model="numpy")
_inline = numba.njit(inline="always", error_model="numpy")


@intrinsic
def _f32_of_bits(typingctx, bits):
    """The float32 whose bit pattern is the uint32 ``bits`` (an LLVM bitcast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(types.uint32), codegen


@intrinsic
def _bits_of_f32(typingctx, x):
    """The bit pattern (uint32) of the float32 ``x`` (an LLVM bitcast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint32))

    return types.uint32(types.float32), codegen


def _load(row, j):  # pragma: no cover (compiled code calls the overload below)
    """``row[j]`` as float32: a bfloat16 row holds int16 bit patterns."""
    raise NotImplementedError


def _store(row, j, v) -> None:  # pragma: no cover (as _load)
    """``row[j] = v``, the float32 ``v`` rounded to bfloat16 (nearest even) in int16 rows."""
    raise NotImplementedError


@overload(_load)
def _load_typed(row, j):
    if row.dtype == types.int16:
        return lambda row, j: _f32_of_bits(np.uint32(np.uint16(row[j])) << _SHIFT)
    return lambda row, j: row[j]


def _store_bf16(row, j, v):  # pragma: no cover (compiled)
    u = _bits_of_f32(v)
    if (u & _ABS) > _INF:  # NaN stays NaN
        u = _QNAN
    u = u + _ROUND + ((u >> _SHIFT) & _ONE)
    row[j] = np.int16(np.uint16(u >> _SHIFT))


def _store_f32(row, j, v):  # pragma: no cover (compiled)
    row[j] = v


# numba inlines the store into the loops (as a call it kept the backward pass from
# vectorising, 10x slower). Inlined code must not pass a conditional expression as an
# argument: numba 0.68 miscompiled `_store(gz, j, gy * (1 if x > 0 else w[j]))`.
@overload(_store, inline="always")
def _store_typed(row, j, v):
    return _store_bf16 if row.dtype == types.int16 else _store_f32


@_inline
def _act_norm(z, w, eps, y, out) -> np.float32:
    """``out = prelu(z) * inv`` with ``inv`` the row's inverse RMS (``y``: scratch); ``inv``."""
    h = z.shape[0]
    s = _F0
    for j in range(h):
        x = _load(z, j)
        v = max(x, _F0) + w[j] * min(x, _F0)
        y[j] = v
        s += v * v
    inv = _F1 / np.sqrt(s / np.float32(h) + eps)
    for j in range(h):
        _store(out, j, y[j] * inv)
    return inv


@_inline
def _act_norm_grad(g, z, w, inv, gz, gw) -> None:
    """``gz``: the gradient of ``prelu(z) * inv(z)`` along ``g``; adds the slopes' to ``gw``."""
    h = z.shape[0]
    dot = _F0
    for j in range(h):
        x = _load(z, j)
        dot += _load(g, j) * (max(x, _F0) + w[j] * min(x, _F0))
    # d(y * inv)/dy applied to g: inv * (g - out * mean(g * out)), out = y * inv.
    dot = -dot * inv * inv / np.float32(h)
    for j in range(h):
        x = _load(z, j)
        y = max(x, _F0) + w[j] * min(x, _F0)
        gy = (_load(g, j) + y * dot) * inv
        gw[j] += gy * min(x, _F0)
        slope = w[j]
        if x > _F0:
            slope = _F1
        _store(gz, j, gy * slope)


@_jit
def _forward(z, w, eps, out, inv):  # pragma: no cover (compiled)
    y = np.empty(z.shape[1], np.float32)
    for i in range(z.shape[0]):
        inv[i] = _act_norm(z[i], w, eps, y, out[i])


@_jit
def _backward(g, z, inv, w, gz, gw):  # pragma: no cover (compiled)
    for i in range(z.shape[0]):
        _act_norm_grad(g[i], z[i], w, inv[i], gz[i], gw)


@_inline
def _gate_norm(z, w, scale, off, eps, y, out) -> np.float32:
    """``out = z * gate * inv``, ``gate = w + (1 - w) sigmoid(scale (z + off))``; ``inv``."""
    h = z.shape[0]
    s = _F0
    for j in range(h):
        x = _load(z, j)
        u = min(max(scale[j] * (x + off[j]), -_CLIP), _CLIP)
        v = x * (w[j] + (_F1 - w[j]) * _HALF * (_F1 + u / np.sqrt(_F1 + u * u)))
        y[j] = v
        s += v * v
    inv = _F1 / np.sqrt(s / np.float32(h) + eps)
    for j in range(h):
        _store(out, j, y[j] * inv)
    return inv


@_inline
def _gate_norm_grad(g, z, w, scale, off, inv, gz, gw, gscale, goff) -> None:
    """``gz``: the gradient of the gated unit and ScaleNorm along ``g``.

    Adds the slopes', the gate scales' and the offsets' gradients to ``gw``, ``gscale`` and
    ``goff``.
    """
    h = z.shape[0]
    dot = _F0
    for j in range(h):
        x = _load(z, j)
        u = min(max(scale[j] * (x + off[j]), -_CLIP), _CLIP)
        dot += _load(g, j) * x * (w[j] + (_F1 - w[j]) * _HALF * (_F1 + u / np.sqrt(_F1 + u * u)))
    dot = -dot * inv * inv / np.float32(h)
    for j in range(h):
        x = _load(z, j)
        a = x + off[j]
        u = min(max(scale[j] * a, -_CLIP), _CLIP)
        r = _F1 / np.sqrt(_F1 + u * u)
        sig = _HALF * (_F1 + u * r)
        gate = w[j] + (_F1 - w[j]) * sig
        gy = (_load(g, j) + x * gate * dot) * inv
        # The path through the gate's argument: d gate / d u times the value.
        q = gy * x * (_F1 - w[j]) * _HALF * r * r * r
        gw[j] += gy * x * (_F1 - sig)
        gscale[j] += q * a
        goff[j] += q * scale[j]
        _store(gz, j, gy * gate + q * scale[j])


@_jit
def _gate_forward(z, w, scale, off, tile, eps, out, inv):  # pragma: no cover (compiled)
    y = np.empty(z.shape[1], np.float32)
    for i in range(z.shape[0]):
        inv[i] = _gate_norm(z[i], w, scale, off[i // tile], eps, y, out[i])


@_jit
def _gate_backward(g, z, inv, w, scale, off, tile, gz, gw, gscale, goff):  # pragma: no cover
    for i in range(z.shape[0]):
        t = i // tile
        _gate_norm_grad(g[i], z[i], w, scale, off[t], inv[i], gz[i], gw, gscale, goff[t])


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
        _forward(_bits(z), w.numpy(), np.float32(eps), _bits(out), inv.numpy())
        ctx.save_for_backward(z, inv, w)
        ctx.slope_dtype = slope.dtype
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        z, inv, w = ctx.saved_tensors
        g = g.to(z.dtype).contiguous()
        gz = torch.empty_like(z)
        gw = np.zeros(z.shape[1], dtype=np.float32)
        _backward(_bits(g), _bits(z), inv.numpy(), w.numpy(), _bits(gz), gw)
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
        _gate_forward(
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
        _gate_backward(
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
