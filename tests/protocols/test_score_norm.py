"""z-, t-, s-norm and adaptive s-norm against brute-force loops over the cohort."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from veriloss.protocols.score_norm import cohort_stats, normalize_scores


def _cos(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _stats(x, cohort, top_k):
    sims = sorted((_cos(x, c) for c in cohort), reverse=True)
    if top_k is not None:
        sims = sims[:top_k]
    mean = sum(sims) / len(sims)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in sims) / len(sims))


def _brute_norm(scores, enroll, test, cohort, method, top_k):
    out = []
    for s, e, t in zip(scores, enroll, test):
        me, se = _stats(e, cohort, top_k)
        mt, st = _stats(t, cohort, top_k)
        z, tn = (s - me) / se, (s - mt) / st
        out.append({"z-norm": z, "t-norm": tn, "s-norm": (z + tn) / 2, "as-norm": (z + tn) / 2}[method])
    return out


def _case(seed=0, n_utts=7, n_trials=15, cohort_size=20, dim=6):
    g = torch.Generator().manual_seed(seed)
    utts = torch.randn(n_utts, dim, generator=g, dtype=torch.float64)
    ia = torch.randint(0, n_utts, (n_trials,), generator=g)  # repeated enrollment rows on purpose
    ib = torch.randint(0, n_utts, (n_trials,), generator=g)
    enroll, test = utts[ia], utts[ib]
    raw = torch.nn.functional.cosine_similarity(enroll, test, dim=1)
    cohort = torch.randn(cohort_size, dim, generator=g, dtype=torch.float64)
    return raw, enroll, test, cohort


@pytest.mark.parametrize(
    ("method", "top_k"),
    [("z-norm", None), ("t-norm", None), ("s-norm", None), ("as-norm", 5), ("z-norm", 4), ("t-norm", 20)],
)
@pytest.mark.parametrize("batch_size", [1, 3, 1024])
def test_normalize_scores_matches_brute_force(method, top_k, batch_size):
    raw, enroll, test, cohort = _case()
    out = normalize_scores(raw, enroll, test, cohort, method=method, top_k=top_k, batch_size=batch_size)
    ref = _brute_norm(raw.tolist(), enroll.tolist(), test.tolist(), cohort.tolist(), method, top_k)
    assert out.dtype == torch.float64 and out.shape == raw.shape
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-10)


def test_s_norm_with_top_k_equals_as_norm_and_full_top_k_equals_s_norm():
    raw, enroll, test, cohort = _case(1)
    as_norm = normalize_scores(raw, enroll, test, cohort, "as-norm", top_k=6)
    torch.testing.assert_close(normalize_scores(raw, enroll, test, cohort, "s-norm", top_k=6), as_norm)
    torch.testing.assert_close(
        normalize_scores(raw, enroll, test, cohort, "as-norm", top_k=cohort.shape[0]),
        normalize_scores(raw, enroll, test, cohort, "s-norm"),
    )


def test_float32_inputs_and_numpy_inputs():
    raw, enroll, test, cohort = _case(2)
    ref = normalize_scores(raw, enroll, test, cohort, "as-norm", top_k=7)
    out32 = normalize_scores(raw.float(), enroll.float(), test.float(), cohort.float(), "as-norm", top_k=7)
    np.testing.assert_allclose(out32.numpy(), ref.numpy(), atol=1e-4)
    out_np = normalize_scores(raw.numpy(), enroll.numpy(), test.numpy(), cohort.numpy(), "as-norm", top_k=7)
    torch.testing.assert_close(out_np, ref)


def test_cohort_stats_match_brute_force():
    _, enroll, _, cohort = _case(3)
    for top_k in (None, 2, 9):
        mean, std = cohort_stats(enroll, cohort, top_k=top_k, batch_size=2)
        for i, e in enumerate(enroll.tolist()):
            m, s = _stats(e, cohort.tolist(), top_k)
            assert mean[i].item() == pytest.approx(m, abs=1e-12)
            assert std[i].item() == pytest.approx(s, abs=1e-12)


def test_bad_input():
    raw, enroll, test, cohort = _case()
    with pytest.raises(ValueError, match="method must be one of"):
        normalize_scores(raw, enroll, test, cohort, "x-norm")
    with pytest.raises(ValueError, match="as-norm' needs top_k"):
        normalize_scores(raw, enroll, test, cohort, "as-norm")
    with pytest.raises(ValueError, match=r"top_k must be an integer in \[2, cohort size = 20\]"):
        normalize_scores(raw, enroll, test, cohort, "as-norm", top_k=21)
    with pytest.raises(ValueError, match=r"top_k must be an integer"):
        normalize_scores(raw, enroll, test, cohort, "as-norm", top_k=1)
    with pytest.raises(ValueError, match=r"enroll must have one row per score \(15\)"):
        normalize_scores(raw, enroll[:-1], test, cohort)
    with pytest.raises(ValueError, match=r"cohort must have 6 features per row"):
        normalize_scores(raw, enroll, test, cohort[:, :5])
    with pytest.raises(ValueError, match="scores contains 1 non-finite"):
        normalize_scores(torch.cat([raw[:-1], torch.tensor([float("inf")], dtype=torch.float64)]), enroll, test, cohort)
    with pytest.raises(ValueError, match="scores must be a non-empty 1-D float tensor"):
        normalize_scores(raw[None], enroll, test, cohort)
    same = cohort[:1].repeat(5, 1)  # identical cohort rows: zero spread
    with pytest.raises(ValueError, match=r"zero spread of cohort scores \(std = 0\)"):
        normalize_scores(raw, enroll, test, same, "z-norm")
    zero = enroll.clone()
    zero[0] = 0
    with pytest.raises(ValueError, match="all-zero row"):
        normalize_scores(raw, zero, test, cohort, "z-norm")
