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


# ---------------------------------------------------------------------------------------- one pass (prepare first)
def _float32_data(kind: str, seed: int):
    """Float32 genuine / impostor scores, including adversarial layouts for the one-pass counter."""
    rng = np.random.default_rng(seed)
    f = np.float32
    if kind in ("cosine", "tied"):
        return _data(kind, seed)
    if kind == "out_of_range":
        g, i = _data(kind, seed)
        return g.astype(f), i.astype(f)
    if kind == "concentrated":  # real-like: many genuine values inside the impostor bulk, most bins "dense"
        return rng.normal(0.45, 0.2, 6000).astype(f), rng.normal(0.05, 0.15, 60000).astype(f)
    if kind == "one_bin":  # every score in one bin of 2^12 float32 values (both kinds, many ties)
        base = np.float32(0.5).view(np.int32)
        return (base + rng.integers(0, 4096, 700)).astype(np.int32).view(f), (
            base + rng.integers(0, 4096, 30000)
        ).astype(np.int32).view(f)
    if kind == "genuine_equal_impostor":  # every genuine value is also an impostor value, several times
        i = np.round(rng.normal(0.0, 0.3, 30000), 3).astype(f)
        return rng.choice(i, 900), i
    if kind == "adjacent":  # genuine values one ulp apart (cells cannot separate them) amid impostors
        base = np.float32(0.25).view(np.int32) + rng.integers(0, 1 << 14, 300)
        g = np.concatenate([base, base + 1]).astype(np.int32).view(f)
        i = (np.float32(0.25).view(np.int32) + rng.integers(-100, (1 << 14) + 100, 40000)).astype(np.int32).view(f)
        return g, i
    if kind == "zeros":  # signed zeros and subnormals on both sides
        vals = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, 0.5, -0.5], dtype=f)
        return rng.choice(vals, 200), rng.choice(vals, 5000)
    raise AssertionError(kind)


def _one_pass(g, i, bits=11, sample="rows", top=0, ps=(0.01, 0.05), block=7777, n=None, **kw):
    b = SummaryBuilder(top=top, mantissa_bits=bits)
    if isinstance(sample, str):
        sample = [i[k : k + 997] for k in range(0, i.size, 997 * 7)] if sample == "rows" else None
    b.prepare(g, sample=sample, p_targets=ps, n=n, **kw)
    for k in range(0, i.size, block):
        b.add(i[k : k + block])
    b.plan(g, p_targets=ps)
    second = b.needs_second_pass
    if second:
        for k in range(0, i.size, block):
            b.refine(i[k : k + block])
    return b.build(), second


def _same_summary(a, b):
    """Two summaries hold the same information: histogram, top, refined bins and values, AUC."""
    assert a.n == b.n and a.shift == b.shift
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.top, b.top)
    np.testing.assert_array_equal(a.refined_bins, b.refined_bins)
    np.testing.assert_array_equal(a.refined_values, b.refined_values)
    assert a.auc_state == b.auc_state


KINDS = ["cosine", "tied", "out_of_range", "concentrated", "one_bin", "genuine_equal_impostor", "adjacent", "zeros"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bits", [0, 4, 11, 13])
def test_one_pass_equals_two_passes_and_full_arrays(kind, bits):
    g, i = _float32_data(kind, 0)
    ps = (0.01, 0.05, 0.5)
    top = int(0.1 * i.size) + 1
    two = summarize(g, i, top=top, mantissa_bits=bits, p_targets=ps, block=7777)
    for sample, n in (("rows", i.size), ("rows", None), (None, i.size)):
        one, _ = _one_pass(g, i, bits, sample, top=top, ps=ps, n=n)
        _same_summary(one, two)
    assert eer(g, one) == eer(g, i)
    for p in ps:
        assert min_dcf(g, one, p) == min_dcf(g, i, p)
    assert auc(g, one) == auc(g, i)
    assert tar_at_far(g, one, [*FARS[:1], 0.05]) == tar_at_far(g, i, [*FARS[:1], 0.05])
    r1, r2 = roc(g, one), roc(g, two)
    assert np.array_equal(r1.far, r2.far) and np.array_equal(r1.tar, r2.tar)


@pytest.mark.parametrize("kind", ["concentrated", "adjacent", "cosine"])
@pytest.mark.parametrize("max_cells", [1, 64, 1 << 21])
def test_one_pass_with_few_cells_keeps_scores_instead(kind, max_cells):
    # few cells: bins (or cells) holding several genuine values keep their scores; the result cannot change
    g, i = _float32_data(kind, 1)
    one, _ = _one_pass(g, i, top=50, n=i.size, max_cells=max_cells)
    _same_summary(one, summarize(g, i, top=50, p_targets=(0.01, 0.05), block=7777))


def test_one_pass_int32_counters_move_to_int64(monkeypatch):
    import veriloss.metrics.cells as cells

    monkeypatch.setattr(cells, "_FLUSH_AT", 5000)  # as if 2^31 scores had been counted
    g, i = _float32_data("concentrated", 2)
    one, _ = _one_pass(g, i, top=30, n=i.size, block=3000)
    _same_summary(one, summarize(g, i, top=30, p_targets=(0.01, 0.05)))


def test_one_pass_needs_a_second_pass_only_when_a_prediction_missed():
    g, i = _float32_data("cosine", 3)
    rows = [i[k : k + 1000] for k in range(0, i.size, 1000)]  # every score: the predictions are right
    _, second = _one_pass(g, i, sample=rows, top=int(0.01 * i.size) + 1, n=i.size)
    assert not second
    _, second = _one_pass(g, i, sample=None, top=5, n=i.size)  # no sample: nothing predicted
    assert second
    shifted = [r + np.float32(0.4) for r in rows]  # a misleading sample: wrong bins kept, a too high top
    one, second = _one_pass(g, i, sample=shifted, top=int(0.01 * i.size) + 1, n=i.size)
    assert second
    _same_summary(one, summarize(g, i, top=int(0.01 * i.size) + 1, p_targets=(0.01, 0.05)))
    one, second = _one_pass(g, i, sample=rows, top=int(0.01 * i.size) + 1, n=10 * i.size)  # wrong n: top missed
    assert second
    _same_summary(one, summarize(g, i, top=int(0.01 * i.size) + 1, p_targets=(0.01, 0.05)))


def test_one_pass_takes_float32_values_in_any_dtype():
    g, i = _float32_data("cosine", 4)
    ref = summarize(g, i, top=20, p_targets=(0.01,))
    b = SummaryBuilder(top=20)
    b.prepare(torch.from_numpy(g).double(), sample=[i[:3000]], n=i.size)
    b.add(i[:10000].astype(np.float64))  # float64 holding float32 values
    b.add(torch.from_numpy(i[10000:20000]))
    b.add(i[20000:].reshape(-1, 100))
    b.plan(g.astype(np.float64))
    if b.needs_second_pass:
        for part in (i[:20000], i[20000:]):
            b.refine(part)
    s = b.build()
    assert eer(g, s) == eer(g, ref) and min_dcf(g, s) == min_dcf(g, ref) and auc(g, s) == auc(g, ref)
    h = np.float16([0.25, 0.5, -0.125])
    b = SummaryBuilder(top=3)
    b.prepare(h.astype(np.float32))
    b.add(h)
    b.plan(h.astype(np.float32))
    if b.needs_second_pass:  # no sample given: nothing was predicted, the EER bins are refined in a second pass
        b.refine(h)
    assert b.build().top.tolist() == [0.5, 0.25, -0.125]


def test_one_pass_errors_name_the_problem():
    g, i = _float32_data("cosine", 5)
    b = SummaryBuilder()
    with pytest.raises(ValueError, match="float32 values"):
        b.prepare(np.array([0.1, 0.2]))  # float64 genuine scores that float32 cannot hold
    b.prepare(g)
    with pytest.raises(RuntimeError, match="prepare\\(\\) comes once"):
        b.prepare(g)
    with pytest.raises(ValueError, match="impostor scores must be float32 values"):
        b.add(np.array([0.1, 0.3]))
    b.add(i)
    with pytest.raises(RuntimeError, match="call plan\\(\\) before build"):
        b.build()
    with pytest.raises(ValueError, match="genuine scores that prepare\\(\\) was given"):
        b.plan(g[:-1])
    b = SummaryBuilder()
    b.add(i)
    with pytest.raises(RuntimeError, match="before add"):
        b.prepare(g)
    with pytest.raises(ValueError, match="max_cells"):
        SummaryBuilder().prepare(g, max_cells=0)


def test_one_pass_without_auc_or_eer():
    g, i = _float32_data("cosine", 6)
    b = SummaryBuilder(top=10)
    b.prepare(g, sample=[i[:5000]], eer=False, p_targets=(0.05,))
    b.add(i)
    b.plan(g, p_targets=(0.05,), auc=False, eer=False)
    if b.needs_second_pass:
        b.refine(i)
    s = b.build()
    assert s.auc_state is None and min_dcf(g, s, 0.05) == min_dcf(g, i, 0.05)
    with pytest.raises(ValueError, match="no AUC"):
        auc(g, s)


def test_the_finiteness_scan_of_each_block_is_skipped_inside_unchecked(monkeypatch):
    """add() scans each block for NaN/inf, except inside unchecked(): all_pairs, whose cosines of checked embeddings
    are finite, adds its blocks there."""
    from veriloss._checks import validating
    from veriloss.protocols import all_pairs

    with pytest.raises(ValueError, match="NaN"):
        SummaryBuilder().add(np.array([0.1, np.nan], dtype=np.float32))
    scans = []
    original = SummaryBuilder._flat
    monkeypatch.setattr(SummaryBuilder, "_flat", staticmethod(lambda a: scans.append(validating()) or original(a)))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 16, generator=g), torch.randint(0, 40, (300,), generator=g)
    all_pairs(x, y)  # (its exactness against the full score arrays: tests/protocols/test_all_pairs.py)
    assert scans and not any(scans)  # every block added without the scan


def test_the_cumulative_counts_are_made_once_per_summary():
    """Every metric of a summary reads #{impostor in bins ≥ b} and #{genuine in bins < b}: tables of the occupied
    bins, made once per summary (per genuine scores), equal to their definitions at every bin."""
    rng = np.random.default_rng(3)
    g, i = rng.normal(1, 1, 500).astype(np.float32), rng.normal(0, 1, 20_000).astype(np.float32)
    s = summarize(g, i, mantissa_bits=4)
    assert s._impostor_bins is s._impostor_bins
    b = np.arange(s.bins + 1)
    ge = [int(s.counts[k:].sum()) for k in b]
    np.testing.assert_array_equal(s._ge(b), ge)  # many bins at once: the whole table
    for k in range(0, s.bins + 1, 7):  # one at a time: binary searches in the occupied bins
        assert s._ge(k) == ge[k] and s._ge([k])[0] == ge[k]
    gs = np.sort(g)
    gb = s.bin_of(gs)
    np.testing.assert_array_equal(s._lt(gs, b), [int(np.count_nonzero(gb < k)) for k in b])
    np.testing.assert_array_equal(s._occupied(gs), np.flatnonzero(s.counts + np.bincount(gb, minlength=s.bins)))
    assert s._genuine_tables(gs) is s._genuine_tables(gs.copy())


def _nearest_within_budget_loop(firsts, dist, hist, width, budget):
    """The selection written as the plain greedy loop over every listed window (the test's oracle)."""
    keep = np.zeros(hist.size, dtype=bool)
    cand = sorted(zip(np.concatenate(dist).tolist(), np.concatenate(firsts).tolist())) if firsts else []
    for _, a in cand:
        mass = int(hist[a : a + width][~keep[a : a + width]].sum())
        if mass <= budget:
            keep[a : a + width] = True
            budget -= mass
    return keep


def test_the_bins_kept_within_the_budget_equal_the_greedy_loop():
    from veriloss.metrics.cells import _nearest_within_budget

    rng = np.random.default_rng(0)
    for _ in range(400):
        width = int(rng.choice([1, 4, 128]))
        nb = width * int(rng.integers(5, 60)) + int(rng.integers(0, width))  # the last window may be cut short
        hist = rng.integers(0, 6, nb) * (rng.random(nb) < rng.uniform(0.1, 0.9))  # empty bins and windows too
        bands, firsts, dist = [], [], []
        for _ in range(int(rng.integers(0, 4))):  # overlapping bands list some windows twice
            lo, hi = sorted(rng.integers(0, nb // width, 2).tolist())
            centre = int(rng.integers(lo * width, hi * width + width))  # ties: windows on both sides at one distance
            bands.append((lo * width, hi * width, centre))
            firsts.append(np.arange(lo * width, hi * width + 1, width))
            dist.append(np.abs(firsts[-1] + width // 2 - centre))
        budget = float(rng.uniform(0, hist.sum() + 1))
        got = _nearest_within_budget(bands, hist, width, budget)
        np.testing.assert_array_equal(got, _nearest_within_budget_loop(firsts, dist, hist, width, budget))
        assert hist[got].sum() <= budget


def test_all_pairs_of_a_few_random_embeddings_is_exact(monkeypatch):
    # six random embeddings: the EER band spans the float32 values from −1 to 1, half a million windows of the
    # counter's bins (the prediction once walked them one by one: seconds for six embeddings)
    import veriloss.metrics.cells as cells
    from veriloss.protocols import all_pairs

    listed = []
    select = cells._nearest_within_budget

    def spy(bands, hist, width, budget):
        listed.append(sum((a1 - a0) // width + 1 for a0, a1, _ in bands))
        return select(bands, hist, width, budget)

    monkeypatch.setattr(cells, "_nearest_within_budget", spy)
    x = torch.nn.functional.normalize(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    result = all_pairs(x, y, far=(0.1, 0.5))
    assert listed and max(listed) > 100_000
    iu = np.triu_indices(6, 1)
    s, same = (x @ x.T).numpy()[iu], (y[:, None] == y[None, :]).numpy()[iu]
    assert result.auc == pytest.approx(auc(s[same], s[~same]), abs=1e-15)
    assert result.eer.eer == eer(s[same], s[~same]).eer


@pytest.mark.parametrize("runs", ["many", "few"])
@pytest.mark.parametrize("bits", [11, 8])
def test_the_counter_returns_the_exact_values_of_any_kept_bins(bits, runs):
    """CellCounter.values: for any set of summary bins (many runs, a run across the top region's edge, bins partly
    kept), which are known exactly and their sorted values, against a plain selection of the scores."""
    from veriloss.metrics.bins import INF_BITS, bin_index, bin_runs, float32_keys, mantissa_shift, n_bins
    from veriloss.metrics.cells import FINE_SHIFT, CellCounter

    rng = np.random.default_rng(5)
    g = np.sort(rng.normal(0.5, 0.2, 300).astype(np.float32))
    i = rng.normal(0.1, 0.3, 50_000).astype(np.float32)
    shift = mantissa_shift(bits)
    s = min(shift, FINE_SHIFT)

    def first_fine(b):  # the first counter bin of summary bin b
        return ((b - (INF_BITS >> shift)) << (shift - s)) + (INF_BITS >> s)

    fine, coarse = bin_index(i, s).astype(np.int64), bin_index(i, shift).astype(np.int64)
    edge = int(np.quantile(coarse, 0.98))  # the top region: the summary bins from edge up
    below = np.unique(fine[fine < first_fine(edge)])
    keep = rng.choice(below, below.size // 2, replace=False)  # half the occupied counter bins below it, and
    keep = np.union1d(keep, np.arange(first_fine(edge - 1), first_fine(edge)))  # the bin just below: a run across
    keys = float32_keys(g)
    first = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1))
    c = CellCounter(keys[first], np.diff(np.append(first, keys.size)), keep, s, 1 << 21, first_fine(edge))
    for k in range(0, i.size, 4096):
        c.add(i[k : k + 4096])
    per_bin, _, kept = c.finish(shift)
    np.testing.assert_array_equal(per_bin, np.bincount(coarse, minlength=n_bins(shift)))

    occupied = np.unique(coarse)
    lower = occupied[occupied < edge - 1]
    step = 7 if runs == "many" else lower.size // 3  # more than four runs below the top region, or two
    want = np.unique(np.concatenate([lower[::step], [edge - 1, edge], occupied[occupied > edge][::3]]))
    assert (np.count_nonzero(np.diff(want[want < edge - 1]) > 1) > 4) == (runs == "many")
    ok, values = c.values(want, shift, kept)
    kept_fine = np.zeros(c.keep_bin.size, dtype=bool)
    kept_fine[keep] = True
    kept_fine[first_fine(edge) :] = True
    counts_fine = np.bincount(fine, minlength=kept_fine.size)
    for j, b in enumerate(want):  # known exactly: every counter bin inside it kept, or empty
        inner = np.arange(first_fine(b), first_fine(b + 1))
        assert ok[j] == bool(np.all(kept_fine[inner] | (counts_fine[inner] == 0)))
    assert ok[np.searchsorted(want, edge - 1)] and np.count_nonzero(coarse == edge - 1) > 0
    assert ok.sum() > 5 and not ok.all()
    assert bin_runs(want[ok]) != [] and any(a < edge <= b for a, b in bin_runs(want[ok]))  # a run across the edge
    np.testing.assert_array_equal(values, np.sort(i[np.isin(coarse, want[ok])]).astype(np.float64))


def test_the_genuine_tables_follow_the_genuine_scores_asked_for():
    """A summary keeps its per-bin genuine tables for the last genuine scores it was asked about: asking about other
    scores (or scores changed in place) gives what a fresh summary gives."""
    g, i = _data("cosine", 6)
    s, fresh = summarize(g, i, mantissa_bits=6), summarize(g, i, mantissa_bits=6)

    def same(a, b):
        return all(np.array_equal(x, y) for x, y in ((a.far, b.far), (a.tar, b.tar), (a.thresholds, b.thresholds)))

    before = roc(g, s)
    other = g[: g.size // 2] + np.float32(0.1)
    assert same(roc(other, s), roc(other, fresh)) and not same(roc(other, s), before)
    assert same(roc(g, s), before)
    g2 = g.copy()
    roc(g2, s)
    g2[:100] += np.float32(0.3)  # same array, new values
    assert same(roc(g2, s), roc(g2, fresh))
    assert same(roc(g.astype(np.float64), s), before)


@pytest.mark.parametrize(
    "gs",
    [
        np.array([1.0, 1.0, 2.0, 3.0, 3.0, 3.0]),
        np.array([], dtype=np.float32),
        np.array([1e30, 1e30, 2e30]),  # x − 1 == x: no sentinel below the first value
        np.array([-0.0, 0.0, 0.0], dtype=np.float32),  # −0.0 == 0.0: one value
        np.sort(np.random.default_rng(0).integers(0, 5, 50).astype(np.float32)),
    ],
)
def test_the_distinct_values_of_a_sorted_array_equal_numpy_unique(gs):
    from veriloss.metrics._scores import distinct_sorted

    values, first = distinct_sorted(gs)
    u, idx = np.unique(gs, return_index=True)
    assert values.dtype == np.float64 and np.array_equal(values, u) and np.array_equal(first, idx)
    assert np.array_equal(first, np.searchsorted(gs, u, side="left"))
