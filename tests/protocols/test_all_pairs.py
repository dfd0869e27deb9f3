"""All-pairs protocol against an explicit N×N reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veriloss.metrics import auc, eer, min_dcf, tar_at_far
from veriloss.protocols import all_pairs

FARS = (1e-1, 1e-2, 1e-3, 1e-4)


def _reference(x: np.ndarray, y: np.ndarray):
    """Genuine / impostor cosine scores of every pair i < j, by explicit loops in float64."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    gen, imp = [], []
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            (gen if y[i] == y[j] else imp).append(float(np.dot(x[i], x[j])))
    return np.array(gen), np.array(imp)


def _exact_embeddings(n: int, n_cls: int, seed: int):
    """Rows of ±1/4 in 16 dims: unit norm and every cosine a multiple of 1/16, exact in float32 in any order.

    Heavily tied scores; rows of one class share most signs so genuine scores are higher.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_cls, n)
    proto = rng.choice([-1.0, 1.0], size=(n_cls, 16))
    flip = rng.random((n, 16)) < 0.3
    x = np.where(flip, -proto[y], proto[y]) / 4
    return x, y


def _check(res, g, i, ps=(0.01, 0.05)):
    assert (res.n_genuine, res.n_impostor) == (g.size, i.size)
    assert res.eer == eer(g, i)
    assert res.min_dcf == tuple(min_dcf(g, i, p) for p in ps)
    assert res.auc == auc(g, i)
    assert res.tar == tuple(tar_at_far(g, i, FARS))


@pytest.mark.parametrize("block_size", [1, 37, 128, 1000])
@pytest.mark.parametrize("bits", [0, 11])
def test_all_pairs_exact_scores(block_size, bits):
    x, y = _exact_embeddings(203, 9, 0)
    g, i = _reference(x, y)
    res = all_pairs(
        torch.from_numpy(x).float(), torch.from_numpy(y), far=FARS, block_size=block_size, mantissa_bits=bits
    )
    np.testing.assert_array_equal(np.sort(res.genuine), np.sort(g))  # genuine kept exactly
    _check(res, g, i)
    assert res.n_embeddings == 203 and res.n_genuine + res.n_impostor == 203 * 202 // 2
    assert str(res.eer) in str(res)


def test_all_pairs_continuous_scores():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 20, 301)
    x = rng.normal(size=(20, 24))[y] + rng.normal(size=(301, 24))
    g, i = _reference(x, y)
    res = all_pairs(torch.from_numpy(x).float(), torch.from_numpy(y), far=FARS, block_size=64)
    np.testing.assert_allclose(np.sort(res.genuine), np.sort(g), atol=1e-6)
    # float32 vs float64 scores: same ordering here, so equal rates and thresholds within float32 rounding
    assert res.eer.eer == pytest.approx(eer(g, i).eer, abs=1e-12)
    assert res.eer.threshold == pytest.approx(eer(g, i).threshold, abs=1e-6)
    assert res.min_dcf[0].min_dcf == pytest.approx(min_dcf(g, i).min_dcf, abs=1e-12)
    # AUC compares every (genuine, impostor) pair: float32 rounding may flip the order of a near-tied pair or two
    assert abs(res.auc - auc(g, i)) <= 2 / (g.size * i.size)
    for a, b in zip(res.tar, tar_at_far(g, i, FARS)):
        assert a.measurable == b.measurable and (a.tar == b.tar if a.tar is None else a.tar == pytest.approx(b.tar))
    d = res.det()
    assert d.far[0] == 1.0 and d.frr[0] == 0.0 and np.all(np.diff(d.far) <= 0) and np.all(np.diff(d.frr) >= 0)


def test_all_pairs_bad_input():
    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match="no genuine pairs"):
        all_pairs(x, torch.arange(10))
    with pytest.raises(ValueError, match="no impostor pairs"):
        all_pairs(x, torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="all-zero row"):
        all_pairs(torch.cat([x[:9], torch.zeros(1, 4)]), torch.arange(10) % 3)
    with pytest.raises(ValueError, match="non-finite"):
        all_pairs(torch.cat([x[:9], torch.full((1, 4), float("nan"))]), torch.arange(10) % 3)
    with pytest.raises(ValueError, match="labels has 9 entries"):
        all_pairs(x, torch.arange(9))
    with pytest.raises(ValueError, match="far must be in the open interval"):
        all_pairs(x, torch.arange(10) % 3, far=0.0)
    with pytest.raises(ValueError, match="block_size"):
        all_pairs(x, torch.arange(10) % 3, block_size=0)
