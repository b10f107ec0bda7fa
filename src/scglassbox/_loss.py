"""UMAP's cross-entropy on a step's edges as one fused CPU pass (numba), for routed fits.

The loss of :meth:`scglassbox._training.UMAPModule._loss` in PyTorch makes some twenty
element-wise passes, forward and backward, over each step's ``edges x (1 + negatives)``
pairs of 2-D points: with 15 negatives per edge that was about 15% of a 20,000-cell CPU fit.
Here one loop gathers each pair's squared distance, NumPy's vectorised loops take the three
transcendental functions of all of them, and a second loop adds each pair's term to the loss
and its gradient to the two points it joins; the backward pass only scales that gradient. Same
function up to float32 rounding (the sums are accumulated in float64); deterministic (the
pairs are visited in a fixed order); releases the GIL, so the row blocks of
:mod:`scglassbox._threads` run their parts in parallel. Compiled on first use in each
process, never cached on disk (see ``_kernels``).

The repulsion's weight in the gradient can differ from its weight in the value: training
ramps the repulsion up (``_training.REPULSION_START``) while the reported loss stays the
full objective, so epochs compare (``restore_best_weights`` picks the lowest).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

_F1 = np.float32(1.0)
_F2 = np.float32(2.0)


@numba.njit(nogil=True, fastmath=True)
def _squared_distances(emb, heads, tails, negs, eps, d2):  # pragma: no cover (compiled)
    """``d2[i, 0]``: edge ``i``'s squared distance plus ``eps``; ``d2[i, q]``: its negative's."""
    k = negs.shape[1]
    for i in range(heads.shape[0]):
        h = heads[i]
        for q in range(k + 1):
            r = tails[i] if q == 0 else negs[i, q - 1]
            total = eps
            for j in range(emb.shape[1]):
                diff = emb[h, j] - emb[r, j]
                total += diff * diff
            d2[i, q] = total


@numba.njit(nogil=True, fastmath=True, error_model="numpy")
def _sums_and_grad(emb, heads, tails, negs, d2, s, p, soft, b, rep, grad):  # pragma: no cover
    """The two sums of terms, and the gradient added to ``grad`` (see :func:`_pairs`)."""
    k = negs.shape[1]
    two_b = _F2 * b
    attraction = 0.0
    repulsion = 0.0
    for i in range(heads.shape[0]):
        h = heads[i]
        for q in range(k + 1):
            r = tails[i] if q == 0 else negs[i, q - 1]
            # d(term)/d(diff): sigmoid(s) = p / (1 + p) or -sigmoid(-s) = -1 / (1 + p), times
            # ds/d(d2) = b / d2 and d(d2)/d(diff) = 2 diff.
            c = two_b / ((_F1 + p[i, q]) * d2[i, q])
            if q == 0:  # attraction: -log q
                attraction += soft[i, q]
                c *= p[i, q]
            else:  # repulsion: -log(1 - q)
                repulsion += soft[i, q] - s[i, q]
                c *= -rep
            for j in range(emb.shape[1]):
                g = c * (emb[h, j] - emb[r, j])
                grad[h, j] += g
                grad[r, j] -= g
    return attraction, repulsion


def _pairs(emb, heads, tails, negs, log_a, b, rep, eps, grad) -> tuple[float, float]:
    """The edges' and the negatives' terms of ``heads[i]``-``tails[i]`` edges; adds to ``grad``.

    With ``d2`` a pair's squared distance plus ``eps``, ``s = log_a + b log d2`` and ``p =
    e^s``: an edge's term is ``softplus(s) = log(1 + p)``, a negative's ``softplus(-s) =
    log(1 + p) - s``; ``negs`` holds ``k`` rows per edge. Returns the two sums, unweighted
    (accumulated in float64); ``grad`` gets the gradient of ``edges + rep * negatives``.

    Three passes: the distances (numba), their three transcendental functions over whole
    arrays (NumPy's SIMD loops, which release the GIL too), then the sums and the gradient
    (numba). One numba loop calling the scalar functions pair by pair took 2.4x as long.
    """
    d2 = np.empty((heads.shape[0], negs.shape[1] + 1), np.float32)
    _squared_distances(emb, heads, tails, negs, eps, d2)
    # Silent on overflow (p = inf far apart, a diverged map), as the compiled loop was.
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.log(d2)
        s *= b
        s += log_a
        p = np.exp(s)
        soft = np.log1p(p)
    return _sums_and_grad(emb, heads, tails, negs, d2, s, p, soft, b, rep, grad)


def supported(emb: torch.Tensor) -> bool:
    """Whether :class:`UMAPLossCPU` takes ``emb``: a 2-D float32 tensor on the CPU."""
    return emb.device.type == "cpu" and emb.dim() == 2 and emb.dtype == torch.float32


class UMAPLossCPU(torch.autograd.Function):
    """``(sum of edge terms + rep * sum of negative terms) / n`` and its gradient.

    ``forward(emb, heads, tails, negs, a, b, rep, eps, n, rep_value=None)``: ``emb`` the
    step's points (see :func:`supported`), ``heads``/``tails`` their rows for each edge,
    ``negs`` ``(edges, k)`` rows of each edge's negatives, ``n`` the divisor (the step's edge
    count). The value weighs the negatives by ``rep_value`` (``rep`` when ``None``), the
    gradient by ``rep``. Only ``emb`` gets a gradient, computed in the forward pass and saved.
    """

    @staticmethod
    def forward(ctx, emb, heads, tails, negs, a, b, rep, eps, n, rep_value=None):
        x = emb.detach().contiguous()
        grad = np.zeros(x.shape, dtype=np.float32)
        attraction, repulsion = _pairs(
            x.numpy(),
            heads.contiguous().numpy(),
            tails.contiguous().numpy(),
            negs.contiguous().numpy(),
            np.float32(math.log(a)),
            np.float32(b),
            np.float32(rep),
            np.float32(eps),
            grad,
        )
        g = torch.from_numpy(grad)
        g /= n
        ctx.save_for_backward(g)
        total = attraction + (rep if rep_value is None else rep_value) * repulsion
        return emb.new_tensor(total / n)

    @staticmethod
    def backward(ctx, out):
        (g,) = ctx.saved_tensors
        return g * out, None, None, None, None, None, None, None, None, None
