"""Subject-level bootstrap confidence intervals (docs/evaluation.md §Confidence intervals).

Pairs of an evaluation share identities, so they are not independent and a binomial interval on pair counts is far
too narrow. The subsets bootstrap (Bolle, Ratha & Pankanti, *Error analysis of pattern recognition systems — the
subsets bootstrap*, CVIU 2004) resamples identities instead: each replicate draws multiplicities
c ~ Multinomial(n, 1/n) over the n identities (sorted), and

* a genuine pair of identity i counts c_i times,
* an impostor pair of identities i ≠ j counts c_i·c_j times

(pairs between two copies of one identity are not formed). Every metric of a replicate is the exact metric
(:mod:`veriloss.metrics.verification`, same tie conventions) of that weighted multiset of scores: equal to calling
:func:`~veriloss.metrics.tar_at_far`, :func:`~veriloss.metrics.eer` and :func:`~veriloss.metrics.min_dcf` on the
scores repeated by their weights. The scores are never recomputed: they are sorted once, and each replicate needs
weighted counts only, obtained from per-block quadratic forms of c (one matrix product for all blocks) plus an exact
scan of the few blocks where its thresholds fall. The draws depend only on the seed and the sorted identity set, so
two systems scored on the same identities get the same draws (common random numbers; :func:`paired_difference`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from .._checks import check_int, check_real
from ._scores import as_scores, check_cost, check_fars, check_rate, dcf_cost, distinct_sorted, prefix_sums
from .bins import float32_keys, key_values
from .verification import _eer_from_points, eer, min_dcf, tar_at_far

__all__ = [
    "BootstrapResult",
    "Interval",
    "StoreTooSmall",
    "bootstrap_scores",
    "paired_difference",
    "subject_multiplicities",
]

#: dense block × identity-pair count matrix kept at most this many entries (float64: 128 MB)
BLOCK_MATRIX_MAX = 1 << 24
_CHUNK_ELEMENTS = 1 << 22  # replicates × identity pairs per matrix product
_SCAN = 1 << 14  # store scores per piece of a block scan


class StoreTooSmall(Exception):
    """A replicate needed impostor scores below the kept ones (internal: the caller keeps more and retries)."""


# ----------------------------------------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class Interval:
    """One metric: the point estimate, its percentile interval [low, high], and every replicate's value.

    ``impostors`` is the number of impostor pairs the point estimate's threshold rests on: ⌊f·N⌋ for TAR@FAR=f, the
    impostors admitted at the EER and minDCF thresholds. ``replicates`` has shape (R,); NaN where a replicate's
    metric is undefined (TAR@FAR with f·N_r < 1, or a replicate without genuine pairs).
    """

    name: str
    value: float
    low: float
    high: float
    level: float
    impostors: int | None
    replicates: np.ndarray = field(repr=False)

    @property
    def undefined(self) -> int:
        """How many replicates have no value (left out of the interval)."""
        return int(np.count_nonzero(np.isnan(self.replicates)))

    def __str__(self) -> str:
        return f"{self.name}: {self.value:.6g} [{self.low:.6g}, {self.high:.6g}] ({100 * self.level:g}% interval)"


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Subject-level bootstrap of TAR@FAR (each FAR), EER and minDCF (each p_target).

    ``metrics`` maps "tar@far=<f>", "eer" and "min_dcf@p=<p>" to an :class:`Interval`; ``identities`` is the sorted
    identity set the multiplicities were drawn over (columns of :func:`subject_multiplicities`).
    """

    metrics: dict[str, Interval]
    far: tuple[float, ...]
    p_targets: tuple[float, ...]
    replicates: int
    level: float
    seed: int
    identities: np.ndarray = field(repr=False)
    n_genuine: int
    n_impostor: int

    @property
    def tar(self) -> tuple[Interval, ...]:
        return tuple(self.metrics[_tar_key(f)] for f in self.far)

    @property
    def eer(self) -> Interval:
        return self.metrics["eer"]

    @property
    def min_dcf(self) -> tuple[Interval, ...]:
        return tuple(self.metrics[_dcf_key(p)] for p in self.p_targets)

    def __str__(self) -> str:
        head = f"subject bootstrap: {self.replicates} replicates over {self.identities.size} identities"
        return "\n".join([head, *(str(m) for m in self.metrics.values())])


def _tar_key(f: float) -> str:
    return f"tar@far={f:g}"


def _dcf_key(p: float) -> str:
    return f"min_dcf@p={p:g}"


# ----------------------------------------------------------------------------------------------------------- draws
def _check_draw_args(replicates: object, seed: object, level: object | None = None) -> tuple[int, int, float | None]:
    r = check_int(replicates, "replicates", 1, what="an integer ≥ 1 (the number of bootstrap replicates)")
    s = check_int(seed, "seed", 0, what="an integer ≥ 0 (the seed of numpy.random.default_rng)")
    lv = None
    if level is not None:
        lv = check_real(level, "level")
        if not (math.isfinite(lv) and 0.0 < lv < 1.0):
            raise ValueError(f"level must be in the open interval (0, 1), e.g. 0.95, got {level!r}")
    return r, s, lv


def subject_multiplicities(n_identities: int, replicates: int = 1000, seed: int = 0) -> np.ndarray:
    """Multiplicities c ~ Multinomial(n, 1/n) of n identities, one row per replicate: an (R, n) int64 array.

    Drawn with ``numpy.random.default_rng(seed).multinomial``, so the same seed and the same number of identities
    give the same rows (columns follow the sorted identity set; each row sums to n).

    >>> subject_multiplicities(4, replicates=2, seed=0).sum(axis=1).tolist()
    [4, 4]
    """
    n = check_int(n_identities, "n_identities", 1, what="an integer ≥ 1")
    r, s, _ = _check_draw_args(replicates, seed)
    return np.random.default_rng(s).multinomial(n, np.full(n, 1.0 / n), size=r).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------- engine
class _Store:
    """Impostor scores ≥ ``tau`` (all of them: tie-closed), sorted in decreasing order, with identity indices.

    Blocks [bnd[k], bnd[k+1]) never split a tied group; ``pairs`` lists the distinct identity pairs of the store and
    ``counts[k, p]`` how many store scores of block k belong to pair p (the block weight of a replicate is the
    quadratic form Σ_p counts[k, p]·c_a(p)·c_b(p)). ``complete``: the store holds every impostor score.
    """

    def __init__(self, scores: np.ndarray, a: np.ndarray, b: np.ndarray, n_ids: int, complete: bool, blocks: int):
        self.s, self.a, self.b, code = _sorted_pairs(scores, a, b, n_ids)  # (a ≤ b: a replicate weighs c_a·c_b)
        self.m = self.s.size
        self.complete = complete
        self.tau = -math.inf if complete or self.m == 0 else float(self.s[-1])
        self.asc = self.s[::-1]
        if n_ids * n_ids <= 1 << 26:  # dense: a lookup table instead of a sort
            present = np.bincount(code, minlength=n_ids * n_ids) > 0
            codes = np.flatnonzero(present)
            inv = (np.cumsum(present) - 1)[code]
        else:
            codes, inv = np.unique(code, return_inverse=True)
        self.pa, self.pb = codes // n_ids, codes % n_ids
        n_pairs = max(1, codes.size)
        nb = int(np.clip(min(blocks, BLOCK_MATRIX_MAX // n_pairs), 1, max(1, self.m)))
        pos = np.concatenate([np.geomspace(1, max(self.m, 1), nb // 2 + 1), np.linspace(0, self.m, nb // 2 + 1)])
        pos = np.clip(np.round(pos).astype(np.int64), 0, self.m)
        inner = pos[(pos > 0) & (pos < self.m)]
        snapped = self.m - np.searchsorted(self.asc, self.s[inner], side="right")  # before the tied group
        self.bnd = np.unique(np.concatenate([[0, self.m], snapped[snapped > 0]]))
        blk = np.repeat(np.arange(self.bnd.size - 1), np.diff(self.bnd))
        nbk = self.bnd.size - 1
        self.counts = np.bincount(blk * n_pairs + inv.reshape(-1), minlength=nbk * n_pairs).astype(np.float64)
        self.counts_t = torch.from_numpy(self.counts.reshape(nbk, n_pairs).T.copy())  # (pairs, blocks)
        del self.counts

    def count_ge(self, t: np.ndarray) -> np.ndarray:
        """#{store ≥ t} (unweighted positions), for float64 thresholds."""
        return self.m - np.searchsorted(self.asc, t, side="left")


def _sorted_pairs(
    scores: np.ndarray, a: np.ndarray, b: np.ndarray, n_ids: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The scores in decreasing order (float64), with the smaller and the larger identity index of each pair (int32)
    and the pair's code lo·n_ids + hi (int64); ties in any order. float32 scores of at most 2^16 identities: one sort
    of the score's order key and the pair code packed in an int64 (numpy's vectorized integer sort: half the time of
    an argsort, and no gathers); otherwise an argsort."""
    code = np.minimum(a, b).astype(np.int64) * n_ids + np.maximum(a, b)
    if scores.dtype == np.float32 and n_ids <= 1 << 16:
        packed = -float32_keys(scores)  # decreasing score = increasing −key
        packed <<= 32
        packed |= code
        packed.sort()
        code = packed & 0xFFFFFFFF
        packed >>= 32
        s = key_values(-packed)
    else:
        order = np.argsort(-scores)
        s, code = scores[order].astype(np.float64), code[order]
    lo, hi = np.divmod(code, n_ids)
    return s, lo.astype(np.int32), hi.astype(np.int32), code


class _Replicate:
    """Weighted counts of one replicate (multiplicities c)."""

    def __init__(self, st: _Store, c: np.ndarray, block_w: np.ndarray, n_imp: int, g_ids: np.ndarray):
        self.st, self.c = st, c
        self.F = prefix_sums(np.rint(block_w).astype(np.int64))
        self.N = int(self.F[-1]) if st.complete else int(n_imp)
        self.cw = prefix_sums(c[g_ids])  # weighted genuine prefix over ascending genuine
        self.G = int(self.cw[-1])
        self._cum: dict[int, np.ndarray] = {}

    def block_cum(self, k: int) -> np.ndarray:
        cum = self._cum.get(k)
        if cum is None:
            i0, i1 = int(self.st.bnd[k]), int(self.st.bnd[k + 1])
            cum = np.empty(i1 - i0, dtype=np.int64)
            for j0 in range(i0, i1, _SCAN):  # in cache-sized pieces: the products and sums stay in the cache
                j1 = min(i1, j0 + _SCAN)
                w = self.c.take(self.st.a[j0:j1])
                w *= self.c.take(self.st.b[j0:j1])
                if j0 > i0:
                    w[0] += cum[j0 - i0 - 1]
                np.cumsum(w, out=cum[j0 - i0 : j1 - i0])
            self._cum[k] = cum
        return cum

    def nfa(self, i: np.ndarray) -> np.ndarray:
        """Exact weighted #{impostor ≥ t} for t whose store position count is ``i`` (t ≥ tau)."""
        bnd = self.st.bnd
        k = np.searchsorted(bnd, i, side="right") - 1  # i == m: the last boundary (exact)
        out = self.F[k].copy()
        for kk in np.unique(k[i > bnd[k]]):
            sel = (k == kk) & (i > bnd[k])
            out[sel] += self.block_cum(int(kk))[i[sel] - bnd[kk] - 1]
        return out

    def bounds(self, i: np.ndarray, below: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower, upper, exact) bounds on the weighted impostor count at thresholds with store count ``i``, in
        block ``k`` (the last boundary ≤ i: the same for every replicate, so the engine finds it once)."""
        bnd = self.st.bnd
        exact = (i == bnd[k]) & ~below
        lo, hi = self.F[k], np.where(exact, self.F[k], self.F[np.minimum(k + 1, bnd.size - 1)])
        lo = np.where(below, self.F[-1], lo)
        hi = np.where(below, self.N, hi)
        return lo, hi, exact

    def kth_largest(self, q: int) -> float:
        """The q-th largest impostor score of the weighted multiset (1-based)."""
        if q > self.F[-1]:
            raise StoreTooSmall
        k = int(np.searchsorted(self.F, q, side="left")) - 1
        j = int(np.searchsorted(self.block_cum(k), q - self.F[k], side="left"))
        return float(self.st.s[self.st.bnd[k] + j])


class _Engine:
    def __init__(self, gen: np.ndarray, gen_ids: np.ndarray, store: _Store, n_ids: int, sample_sizes=None):
        order = np.argsort(gen, kind="stable")
        self.gs = gen[order]
        self.gid = gen_ids[order].astype(np.int64)
        self.st = store
        self.n_ids = n_ids
        self.sizes = None if sample_sizes is None else np.asarray(sample_sizes, dtype=np.float64)
        cand, self.g_left = distinct_sorted(self.gs)  # the candidate thresholds, #genuine below each
        self.g_right = np.append(self.g_left[1:], self.gs.size)  # #genuine ≤ each
        c_i = store.count_ge(cand)
        c_k = np.searchsorted(store.bnd, c_i, side="right") - 1  # block of each candidate's count
        c_below = (cand < store.tau) & (not store.complete)
        # per candidate, and for the point at +inf (reject everything) appended: threshold, #genuine below it, store
        # count, below tau, block of the count
        self._pt = tuple(
            np.append(x, end)
            for x, end in zip((cand, self.g_left, c_i, c_below, c_k), (math.inf, self.gs.size, 0, False, 0))
        )

    def replicates(self, cs: np.ndarray):
        st = self.st
        chunk = max(1, _CHUNK_ELEMENTS // max(1, st.pa.size))
        for r0 in range(0, cs.shape[0], chunk):
            c = cs[r0 : r0 + chunk].astype(np.float64)
            bw = torch.mm(torch.from_numpy(c[:, st.pa] * c[:, st.pb]), st.counts_t).numpy()  # exact: float64
            if self.sizes is None:
                n_imp = np.zeros(c.shape[0])
            else:
                cn = c * self.sizes
                n_imp = (cn.sum(axis=1) ** 2 - (cn * cn).sum(axis=1)) / 2
            for j in range(c.shape[0]):
                yield _Replicate(st, cs[r0 + j].astype(np.int64), bw[j], round(n_imp[j]), self.gid)

    # --- metrics of one replicate: the definitions of verification.py on weighted counts
    def tar(self, rep: _Replicate, fars: list[Fraction]) -> list[tuple[float, int]]:
        out = []
        for f in fars:
            k = math.floor(f * rep.N)
            if k < 1 or rep.G == 0:
                out.append((math.nan, k))
                continue
            v = rep.kth_largest(k + 1)
            gi = int(np.searchsorted(self.gs, v, side="right"))
            out.append(((rep.G - int(rep.cw[gi])) / rep.G, k))
        return out

    def _points(self, rep: _Replicate):
        """Real candidates (distinct genuine values of positive weight) + inf: (t, n_miss, store count, below, and the
        bounds (lo, hi, exact) on the weighted impostor count at each), shared by the EER and every minDCF."""
        real = np.append(np.flatnonzero(rep.cw[self.g_right] > rep.cw[self.g_left]), self.g_left.size)  # and +inf
        t, g_left, i, below, k = (x.take(real) for x in self._pt)
        return (t, rep.cw.take(g_left), i, below, *rep.bounds(i, below, k))

    def min_dcf(self, rep: _Replicate, p: float, cm: float, cf: float, pts) -> tuple[float, float, int]:
        t, n_miss, i, below, lo, hi, exact = pts
        cost_lo = dcf_cost(n_miss, lo, rep.G, rep.N, p, cm, cf)
        cost_hi = dcf_cost(n_miss, hi, rep.G, rep.N, p, cm, cf)
        need = ~exact & (cost_lo <= cost_hi.min())
        if np.any(need & below):
            raise StoreTooSmall
        n_fa = lo.copy()
        n_fa[need] = rep.nfa(i[need])
        ok = exact | need
        cost = dcf_cost(n_miss, n_fa, rep.G, rep.N, p, cm, cf)
        best = cost[ok].min()
        j = int(np.argmax(ok & (cost == best)))
        norm = min(cm * p, cf * (1.0 - p))
        return float(best / norm), float(t[j]), int(n_fa[j])

    def eer(self, rep: _Replicate, pts) -> tuple[float, float, int]:
        t, n_miss, i, below, lo, hi, exact = pts
        G, N = rep.G, rep.N
        surely = n_miss * N >= hi * G  # FRR ≥ FAR for certain
        maybe = n_miss * N >= lo * G
        first_maybe = int(np.argmax(maybe))
        last = int(np.argmax(surely))  # +inf is always sure
        idx = np.arange(first_maybe, last)
        idx = idx[~exact[idx]]
        n_fa = lo.copy()
        if idx.size:
            if np.any(below[idx]):
                raise StoreTooSmall
            n_fa[idx] = rep.nfa(i[idx])
        ok = n_miss * N >= n_fa * G
        ok[last:] = True
        ok[:first_maybe] = False
        j = int(np.argmax(ok))
        if j == 0:  # every impostor below the lowest genuine score: EER 0 at the first point
            return 0.0, float(t[0]), int(n_fa[0])
        if below[j - 1]:
            raise StoreTooSmall
        i_hi, i_lo = int(i[j]), int(i[j - 1])  # store elements ≥ u* and ≥ u'
        nfa_hi = int(rep.nfa(np.array([i_hi]))[0]) if t[j] != math.inf else 0
        s = self.st.s[i_hi:i_lo]
        w = rep.c[self.st.a[i_hi:i_lo]] * rep.c[self.st.b[i_hi:i_lo]]
        cum = nfa_hi + np.cumsum(w)
        pos = w > 0
        s, cum = s[pos], cum[pos]
        last_of_value = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, bool)
        vals, nfa_vals = s[last_of_value][::-1], cum[last_of_value][::-1]  # ascending values, count ≥ value
        nfa_lo = int(rep.nfa(np.array([i_lo]))[0])
        if vals.size and vals[0] == t[j - 1]:
            tt, ff = vals, nfa_vals
        else:
            tt, ff = np.r_[t[j - 1], vals], np.r_[nfa_lo, nfa_vals]
        tt = np.r_[tt, t[j]]
        ff = np.r_[ff, nfa_hi].astype(np.int64)
        nm = rep.cw[np.searchsorted(self.gs, tt, side="left")]
        value, thr = _eer_from_points(tt, nm, ff, G, N)
        k = int(np.searchsorted(tt, thr, side="left"))
        return value, thr, int(ff[min(k, ff.size - 1)])

    def run(self, cs: np.ndarray, fars: list[float], ps: list[float], cm: float, cf: float) -> dict:
        """Per-replicate values {key: (R,) float64} and the impostor counts {key: (R,) int64}."""
        fr = [Fraction(repr(float(f))) for f in fars]
        keys = [_tar_key(f) for f in fars] + ["eer"] + [_dcf_key(p) for p in ps]
        vals = {k: np.full(cs.shape[0], math.nan) for k in keys}
        imps = {k: np.zeros(cs.shape[0], dtype=np.int64) for k in keys}
        for r, rep in enumerate(self.replicates(cs)):
            if rep.G == 0 or rep.N == 0:
                continue
            for f, (v, k) in zip(fars, self.tar(rep, fr)):
                vals[_tar_key(f)][r], imps[_tar_key(f)][r] = v, k
            pts = self._points(rep)
            vals["eer"][r], _, imps["eer"][r] = self.eer(rep, pts)
            for p in ps:
                vals[_dcf_key(p)][r], _, imps[_dcf_key(p)][r] = self.min_dcf(rep, p, cm, cf, pts)
        return {"values": vals, "impostors": imps}


# ----------------------------------------------------------------------------------------------------------- public
def _summarize(point: dict, reps: dict, level: float) -> dict[str, Interval]:
    a = (1.0 - level) / 2
    out = {}
    for key, v in reps["values"].items():
        ok = v[~np.isnan(v)]
        lo, hi = (np.quantile(ok, [a, 1.0 - a]).tolist()) if ok.size else (math.nan, math.nan)
        out[key] = Interval(
            key, float(point["values"][key][0]), float(lo), float(hi), level, int(point["impostors"][key][0]), v
        )
    return out


def _identity_index(ids: np.ndarray, *names: str) -> tuple[np.ndarray, list[np.ndarray]]:
    identities, inv = np.unique(np.concatenate(ids), return_inverse=True)
    out, i0 = [], 0
    for x in ids:
        out.append(inv[i0 : i0 + x.size].reshape(-1))
        i0 += x.size
    return identities, out


def _as_ids(x: object, name: str, size: int, kind: str) -> np.ndarray:
    try:
        a = np.asarray(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of identity names or integers") from None
    if a.ndim != 1 or a.size != size:
        raise ValueError(f"{name} must be 1-D with one identity per {kind} score ({size}), got shape {a.shape}")
    if a.dtype.kind not in "iuUSO":
        raise ValueError(f"{name} must hold identity names (str) or integer labels, got dtype {a.dtype}")
    return a.astype(str) if a.dtype.kind in "USO" else a.astype(np.int64)


def _check_rates(far: object, p_targets: object, c_miss: object, c_fa: object):
    fars, _ = check_fars(far)
    if isinstance(p_targets, (str, bytes)):
        raise ValueError(f"p_targets must be a sequence of rates in (0, 1), got the string {p_targets!r}")
    try:
        ps = [check_rate(p, "p_target") for p in p_targets]
    except TypeError:
        raise ValueError(f"p_targets must be a sequence of rates in (0, 1), got {p_targets!r}") from None
    return fars, ps, check_cost(c_miss, "c_miss"), check_cost(c_fa, "c_fa")


def _result(engine: _Engine, identities, fars, ps, cm, cf, replicates, level, seed, n_gen, n_imp) -> BootstrapResult:
    n = identities.size
    point = engine.run(np.ones((1, n), dtype=np.int64), fars, ps, cm, cf)
    reps = engine.run(subject_multiplicities(n, replicates, seed), fars, ps, cm, cf)
    return BootstrapResult(
        _summarize(point, reps, level), tuple(fars), tuple(ps), replicates, level, seed, identities, n_gen, n_imp
    )


def bootstrap_scores(
    genuine: object,
    genuine_ids: object,
    impostor: object,
    impostor_ids: tuple[object, object],
    far: float | Sequence[float] = (1e-3, 1e-2),
    p_targets: Sequence[float] = (0.01, 0.05),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Subject-level bootstrap intervals of TAR@FAR, EER and minDCF from scored pairs whose sides name identities.

    ``genuine_ids[k]`` is the identity of genuine pair k; ``impostor_ids = (a, b)`` the two (different) identities
    of each impostor pair (names or integers). Replicate r draws c ~ Multinomial(n, 1/n) over the sorted identity
    set (:func:`subject_multiplicities`); a genuine pair of i counts c_i times, an impostor pair of i ≠ j counts
    c_i·c_j times; each metric is then exactly the verification.py value on the scores repeated by their counts.
    Interval: the percentiles (1 ∓ level)/2 of the replicates (percentile bootstrap; default 95%, 1000 replicates,
    seed 0). Cost: O(R·(G + P)) plus a few block scans per replicate (G genuine, P identity pairs).

    >>> rng = np.random.default_rng(0)
    >>> ids = np.repeat(np.arange(20), 3)
    >>> a, b = rng.integers(0, 20, 400), rng.integers(0, 20, 400)
    >>> a, b = a[a != b], b[a != b]
    >>> res = bootstrap_scores(rng.normal(2, 1, 60), ids, rng.normal(0, 1, a.size), (a, b), replicates=200)
    >>> res.eer.low <= res.eer.value <= res.eer.high, res.eer.replicates.shape
    (True, (200,))
    """
    fars, ps, cm, cf = _check_rates(far, p_targets, c_miss, c_fa)
    replicates, seed, level = _check_draw_args(replicates, seed, level)
    g = as_scores(genuine, "genuine")
    imp = as_scores(impostor, "impostor")
    if not isinstance(impostor_ids, (tuple, list)) or len(impostor_ids) != 2:
        raise ValueError("impostor_ids must be a pair (a, b) of identity arrays, one entry per impostor score each")
    gid = _as_ids(genuine_ids, "genuine_ids", g.size, "genuine")
    ia = _as_ids(impostor_ids[0], "impostor_ids[0]", imp.size, "impostor")
    ib = _as_ids(impostor_ids[1], "impostor_ids[1]", imp.size, "impostor")
    if gid.dtype.kind != ia.dtype.kind or ia.dtype.kind != ib.dtype.kind:
        raise ValueError("genuine_ids and impostor_ids must name identities the same way (all str or all integers)")
    same = np.flatnonzero(ia == ib)
    if same.size:
        raise ValueError(
            f"impostor pair {int(same[0])} (and {same.size - 1} more) has the same identity {ia[same[0]].item()!r} on "
            "both sides; an impostor pair must join two different identities (check the labels)"
        )
    identities, (gi, ai, bi) = _identity_index([gid, ia, ib])
    store = _Store(imp, ai, bi, identities.size, complete=True, blocks=256)
    engine = _Engine(g, gi, store, identities.size)
    return _result(engine, identities, fars, ps, cm, cf, replicates, level, seed, g.size, imp.size)


def paired_difference(system: BootstrapResult, baseline: BootstrapResult, level: float | None = None) -> dict:
    """Paired bootstrap of system − baseline per metric, from two results drawn with the same multiplicities.

    Both must come from the same seed, replicates and identity set (so replicate r resamples the same identities in
    both); the difference's replicates are system.replicates − baseline.replicates and its interval their
    percentiles at ``level`` (default: the results' level). Returns {metric: :class:`Interval`} (``impostors`` None).

    >>> rng = np.random.default_rng(1)
    >>> ids = np.repeat(np.arange(10), 4)
    >>> a, b = np.divmod(np.arange(100), 10)
    >>> a, b = a[a != b], b[a != b]
    >>> g, i = rng.normal(2, 1, 40), rng.normal(0, 1, a.size)
    >>> r = bootstrap_scores(g, ids, i, (a, b), replicates=50)
    >>> paired_difference(r, r)["eer"].high
    0.0
    """
    for x, name in ((system, "system"), (baseline, "baseline")):
        if not isinstance(x, BootstrapResult):
            raise ValueError(f"{name} must be a BootstrapResult, got {type(x).__name__}")
    if system.seed != baseline.seed or system.replicates != baseline.replicates:
        raise ValueError(
            f"the results were drawn differently (seed {system.seed} vs {baseline.seed}, replicates "
            f"{system.replicates} vs {baseline.replicates}); bootstrap both with the same seed and replicates"
        )
    if system.identities.shape != baseline.identities.shape or not np.array_equal(
        system.identities, baseline.identities
    ):
        raise ValueError(
            "the results resample different identity sets; a paired comparison needs both systems scored on the "
            "same test identities"
        )
    lv = system.level if level is None else _check_draw_args(1, 0, level)[2]
    a = (1.0 - lv) / 2
    out = {}
    for key, m in system.metrics.items():
        if key not in baseline.metrics:
            continue
        d = m.replicates - baseline.metrics[key].replicates
        ok = d[~np.isnan(d)]
        lo, hi = np.quantile(ok, [a, 1.0 - a]).tolist() if ok.size else (math.nan, math.nan)
        out[key] = Interval(key, m.value - baseline.metrics[key].value, float(lo), float(hi), lv, None, d)
    return out


def _brute_force_metrics(g, g_ids, imp, a, b, c, fars, ps, cm=1.0, cf=1.0) -> dict:
    """Reference for tests and the benchmark: the exact metrics of the scores repeated c_i / c_i·c_j times."""
    gw = np.repeat(g, c[g_ids])
    iw = np.repeat(imp, c[a] * c[b])
    out = {}
    for f, t in zip(fars, tar_at_far(gw, iw, list(fars))):
        out[_tar_key(f)] = t.tar if t.measurable else math.nan
    out["eer"] = eer(gw, iw).eer
    for p in ps:
        out[_dcf_key(p)] = min_dcf(gw, iw, p, cm, cf).min_dcf
    return out
