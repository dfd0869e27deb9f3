"""Subject-level bootstrap (veriloss.metrics.bootstrap): every replicate equals brute-force resampling, intervals
cover the truth where a pair-level binomial interval does not, seeded draws, argument errors, paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from veriloss.metrics import bootstrap_scores, eer, paired_difference, subject_multiplicities
from veriloss.metrics.bootstrap import _brute_force_metrics

FARS = [1e-3, 1e-2, 0.1]
PS = [0.01, 0.05, 0.3]


def _study(rng, n_ids, per_id=3, imp_per_pair=1, spread=1.0, decimals=None):
    """Identities with random offsets (pairs of one identity are correlated); all identity pairs as impostors."""
    u = rng.normal(0, spread, n_ids)
    gid = np.repeat(np.arange(n_ids), per_id)
    g = rng.normal(2.0, 1.0, gid.size) + u[gid]
    a, b = np.triu_indices(n_ids, 1)
    a, b = np.repeat(a, imp_per_pair), np.repeat(b, imp_per_pair)
    i = rng.normal(0.0, 1.0, a.size) + 0.7 * (u[a] + u[b])
    if decimals is not None:  # ties
        g, i = np.round(g, decimals), np.round(i, decimals)
    return g, gid, i, a, b


def _same(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


@pytest.mark.parametrize("scan", [None, 5])  # 5: blocks scanned in many pieces
@pytest.mark.parametrize("dtype", [np.float64, np.float32])  # float32: the store's packed sort
@pytest.mark.parametrize("decimals", [None, 1])
def test_every_replicate_equals_brute_force(decimals, dtype, scan, monkeypatch):
    if scan is not None:
        import veriloss.metrics.bootstrap as mb

        monkeypatch.setattr(mb, "_SCAN", scan)
    rng = np.random.default_rng(5)
    g, gid, i, a, b = _study(rng, 14, per_id=4, imp_per_pair=5, decimals=decimals)
    g, i = g.astype(dtype), i.astype(dtype)
    i[::7] = -i[::7]  # both signs, and −0.0 == 0.0 where rounded to 0
    res = bootstrap_scores(g, gid, i, (a, b), far=FARS, p_targets=PS, replicates=40, seed=7)
    cs = subject_multiplicities(14, 40, 7)
    for r in range(40):
        ref = _brute_force_metrics(g, gid, i, a, b, cs[r], FARS, PS)
        for key, v in ref.items():
            assert _same(res.metrics[key].replicates[r], v), (r, key)
    ones = _brute_force_metrics(g, gid, i, a, b, np.ones(14, dtype=np.int64), FARS, PS)
    for key, v in ones.items():
        assert _same(res.metrics[key].value, v)
    assert res.metrics["tar@far=0.01"].impostors == math.floor(0.01 * i.size)
    assert res.n_genuine == g.size and res.n_impostor == i.size


def test_identity_names_and_order_do_not_matter():
    rng = np.random.default_rng(1)
    g, gid, i, a, b = _study(rng, 9)
    names = np.array([f"id{k:02d}" for k in range(9)])
    r1 = bootstrap_scores(g, gid, i, (a, b), replicates=30, seed=3)
    r2 = bootstrap_scores(g, names[gid], i, (names[b], names[a]), replicates=30, seed=3)
    np.testing.assert_array_equal(r1.eer.replicates, r2.eer.replicates)
    assert r2.identities.tolist() == sorted(names.tolist())


def _naive_eer_interval(g, i, z):
    p = eer(g, i).eer
    half = z * math.sqrt(p * (1 - p) / 2 * (1 / g.size + 1 / i.size))
    return p - half, p + half


def test_coverage_beats_pair_level_binomial():
    """90% intervals over 100 simulated studies of 30 correlated identities: the subject bootstrap covers the
    population EER in roughly 90% of them, the pair-level binomial interval far less often."""
    rng = np.random.default_rng(2024)
    truth = eer(*[x for k, x in enumerate(_study(rng, 2000, per_id=20, spread=1.5)) if k in (0, 2)]).eer
    studies, hits_boot, hits_naive = 100, 0, 0
    for s in range(studies):
        g, gid, i, a, b = _study(rng, 30, per_id=20, imp_per_pair=4, spread=1.5)
        res = bootstrap_scores(g, gid, i, (a, b), far=0.01, p_targets=[0.05], replicates=120, level=0.9, seed=s)
        hits_boot += res.eer.low <= truth <= res.eer.high
        lo, hi = _naive_eer_interval(g, i, 1.6449)
        hits_naive += lo <= truth <= hi
    boot, naive = hits_boot / studies, hits_naive / studies
    print(f"coverage of the 90% intervals: subject bootstrap {boot:.3f}, pair-level binomial {naive:.3f}")
    assert 0.78 <= boot <= 0.98
    assert naive <= boot - 0.15


def test_seeded_reproducible():
    rng = np.random.default_rng(3)
    g, gid, i, a, b = _study(rng, 12)
    r1 = bootstrap_scores(g, gid, i, (a, b), replicates=25, seed=11)
    r2 = bootstrap_scores(g, gid, i, (a, b), replicates=25, seed=11)
    r3 = bootstrap_scores(g, gid, i, (a, b), replicates=25, seed=12)
    for key in r1.metrics:
        np.testing.assert_array_equal(r1.metrics[key].replicates, r2.metrics[key].replicates)
    assert not np.array_equal(r1.eer.replicates, r3.eer.replicates)
    assert r1.eer.replicates.shape == (25,)
    np.testing.assert_array_equal(subject_multiplicities(12, 25, 11), subject_multiplicities(12, 25, 11))
    assert subject_multiplicities(12, 25, 11).sum(axis=1).tolist() == [12] * 25


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"replicates": 0}, "replicates must be an integer ≥ 1"),
        ({"replicates": 2.5}, "replicates must be"),
        ({"level": 1.5}, "level must be in the open interval"),
        ({"level": True}, "level must be a real number"),
        ({"seed": -1}, "seed must be an integer ≥ 0"),
        ({"far": 0}, "far must be in the open interval"),
        ({"p_targets": "0.01"}, "p_targets must be a sequence"),
        ({"c_fa": 0}, "c_fa must be a finite cost"),
    ],
)
def test_argument_errors(kwargs, match):
    rng = np.random.default_rng(0)
    g, gid, i, a, b = _study(rng, 5)
    with pytest.raises(ValueError, match=match):
        bootstrap_scores(g, gid, i, (a, b), **kwargs)


def test_identity_errors():
    rng = np.random.default_rng(0)
    g, gid, i, a, b = _study(rng, 5)
    with pytest.raises(ValueError, match="genuine_ids must be 1-D with one identity per genuine score"):
        bootstrap_scores(g, gid[:-1], i, (a, b))
    with pytest.raises(ValueError, match="impostor_ids must be a pair"):
        bootstrap_scores(g, gid, i, a)
    with pytest.raises(ValueError, match=r"same identity .* on both sides"):
        bootstrap_scores(g, gid, i, (a, a))
    with pytest.raises(ValueError, match="the same way"):
        bootstrap_scores(g, gid.astype(str), i, (a, b))
    with pytest.raises(ValueError, match="n_identities must be"):
        subject_multiplicities(0)


def test_paired_difference():
    rng = np.random.default_rng(9)
    g, gid, i, a, b = _study(rng, 20)
    base = bootstrap_scores(g, gid, i, (a, b), far=[0.01, 0.1], replicates=200, seed=4)
    same = paired_difference(base, base)
    for m in same.values():
        assert m.value == 0 and m.low == 0 and m.high == 0
        assert not np.any(m.replicates[~np.isnan(m.replicates)])
    better = bootstrap_scores(g + 0.7, gid, i, (a, b), far=[0.01, 0.1], replicates=200, seed=4)
    d = paired_difference(better, base)
    assert d["eer"].high < 0 and d["min_dcf@p=0.01"].high <= 0
    assert d["tar@far=0.1"].low > 0
    other = bootstrap_scores(g, gid, i, (a, b), far=[0.01, 0.1], replicates=200, seed=5)
    with pytest.raises(ValueError, match="drawn differently"):
        paired_difference(other, base)
    fewer = bootstrap_scores(g[gid < 19], gid[gid < 19], i, (a, b), far=[0.01, 0.1], replicates=200, seed=4)
    assert fewer.identities.size == 20  # impostors still name identity 19
    keep = (a < 19) & (b < 19)
    sub = bootstrap_scores(g[gid < 19], gid[gid < 19], i[keep], (a[keep], b[keep]), replicates=200, seed=4)
    with pytest.raises(ValueError, match="different identity sets"):
        paired_difference(sub, base)


def test_the_store_sorts_float32_scores_as_the_argsort_does():
    """_Store's packed sort (float32 scores, ≤ 2^16 identities) against the argsort path: the same scores in
    decreasing order, and the same (smaller, larger) identity pairs within every tied group."""
    from veriloss.metrics.bootstrap import _sorted_pairs

    rng = np.random.default_rng(2)
    n_ids = 1 << 16  # the largest the packed sort takes: pair codes up to 2^32 − 1
    s = np.round(rng.normal(0, 1, 20_000), 2).astype(np.float32)  # many ties
    s[:50] = np.float32(-0.0)
    s[50:100] = np.float32(0.0)
    a, b = rng.integers(0, n_ids, s.size), rng.integers(0, n_ids, s.size)
    fast = _sorted_pairs(s, a, b, n_ids)
    slow = _sorted_pairs(s.astype(np.float64), a, b, n_ids)
    np.testing.assert_array_equal(fast[0], slow[0])
    assert np.all(np.diff(fast[0]) <= 0) and fast[0].dtype == np.float64
    assert np.all(fast[1] <= fast[2]) and np.array_equal(fast[3], fast[1].astype(np.int64) * n_ids + fast[2])
    for v in np.unique(fast[0]):  # each tied group holds the same pairs
        tie_f, tie_s = fast[0] == v, slow[0] == v
        assert sorted(fast[3][tie_f].tolist()) == sorted(slow[3][tie_s].tolist())
