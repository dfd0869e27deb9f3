"""The reduced impostor representation gives exactly the full-array metrics (or a clear error)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veriloss.metrics import SummaryBuilder, auc, eer, min_dcf, roc, summarize, tar_at_far

FARS = [1e-1, 1e-2, 1e-3, 1e-4]


def _data(kind: str, seed: int):
    rng = np.random.default_rng(seed)
    if kind == "cosine":
        return (
            np.clip(rng.normal(0.5, 0.2, 3000), -1, 1).astype(np.float32),
            np.clip(rng.normal(0.0, 0.2, 40000), -1, 1).astype(np.float32),
        )
    if kind == "tied":  # few distinct values, many per bin
        return (rng.integers(-3, 8, 500) / 8).astype(np.float32), (rng.integers(-8, 5, 20000) / 8).astype(np.float32)
    if kind == "out_of_range":  # raw scores (e.g. log-likelihood ratios), not cosines
        return rng.normal(3, 2, 800), rng.normal(0, 2, 20000)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["cosine", "tied", "out_of_range"])
@pytest.mark.parametrize("bits", [0, 4, 11])
def test_summary_equals_full_arrays(kind, bits):
    g, i = _data(kind, 0)
    ps = (0.01, 0.05, 0.5)
    s = summarize(g, i, top=int(0.1 * i.size) + 1, mantissa_bits=bits, p_targets=ps, block=7777)
    assert s.n == i.size and int(s.counts.sum()) == i.size
    assert s.refined_values.size < i.size or bits == 0
    assert eer(g, s) == eer(g, i)
    for p in ps:
        assert min_dcf(g, s, p) == min_dcf(g, i, p)
        assert min_dcf(g, s, p, normalized=False) == min_dcf(g, i, p, normalized=False)
    assert auc(g, s) == auc(g, i)
    assert tar_at_far(g, s, FARS) == tar_at_far(g, i, FARS)


def test_fine_bins_refine_few_scores():
    g, i = _data("cosine", 1)
    s = summarize(g, i, top=1, p_targets=(0.01,))
    assert 0 < s.refined_values.size < 400  # a few bins: under 1% of the 40000 scores


def test_builder_accepts_any_block_shapes_and_tensors():
    g, i = _data("cosine", 2)
    b = SummaryBuilder(top=500, mantissa_bits=6)
    t = torch.from_numpy(i)
    b.add(t[:10000].reshape(100, 100))
    b.add(t[10000:])
    b.plan(torch.from_numpy(g), p_targets=(0.05,))
    assert b.needs_second_pass
    b.refine(t[25000:])  # another order and blocking
    b.refine(t[:25000].reshape(-1, 50))
    s = b.build()
    assert eer(g, s) == eer(g, i) and min_dcf(g, s, 0.05) == min_dcf(g, i, 0.05) and auc(g, s) == auc(g, i)


def test_roc_from_summary_is_a_subset_of_the_exact_roc():
    g, i = _data("cosine", 3)
    s = summarize(g, i, mantissa_bits=3)
    full = roc(g, i)
    part = roc(g, s)
    pts = set(zip(full.false_accepts.tolist(), full.true_accepts.tolist()))
    assert set(zip(part.false_accepts.tolist(), part.true_accepts.tolist())) <= pts
    assert part.far[-1] == 1.0 and part.tar[-1] == 1.0 and part.far[0] == 0.0
    assert np.all(np.diff(part.far) >= 0) and 10 < part.far.size < full.far.size / 20


def test_summary_errors_name_the_problem():
    g, i = _data("cosine", 4)
    s = summarize(g, i, top=10, mantissa_bits=2, p_targets=(0.01,))
    with pytest.raises(ValueError, match=r"top 10 impostor scores.*top ≥ 4001"):
        tar_at_far(g, s, 0.1)
    with pytest.raises(ValueError, match=r"not refined for minDCF\(p_target=0.5"):
        min_dcf(g, s, 0.5)
    with pytest.raises(ValueError, match="no AUC for these genuine scores"):
        auc(g[:-1], s)
    with pytest.raises(ValueError, match="needs every impostor score"):
        tar_at_far(g, s, 0.001, mode="nearest")
    b = SummaryBuilder(mantissa_bits=2)
    b.add(i)
    b.plan(g)
    b.refine(i[:-5])
    with pytest.raises(ValueError, match="second pass saw 39995 impostor scores but the first saw 40000"):
        b.build()
    b = SummaryBuilder()
    with pytest.raises(ValueError, match="NaN"):
        b.add(np.array([0.1, np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match="no impostor scores were added"):
        SummaryBuilder().plan(g)
    with pytest.raises(ValueError, match="mantissa_bits"):
        SummaryBuilder(mantissa_bits=20)


@pytest.mark.parametrize(
    ("g", "i"),
    [
        ([0.5, 0.6], [-0.5, -0.4, 0.1]),  # separable: EER 0
        ([-0.5, -0.4], [0.5, 0.6, 0.1]),  # reversed: the crossing is at "reject everything"
        ([0.25, 0.25, 0.5], [0.25, 0.25, 0.25, 0.5]),  # all tied
        ([0.9], [1.5, 2.0, -3.0]),  # far apart, negative and positive
        ([-0.0, 0.0, 1e-40], [0.0, -0.0, -1e-40]),  # signed zeros and float32 subnormals
    ],
)
@pytest.mark.parametrize("bits", [0, 11])
def test_summary_edge_cases(g, i, bits):
    g, i = np.array(g), np.array(i)
    s = summarize(g, i, top=i.size, mantissa_bits=bits, p_targets=(0.01, 0.5))
    assert eer(g, s) == eer(g, i)
    assert min_dcf(g, s) == min_dcf(g, i) and min_dcf(g, s, 0.5) == min_dcf(g, i, 0.5)
    assert auc(g, s) == auc(g, i)
    assert tar_at_far(g, s, [0.34, 0.67]) == tar_at_far(g, i, [0.34, 0.67])


def test_mixed_precision_auc_is_exact():
    # float32 genuine, float64 impostors that differ from them below float32 resolution
    g = np.array([0.5, 0.25, 0.75], dtype=np.float32)
    i = np.array([0.5 + 1e-12, 0.5 - 1e-12, 0.5, 0.25 + 1e-13, 0.1])
    s = summarize(g, i, top=5, p_targets=(0.01, 0.5))
    assert auc(g, s) == auc(g, i) and eer(g, s) == eer(g, i) and min_dcf(g, s, 0.5) == min_dcf(g, i, 0.5)
