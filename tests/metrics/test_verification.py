"""Verification metrics against sklearn and brute-force references written from docs/EVALUATION.md."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from veriloss.metrics import _scores, auc, det, eer, min_dcf, roc, tar_at_far, verification


def _scores_pair(kind: str, seed: int, n_gen: int = 200, n_imp: int = 2000):
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.normal(1.5, 1.0, n_gen), rng.normal(0.0, 1.0, n_imp)
    if kind == "tied":  # integers 0..5: every threshold is a large tied group of both kinds
        return rng.integers(2, 6, n_gen).astype(np.float64), rng.integers(0, 5, n_imp).astype(np.float64)
    if kind == "float32":
        return rng.normal(1, 1, n_gen).astype(np.float32), rng.normal(0, 1, n_imp).astype(np.float32)
    raise AssertionError(kind)


KINDS = ["random", "tied", "float32"]


@pytest.fixture(params=["sort", "histogram"])
def route(request, monkeypatch):
    """EER/minDCF of arrays: the sort route (small arrays) and the exact histogram route (large arrays)."""
    if request.param == "histogram":
        monkeypatch.setattr(verification, "HISTOGRAM_ROUTE_MIN", 0)
    return request.param


# --------------------------------------------------------------------------------------------- brute-force oracles
def _thresholds(g, i):
    return [*sorted(set(map(float, g)) | set(map(float, i))), math.inf]


def _bf_tar_at_far(g, i, f):
    """Smallest observed score (or +inf) admitting ≤ ⌊f·N⌋ impostors; TAR there. None if f·N < 1."""
    k = math.floor(Fraction(repr(f)) * len(i))
    if k < 1:
        return None
    for t in _thresholds(g, i):
        fa = sum(1 for x in i if x >= t)
        if fa <= k:
            return sum(1 for x in g if x >= t) / len(g), t, fa
    raise AssertionError


def _bf_rates(g, i):
    """(threshold, FRR, FAR) as exact fractions at every operating point, ascending threshold."""
    out = []
    for t in _thresholds(g, i):
        out.append((t, Fraction(sum(1 for x in g if x < t), len(g)), Fraction(sum(1 for x in i if x >= t), len(i))))
    return out


def _bf_eer(g, i):
    pts = _bf_rates(g, i)
    for j, (t, frr, far) in enumerate(pts):
        if frr >= far:
            if frr == far:
                return float(frr), t
            _, frr0, far0 = pts[j - 1]
            d1, d0 = frr - far, frr0 - far0
            a = d1 / (d1 - d0)
            return float(frr + a * (frr0 - frr)), t
    raise AssertionError


def _bf_dcf(g, i, p, cm, cf):
    """Exact min cost (as a Fraction) and the set of minimizing thresholds."""
    p = Fraction(repr(p))
    costs = [(cm * p * frr + cf * (1 - p) * far, t) for t, frr, far in _bf_rates(g, i)]
    best = min(c for c, _ in costs)
    return best, {t for c, t in costs if c == best}, dict((t, c) for c, t in costs)


# --------------------------------------------------------------------------------------------- ROC, AUC, DET
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("drop", [False, True])
def test_roc_matches_sklearn(kind, drop):
    g, i = _scores_pair(kind, 0)
    r = roc(g, i, drop_intermediate=drop)
    y = np.r_[np.ones(g.size), np.zeros(i.size)]
    fpr, tpr, thr = roc_curve(y, np.r_[g, i], drop_intermediate=drop)
    np.testing.assert_array_equal(r.far, fpr)
    np.testing.assert_array_equal(r.tar, tpr)
    np.testing.assert_array_equal(r.thresholds, thr.astype(np.float64))
    assert r.false_accepts[-1] == i.size and r.true_accepts[-1] == g.size


@pytest.mark.parametrize("kind", KINDS)
def test_auc_matches_sklearn(kind):
    g, i = _scores_pair(kind, 1)
    expected = roc_auc_score(np.r_[np.ones(g.size), np.zeros(i.size)], np.r_[g, i])
    assert auc(g, i) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert auc(torch.from_numpy(g), torch.from_numpy(i)) == auc(g, i)


def test_det_is_far_and_frr_of_the_roc():
    g, i = _scores_pair("tied", 2)
    d = det(g, i)
    for t, far, frr in zip(d.thresholds, d.far, d.frr):
        assert far == np.mean(i >= t) and frr == pytest.approx(np.mean(g < t), abs=1e-15)
    assert np.all(np.diff(d.thresholds) > 0)
    px, py = d.probit()
    np.testing.assert_allclose(px[1:-1], [float(torch.special.ndtri(torch.tensor(v))) for v in d.far[1:-1]])
    assert py[0] == -math.inf  # FRR = 0 at the lowest threshold


# --------------------------------------------------------------------------------------------- TAR@FAR
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_tar_at_far_brute_force(kind, seed):
    g, i = _scores_pair(kind, seed, n_gen=60, n_imp=700)
    fars = [0.3, 0.1, 0.05, 0.0123, 0.002, 0.001]
    res = tar_at_far(g, i, fars)
    assert isinstance(res, list) and len(res) == len(fars)
    for f, r in zip(fars, res):
        ref = _bf_tar_at_far(g, i, f)
        assert r.measurable is (ref is not None)
        if ref is None:
            assert r.tar is None and r.threshold is None and r.k == 0
            continue
        tar, thr, fa = ref
        assert r.tar == pytest.approx(tar, abs=1e-15)
        assert r.threshold == thr
        assert r.impostors_admitted == fa <= r.k == math.floor(Fraction(repr(f)) * i.size)
        assert r.genuine_accepted == round(tar * g.size)
        # it is the best TAR among thresholds whose FAR ≤ f
        for t in _thresholds(g, i):
            if np.sum(i >= t) <= r.k:
                assert np.mean(g >= t) <= r.tar
        # a single FAR gives the same as the vectorized call
        single = tar_at_far(g, i, f)
        assert single == r


def test_tar_at_far_ties_straddling_k():
    # impostors: 0.9 ×1, 0.8 ×3, then low. f·N = 2: the tie group at 0.8 would push the count to 4 > 2.
    imp = np.array([0.9, 0.8, 0.8, 0.8] + [0.1] * 96)
    gen = np.array([0.95, 0.85, 0.8, 0.5])
    r = tar_at_far(gen, imp, 0.02)
    assert r.k == 2 and r.impostors_admitted == 1  # only 0.9 is admitted
    assert r.threshold == 0.85  # the smallest observed score strictly above the tied group
    assert r.tar == 0.5 and r.genuine_accepted == 2
    # with k = 4 the whole group fits: the threshold drops to the lowest score above the 5th impostor (0.1)
    r4 = tar_at_far(gen, imp, 0.04)
    assert (r4.k, r4.impostors_admitted, r4.threshold, r4.tar) == (4, 4, 0.5, 1.0)


def test_tar_at_far_no_score_above_gives_infinite_threshold():
    r = tar_at_far([0.1, 0.2], [0.5, 0.5, 0.5] + [0.0] * 97, 0.02)
    assert r.impostors_admitted == 0 and r.threshold == math.inf and r.tar == 0.0 and r.measurable


def test_tar_at_far_not_measurable():
    g, i = _scores_pair("random", 3, n_imp=500)
    r = tar_at_far(g, i, 1e-3)  # f·N = 0.5
    assert not r.measurable and r.tar is None and r.k == 0 and r.n_impostor == 500
    with pytest.raises(ValueError, match=r"not measurable.*500 impostor.*1000"):
        float(r)
    assert "not measurable" in str(r)
    ok = tar_at_far(g, i, 2e-3)  # f·N = 1: measurable
    assert ok.measurable and ok.k == 1 and float(ok) == ok.tar


def test_far_read_as_decimal():
    i = np.arange(100, dtype=np.float64)
    assert tar_at_far([50.0], i, 0.29).k == 29  # 0.29·100 is 28.999… in binary


def test_tar_at_far_nearest_matches_insightface_reading():
    g, i = _scores_pair("tied", 4, n_imp=3000)
    g2, i2 = _scores_pair("random", 4, n_imp=3000)
    for gg, ii in ((g, i), (g2, i2)):
        fpr, tpr, _ = roc_curve(np.r_[np.ones(gg.size), np.zeros(ii.size)], np.r_[gg, ii])
        fpr, tpr = np.flipud(fpr), np.flipud(tpr)  # insightface IJB evaluation
        for f in (1e-1, 1e-2, 1e-3, 1e-4):
            r = tar_at_far(gg, ii, f, mode="nearest")
            assert r.mode == "nearest" and r.tar == tpr[np.argmin(np.abs(fpr - f))]
            assert r.measurable is (f * ii.size >= 1)


def test_tar_at_far_chunked_selection(monkeypatch):
    monkeypatch.setattr(_scores, "CHUNK", 64)  # force the streaming top-k path on a small array
    rng = np.random.default_rng(5)
    i = rng.integers(0, 300, 5000).astype(np.float32)  # ties across chunk boundaries
    g = rng.integers(100, 400, 300).astype(np.float32)
    assert i.size > 4 * _scores.CHUNK
    for m in (1, 7, 64, 65, 500, 4999):
        np.testing.assert_array_equal(_scores.top_values(i, m), np.sort(i)[::-1][:m].astype(np.float64))
    res = tar_at_far(g, i, [1e-3, 1e-2, 0.05])
    for f, r in zip([1e-3, 1e-2, 0.05], res):
        tar, thr, fa = _bf_tar_at_far(g, i, f)
        assert (r.tar, r.threshold, r.impostors_admitted) == (pytest.approx(tar), thr, fa)


# --------------------------------------------------------------------------------------------- EER
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eer_brute_force(kind, seed, route):
    g, i = _scores_pair(kind, seed, n_gen=80, n_imp=400)
    r = eer(g, i)
    value, thr = _bf_eer(g, i)
    assert r.eer == pytest.approx(value, abs=1e-14)
    assert r.threshold == thr
    assert float(r) == r.eer and (r.n_genuine, r.n_impostor) == (80, 400)


def test_eer_matches_kaldi_style_on_untied_scores(route):
    """The NIST/Kaldi/WeSpeaker compute_eer (sorted scores, FNR/FPR with an r_[0]/r_[1] start, linear crossing)."""
    g, i = _scores_pair("random", 7, n_gen=500, n_imp=5000)
    s = np.r_[g, i]
    lab = np.r_[np.ones(g.size), np.zeros(i.size)]
    order = np.argsort(s, kind="mergesort")
    lab = lab[order]
    fnr = np.r_[0, np.cumsum(lab) / g.size]
    fpr = np.r_[1, 1 - np.cumsum(1 - lab) / i.size]
    d = fnr - fpr
    x1 = np.flatnonzero(d >= 0)[0]
    x2 = np.flatnonzero(d < 0)[-1]
    a = (fnr[x1] - fpr[x1]) / (fpr[x2] - fpr[x1] - (fnr[x2] - fnr[x1]))
    assert eer(g, i).eer == pytest.approx(fnr[x1] + a * (fnr[x2] - fnr[x1]), abs=1e-12)


def test_eer_separable_and_reversed(route):
    assert eer([2.0, 3.0], [0.0, 1.0]).eer == 0.0
    r = eer([0.0, 1.0], [2.0, 3.0])  # every impostor above every genuine
    assert r.eer == 1.0 and r.threshold == 2.0


# --------------------------------------------------------------------------------------------- minDCF
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("p", [0.01, 0.05, 0.5])
@pytest.mark.parametrize("normalized", [True, False])
def test_min_dcf_brute_force(kind, p, normalized, route):
    g, i = _scores_pair(kind, 11, n_gen=70, n_imp=300)
    cm, cf = (1.0, 1.0) if p != 0.05 else (10.0, 1.0)
    r = min_dcf(g, i, p_target=p, c_miss=cm, c_fa=cf, normalized=normalized)
    best, arg, cost = _bf_dcf(g, i, p, cm, cf)
    norm = min(cm * p, cf * (1 - p)) if normalized else 1.0
    assert r.min_dcf == pytest.approx(float(best) / norm, rel=1e-12)
    assert cost[r.threshold] == best and r.threshold == min(arg)  # a true minimizer (the lowest)
    assert r.p_miss == pytest.approx(np.mean(g < r.threshold)) and r.p_fa == pytest.approx(np.mean(i >= r.threshold))
    assert (r.p_target, r.c_miss, r.c_fa, r.normalized) == (p, cm, cf, normalized)


def test_min_dcf_unnormalized_is_normalized_times_norm():
    g, i = _scores_pair("random", 12)
    a, b = min_dcf(g, i), min_dcf(g, i, normalized=False)
    assert b.min_dcf == pytest.approx(a.min_dcf * 0.01, rel=1e-12) and a.threshold == b.threshold


# --------------------------------------------------------------------------------------------- inputs
def test_accepts_tensors_arrays_lists_and_low_precision():
    g, i = _scores_pair("float32", 13)
    ref = eer(g, i)
    assert eer(torch.from_numpy(g), torch.from_numpy(i)) == ref
    assert eer(list(g.astype(float)), list(i.astype(float))).eer == ref.eer
    assert eer(torch.from_numpy(g).requires_grad_(), torch.from_numpy(i)).eer == ref.eer
    h = eer(torch.from_numpy(g).half(), torch.from_numpy(i).half())
    assert abs(h.eer - ref.eer) < 0.02
    r = tar_at_far(np.array([9, 10]), np.arange(10), 0.1)  # integer scores: k = 1, v = 8
    assert (r.tar, r.threshold, r.impostors_admitted) == (1.0, 9.0, 1)


@pytest.mark.parametrize(
    "fn", [lambda g, i: roc(g, i), lambda g, i: tar_at_far(g, i, 0.1), eer, min_dcf, auc, lambda g, i: det(g, i)]
)
def test_bad_scores(fn):
    ok = np.array([0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="genuine is empty"):
        fn(np.array([]), ok)
    with pytest.raises(ValueError, match="impostor is empty"):
        fn(ok, torch.tensor([]))
    with pytest.raises(ValueError, match=r"impostor contains 1 NaN"):
        fn(ok, np.array([0.1, np.nan, 0.2]))
    with pytest.raises(ValueError, match=r"genuine contains 0 NaN and 1 infinite"):
        fn(np.array([np.inf, 1.0]), ok)
    with pytest.raises(ValueError, match="genuine must be a 1-D"):
        fn(np.ones((2, 2)), ok)
    with pytest.raises(ValueError, match="impostor must hold real scores"):
        fn(ok, np.array(["a", "b"]))


@pytest.mark.parametrize("far", [0.0, 1.0, 1.5, -0.1, float("nan"), [0.1, 2.0], [], "x"])
def test_bad_far(far):
    with pytest.raises(ValueError, match="far"):
        tar_at_far([0.5], [0.1, 0.2], far)


def test_bad_mode_and_dcf_parameters():
    with pytest.raises(ValueError, match="mode"):
        tar_at_far([0.5], [0.1], 0.5, mode="closest")
    for kw, match in (
        ({"p_target": 0.0}, "p_target"),
        ({"p_target": 1.2}, "p_target"),
        ({"c_miss": 0}, "c_miss"),
        ({"c_fa": float("nan")}, "c_fa"),
    ):
        with pytest.raises(ValueError, match=match):
            min_dcf([0.5], [0.1], **kw)
