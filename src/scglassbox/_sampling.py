"""Weighted edge sampling in O(1) per draw (Walker's alias method).

A training step draws ``batch_size`` edges with probability proportional to their weight. A
binary search of the cumulative weights costs ``log |E|`` cache misses per draw (1.1 ms of a
12 ms step on 5,000 cells); an alias table answers each draw with one uniform integer, one
uniform float and two gathers.
"""

from __future__ import annotations

import numpy as np
import torch

#: Rounds after which whatever is left is rounding dust (each round settles every small item).
_MAX_ROUNDS = 64


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Build an alias table for drawing index ``i`` with probability ``weights[i] / sum``.

    Slot ``j`` keeps item ``j`` with probability ``prob[j]`` and gives ``alias[j]`` otherwise;
    a slot is chosen uniformly. This is Vose's construction done in vectorised rounds: in each
    round every under-full item (scaled mass below 1) is topped up by the over-full item whose
    share of the cumulative surplus covers the end of its cumulative deficit, which always has
    enough mass left (see ``tests/test_sampling.py`` for the exact distribution check).

    Parameters
    ----------
    weights
        Non-negative weights with a positive sum.

    Returns
    -------
    ``prob`` (float64) and ``alias`` (int32 below 2**31 items, else int64), each as long as
    ``weights``.
    """
    # One float64 buffer, scaled in place (same values as ``w * (m / w.sum())``).
    mass = np.array(weights, dtype=np.float64)
    m = mass.shape[0]
    mass *= m / mass.sum()
    prob = np.ones(m)
    alias = np.arange(m, dtype=np.int32 if m < 2**31 else np.int64)
    open_ = np.ones(m, dtype=bool)
    # Temporaries are computed in place and dropped early: at 1M cells (about 22M edges) each
    # round's index arrays take a few hundred MB.
    for _ in range(_MAX_ROUNDS):
        small = np.flatnonzero(open_ & (mass < 1.0))
        large = np.flatnonzero(open_ & (mass > 1.0))
        if small.size == 0 or large.size == 0:
            break
        deficit = mass[small]
        np.subtract(1.0, deficit, out=deficit)
        # Large item k covers the cumulative deficits in (S[k-1], S[k]]; the small item whose
        # deficit straddles S[k-1] also takes k, which still has more mass than it needs.
        surplus = mass[large]
        surplus -= 1.0
        np.cumsum(surplus, out=surplus)
        owner = np.searchsorted(surplus, np.cumsum(deficit), side="left")
        del surplus
        # Deficits and surpluses balance exactly, so a cumulative deficit past the last
        # surplus is rounding: the last large item takes it.
        np.minimum(owner, large.size - 1, out=owner)
        kept = mass[small]
        prob[small] = np.maximum(kept, 0.0, out=kept)
        del kept
        alias[small] = large[owner]
        open_[small] = False
        del small
        mass[large] -= np.bincount(owner, weights=deficit, minlength=large.size)
        del owner, deficit, large
    # Items still open hold a mass of 1 up to rounding: they keep their own slot.
    return prob, alias


def draw(
    prob: torch.Tensor, alias: torch.Tensor, n: int, generator: torch.Generator
) -> torch.Tensor:
    """Draw ``n`` indices from an alias table (tensors on the sampling device)."""
    dev = prob.device
    slot = torch.randint(prob.shape[0], (n,), generator=generator, device=dev)
    keep = torch.rand(n, generator=generator, device=dev, dtype=prob.dtype) < prob.index_select(
        0, slot
    )
    return torch.where(keep, slot, alias.index_select(0, slot))
