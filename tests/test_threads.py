import numpy as np
import pytest
import torch

import scglassbox as gb
from scglassbox import _threads
from scglassbox._encoder import GlassBoxMLP
from scglassbox._threads import RowBlocks, torch_threads, worker_count


def test_worker_count():
    assert worker_count(700, 2) == 1  # too few rows to split
    assert worker_count(5000, 2) == 2
    assert worker_count(12_600, 1) == 1  # one thread available
    assert worker_count(1e6, 64) == _threads.MAX_WORKERS


def test_torch_threads_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("workers", [2, 3])
def test_row_blocks_give_the_full_gradient(workers):
    torch.manual_seed(0)
    net = GlassBoxMLP(7, 2, hidden=(11, 5), norm=True).double()
    params = list(net.parameters())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(103, 7, generator=g, dtype=torch.float64)
    pairs = torch.randint(103, (250, 2), generator=g)

    def loss_fn(emb, part=slice(None)):
        a, b = emb[pairs[part, 0]], emb[pairs[part, 1]]
        return torch.log1p((a - b).pow(2).sum(1)).sum() / 250

    want_loss = loss_fn(net(x))
    want = torch.autograd.grad(want_loss, params)
    blocks = RowBlocks(workers, align=8)
    try:
        got_loss = blocks.loss(net, params, x, loss_fn, 250)
        got = torch.autograd.grad(got_loss, params)
        again = torch.autograd.grad(blocks.loss(net, params, x, loss_fn, 250), params)
    finally:
        blocks.close()
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-12, atol=0)
    for a, b, c in zip(got, want, again, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
        assert torch.equal(a, c)  # thread timing does not change the result


def test_fit_with_row_blocks_is_reproducible_and_restores_threads(wine, monkeypatch):
    from scglassbox._contributions import exactness

    X, _ = wine
    monkeypatch.setattr(_threads, "MIN_ROWS_PER_WORKER", 64)  # wine's 178 cells: 2 blocks
    before = torch.get_num_threads()
    seen = []

    class Spy(gb._training.lp.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append((torch.get_num_threads(), module._blocks is not None))

    kw = {"random_state": 0, "epochs": 20, "quiet": True, "accelerator": "cpu"}
    a = gb.GlassBoxUMAP(**kw, trainer_kwargs={"callbacks": [Spy()]}).fit(X)
    b = gb.GlassBoxUMAP(**kw).fit(X)
    assert torch.get_num_threads() == before
    expect_blocks = min(before, _threads.MAX_WORKERS) >= 2
    assert set(seen) == {(1, expect_blocks)}
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    assert exactness(a.embedding_, a.compute_contributions(X)) <= 1e-5


def test_row_blocks_split_tuples_and_combine_the_outputs():
    """Blocks of several tensors split alike; ``combine`` runs on the joined outputs."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(40, 5, dtype=torch.float64, generator=g)
    scale = torch.rand(40, 1, dtype=torch.float64, generator=g)
    order = torch.randperm(40, generator=g)
    pairs = torch.randint(40, (90, 2), generator=g)

    def encode(xb, sb):
        return (xb @ w) * sb

    def combine(out):  # no parameters: a reordering and a mix of rows
        y = out.index_select(0, order)
        return y + 0.5 * y.roll(1, 0)

    def loss_fn(emb, part=slice(None)):
        a, b = emb[pairs[part, 0]], emb[pairs[part, 1]]
        return torch.log1p((a - b).pow(2).sum(1)).sum() / 90

    want_loss = loss_fn(combine(encode(x, scale)))
    (want,) = torch.autograd.grad(want_loss, [w])
    blocks = RowBlocks(2, align=128)
    try:
        # align=4 overrides the blocks' 128: two blocks of 20 rows, not one of 40.
        seen = []

        def spy(xb, sb):
            seen.append(xb.shape[0])
            return encode(xb, sb)

        got_loss = blocks.loss(spy, [w], (x, scale), loss_fn, 90, combine, align=4)
        (got,) = torch.autograd.grad(got_loss, [w])
    finally:
        blocks.close()
    assert sorted(seen) == [20, 20]
    torch.testing.assert_close(got_loss, want_loss, rtol=1e-12, atol=0)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-14)
