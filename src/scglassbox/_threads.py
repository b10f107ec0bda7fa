"""CPU parallelism for training: row blocks on worker threads instead of OpenMP.

A training step runs some sixty operations on a few thousand rows each. With OpenMP's passive
wait policy every one of them wakes the sleeping workers, and on few cores several intra-op
threads gained little over one. Instead, on CPU the step runs single-threaded inside each
operation, and the encoder's rows are split into blocks that worker threads encode and
differentiate at the same time (PyTorch releases the GIL inside operations); the cheap 2-D
loss is split over the same threads. The measurements behind this choice are in
docs/performance.md (``benchmarks/threads.py``).
"""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

#: A block smaller than this costs more in dispatch than it saves.
MIN_ROWS_PER_WORKER = 2048
#: Python dispatches every operation under the GIL; beyond a few workers that serialises them.
MAX_WORKERS = 4


def worker_count(rows: float, threads: int) -> int:
    """Worker threads for a step encoding about ``rows`` cells with ``threads`` available."""
    return max(1, min(threads, MAX_WORKERS, int(rows // MIN_ROWS_PER_WORKER)))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (``None``: leave them alone)."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class RowBlocks:
    """Encode a step's rows in blocks on worker threads, each block its own autograd graph.

    Parameters
    ----------
    workers
        Number of blocks and threads (at least 2).
    align
        Block sizes are rounded up to a multiple of this (the bfloat16 row padding).
    """

    def __init__(self, workers: int, align: int = 1) -> None:
        self.workers, self.align = workers, align
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="scglassbox")

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=True)

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        """``map(fn, items)`` on the worker threads, results in order."""
        return self._pool.map(fn, items)

    def loss(
        self,
        encode: Callable[..., torch.Tensor],
        params: Sequence[torch.Tensor],
        x: torch.Tensor | tuple[torch.Tensor, ...],
        loss_fn: Callable[[torch.Tensor, slice], torch.Tensor],
        n_terms: int,
        combine: Callable[[torch.Tensor], torch.Tensor] | None = None,
        align: int | None = None,
    ) -> torch.Tensor:
        """``sum_i loss_fn(emb, part_i)``, every block and part computed on a worker thread.

        ``x`` (a tensor, or tensors split alike) is split along its first dimension into
        blocks that ``encode`` maps on the worker threads; ``emb`` is their outputs
        concatenated, passed through ``combine`` (in this thread, differentiable, without
        parameters) if given. ``loss_fn(emb, part)`` is the loss over the terms in the slice
        ``part`` of ``range(n_terms)``; the parts split that range. Returns a tensor equal to
        the loss whose backward pass gives each parameter exactly the summed block gradients,
        so the caller's ``loss.backward()`` (Lightning's) works unchanged. Blocks, parts and
        their sums have a fixed order: results do not depend on thread timing. ``align``:
        instead of the blocks' :attr:`align`.
        """
        xs = x if isinstance(x, tuple) else (x,)
        align = self.align if align is None else align
        size = -(-xs[0].shape[0] // self.workers)
        size = -(-size // align) * align
        blocks_in = list(zip(*(t.split(size) for t in xs), strict=True))
        outs = list(self._pool.map(lambda b: encode(*b), blocks_in))
        out = torch.cat([o.detach() for o in outs]).requires_grad_()
        combined = out
        if combine is not None:
            with torch.enable_grad():
                combined = combine(out)
        emb = combined.detach().requires_grad_()
        step = -(-n_terms // self.workers)

        def part_loss(start: int) -> tuple[torch.Tensor, torch.Tensor]:
            loss = loss_fn(emb, slice(start, min(start + step, n_terms)))
            (grad,) = torch.autograd.grad(loss, emb)
            return loss.detach(), grad

        parts = list(self._pool.map(part_loss, range(0, n_terms, step)))
        loss = functools.reduce(operator.add, [p[0] for p in parts])
        grad_out = functools.reduce(operator.add, [p[1] for p in parts])
        if combine is not None:
            (grad_out,) = torch.autograd.grad(combined, out, grad_out)

        def backward(block: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor | None, ...]:
            out, grad = block
            return torch.autograd.grad(out, params, grad, allow_unused=True)

        sizes = [o.shape[0] for o in outs]
        blocks = list(self._pool.map(backward, zip(outs, grad_out.split(sizes), strict=True)))
        surrogate = loss.new_zeros(())
        for p, grads in zip(params, zip(*blocks, strict=True), strict=True):
            grads = [g for g in grads if g is not None]
            if grads:
                total = functools.reduce(operator.add, grads)
                surrogate = surrogate + (p * total).sum()
        # Value: the loss. Gradient with respect to p: the summed block gradients.
        return loss + (surrogate - surrogate.detach())
