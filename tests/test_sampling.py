import numpy as np
import pytest
import torch

from scglassbox._sampling import alias_table, draw


def _table_probabilities(prob, alias):
    p = prob.copy()
    np.add.at(p, alias, 1.0 - prob)
    return p / len(prob)


@pytest.mark.parametrize(
    "weights",
    [
        np.random.default_rng(0).random(10),
        np.random.default_rng(1).random(1000) ** 4,  # heavy-tailed
        np.r_[1000.0, np.full(999, 1e-3)],  # one item holds almost everything
        np.random.default_rng(2).uniform(0.025, 1.0, 200_000),  # a pruned UMAP graph
        np.ones(7),
        np.array([0.0, 1.0, 0.0, 2.0]),  # zero weights
        np.array([5.0]),
    ],
)
def test_alias_table_is_the_weighted_distribution(weights):
    prob, alias = alias_table(weights)
    assert prob.shape == alias.shape == weights.shape
    assert prob.min() >= 0 and prob.max() <= 1
    assert alias.min() >= 0 and alias.max() < len(weights)
    want = weights / weights.sum()
    np.testing.assert_allclose(_table_probabilities(prob, alias), want, rtol=1e-9, atol=1e-15)
    # An item of weight zero can never be drawn: its slot always hands over to its alias.
    zero = weights == 0
    assert np.all(prob[zero] == 0) and not np.isin(alias[prob < 1], np.flatnonzero(zero)).any()


def test_draw_follows_the_weights_and_is_seeded():
    weights = np.array([1.0, 2.0, 3.0, 0.0, 4.0])
    prob, alias = (torch.from_numpy(a) for a in alias_table(weights))
    n = 200_000
    idx = draw(prob, alias, n, torch.Generator().manual_seed(0))
    counts = np.bincount(idx.numpy(), minlength=5)
    expected = n * weights / weights.sum()
    assert counts[3] == 0
    # Binomial standard deviations are ~200 here; 6 of them would be a real bias.
    assert np.all(np.abs(counts - expected) <= 6 * np.sqrt(expected + 1))
    again = draw(prob, alias, n, torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
