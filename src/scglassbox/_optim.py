"""Muon for stacks of weight matrices, Adam for the rest.

Muon (Jordan et al., 2024) keeps a momentum of each weight matrix's gradient and steps along
its orthogonalised form: the momentum ``U S V^T`` becomes ``U V^T``, taken with a few
Newton-Schulz iterations, so every direction of the update moves at the same rate instead of
the gradient's few dominant ones. ``torch.optim.Muon`` takes only 2-D parameters, one at a
time, and a routed encoder stores each hidden layer as one ``(experts, in, out)`` tensor;
this orthogonalises every expert's matrix at once, in batched products.

Measured on the routed encoder's hidden layers (docs/performance.md): more local structure per
step, for the fitted cells and for new ones. Only optimisation changes: the encoder, its
exact contributions and what a model stores do not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

#: The quintic Newton-Schulz coefficients of Muon's reference implementation (and of
#: ``torch.optim.Muon``): they push every singular value into about [0.7, 1.2] in 5 steps.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
#: Muon's momentum (Nesterov), as in the reference implementation.
MOMENTUM = 0.95


def orthogonalise(
    g: torch.Tensor, steps: int = NS_STEPS, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``U V^T`` of each matrix ``U S V^T`` in the last two dimensions, approximately.

    Quintic Newton-Schulz iterations in ``dtype`` on matrices scaled to a Frobenius norm of at
    most 1; returns float32 of ``g``'s shape. A zero matrix stays zero.
    """
    a, b, c = NS_COEFFICIENTS
    x = g.to(dtype)
    wide = x.shape[-2] <= x.shape[-1]
    if not wide:  # iterate on the smaller Gram matrix
        x = x.mT
    lead = x.shape[:-2]
    x = x.reshape(-1, *x.shape[-2:])
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp_min(1e-7)
    for _ in range(steps):
        gram = torch.bmm(x, x.mT)
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.baddbmm(x, poly, x, beta=a)
    x = x.reshape(*lead, *x.shape[-2:])
    return (x if wide else x.mT).to(torch.float32)


class MuonAdam(torch.optim.Optimizer):
    """Muon on ``matrices``, Adam on ``others``.

    Parameters
    ----------
    matrices
        Weight tensors of at least 2 dimensions; each matrix in the last two is updated on its
        own (a stack ``(experts, in, out)`` is ``experts`` matrices).
    others
        Every other trained parameter: plain ``torch.optim.Adam``.
    lr
        Adam's step size.
    muon_lr
        Muon's step size: each matrix moves by about this much in spectral norm, times
        ``sqrt(max(1, out / in))`` as in the reference implementation.
    ns_dtype
        The dtype of the Newton-Schulz products (bfloat16 where it is fast).
    map_fn
        How the matrices' updates are spread over threads (``map`` runs them in turn).
    chunks
        Each stack's matrices are updated in this many groups (``map_fn``'s tasks), so that
        threads share the work evenly whatever the stacks' sizes. The matrices are
        orthogonalised one by one either way: any number gives the same update.
    """

    def __init__(
        self,
        matrices: Sequence[torch.Tensor],
        others: Iterable[torch.Tensor],
        *,
        lr: float,
        muon_lr: float,
        momentum: float = MOMENTUM,
        ns_steps: int = NS_STEPS,
        ns_dtype: torch.dtype = torch.float32,
        map_fn: Callable = map,
        chunks: int = 1,
    ) -> None:
        if any(p.dim() < 2 for p in matrices):
            raise ValueError("Muon's parameters must have at least 2 dimensions")
        super().__init__(list(matrices), {"lr": muon_lr, "momentum": momentum})
        self.ns_steps, self.ns_dtype, self.map_fn = ns_steps, ns_dtype, map_fn
        self.chunks = max(1, int(chunks))
        others = list(others)
        self.adam = torch.optim.Adam(others, lr=lr) if others else None

    def _update(
        self, p: torch.Tensor, rows: slice, lr: float, momentum: float
    ) -> torch.Tensor | None:
        """The Muon step of ``p[rows]`` (computed, not applied; ``None`` without a gradient).

        Its momentum buffer must exist (:meth:`step` makes it): tasks share it by rows.
        """
        if p.grad is None:
            return None
        grad, buf = p.grad[rows], self.state[p]["momentum"][rows]
        buf.lerp_(grad, 1.0 - momentum)
        step = orthogonalise(grad.lerp(buf, momentum), self.ns_steps, self.ns_dtype)
        return step.mul_(-lr * max(1.0, p.shape[-1] / p.shape[-2]) ** 0.5)

    def _tasks(self, params: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, slice]]:
        """``(parameter, rows)``: each stack split into :attr:`chunks` groups of matrices."""
        tasks = []
        for p in params:
            if p.grad is not None and "momentum" not in self.state[p]:
                self.state[p]["momentum"] = torch.zeros_like(p)
            if p.dim() == 2:  # one matrix
                tasks.append((p, slice(None)))
                continue
            n = p.shape[0]
            k = min(self.chunks, n)
            tasks += [(p, slice(n * i // k, n * (i + 1) // k)) for i in range(k)]
        return tasks

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mom = group["lr"], group["momentum"]
            tasks = self._tasks(group["params"])
            steps = list(self.map_fn(lambda t, lr=lr, mom=mom: self._update(*t, lr, mom), tasks))
            for (p, rows), s in zip(tasks, steps, strict=True):
                if s is not None:
                    p[rows].add_(s)
        if self.adam is not None:
            self.adam.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        if self.adam is not None:
            self.adam.zero_grad(set_to_none)

    def state_dict(self) -> dict:
        adam = None if self.adam is None else self.adam.state_dict()
        return {"muon": super().state_dict(), "adam": adam}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict["muon"])
        if self.adam is not None:
            self.adam.load_state_dict(state_dict["adam"])
