"""A reduced, exact representation of a very large set of impostor scores (docs/evaluation.md §Speed).

An all-pairs evaluation of 13k embeddings has ~87M impostor pairs; the metrics do not need them all:

* TAR@FAR needs only the k+1 largest impostors (k = ⌊f·N⌋), kept exactly (``top``);
* EER and minDCF need #{impostor ≥ t} at a few thresholds. A fine histogram gives these counts exactly at bin
  boundaries; a second pass over the scores then keeps the exact values of only the bins where the EER crossing or a
  minDCF candidate can lie, so the result equals the full-array value;
* AUC is accumulated exactly in the second pass (pairs in bins without genuine scores are counted per bin).

When the genuine scores are known first (:meth:`SummaryBuilder.prepare`, as in the all-pairs protocol), one pass
usually suffices: the counting is done by :mod:`veriloss.metrics.cells` (bins split at the genuine values, predicted
bins kept exactly); a missed prediction costs the usual second pass, never exactness.

The bins are those of :mod:`veriloss.metrics.bins` (float32 bit patterns: ordered intervals, exact "above a bin"
counts, no sort).

Usage (two passes over the same impostor scores, in any blocks and order)::

    b = SummaryBuilder(top=k_max + 1)
    for block in blocks(): b.add(block)            # pass 1: histogram + top
    b.plan(genuine, p_targets=(0.01, 0.05))        # decide which bins to refine
    for block in blocks(): b.refine(block)         # pass 2: exact values there + AUC counts
    summary = b.build()                            # feed to eer / min_dcf / tar_at_far / auc / roc

or, with the genuine scores first (one pass, unless a prediction missed)::

    b = SummaryBuilder(top=k_max + 1)
    b.prepare(genuine, sample=rows, p_targets=(0.01, 0.05), n=n_impostor)
    for block in blocks(): b.add(block)
    b.plan(genuine, p_targets=(0.01, 0.05))
    if b.needs_second_pass:
        for block in blocks(): b.refine(block)
    summary = b.build()
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .._checks import check_int, validating
from ._scores import CHUNK, TopAccumulator, as_scores, check_cost, check_rate, dcf_cost, distinct_sorted, suffix_sums
from .bins import (
    FEW_RANGES,
    MANTISSA_BITS,
    bin_index,
    bin_low_edge,
    bin_runs,
    float32_keys,
    in_ranges,
    key_values,
    mantissa_shift,
    n_bins,
)
from .cells import FINE_SHIFT, SLOT_CHUNK, CellCounter, predict_bins

__all__ = ["ImpostorSummary", "SummaryBuilder", "summarize"]

_TOP_KEEP = 1 << 22  # keep the top scores as keys (one pass) when there are at most this many


def _genuine_fingerprint(gs: np.ndarray) -> tuple[int, float]:
    return int(gs.size), float(np.sum(gs, dtype=np.float64))


@dataclass(frozen=True, eq=False)
class ImpostorSummary:
    """Impostor scores reduced to a histogram, their exact top values and exact values in a few refined bins.

    Build it with :class:`SummaryBuilder` (or :func:`summarize`). ``n`` is the number of impostor scores.
    """

    n: int
    shift: int  # 23 − mantissa bits of the bin function
    counts: np.ndarray  # int64 (bins,)
    top: np.ndarray  # float64, the largest impostor scores in decreasing order
    refined_bins: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    refined_values: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))  # ascending
    auc_state: tuple | None = None  # (genuine fingerprint, Σ over impostors of #g>x + #g≥x)

    @property
    def bins(self) -> int:
        return int(self.counts.size)

    # ------------------------------------------------------------------ derived tables
    def bin_of(self, x: np.ndarray) -> np.ndarray:
        """Bin index of each score (the same function as for the impostors)."""
        return bin_index(np.asarray(x), self.shift).astype(np.int64)

    @functools.cached_property
    def _impostor_bins(self) -> tuple[np.ndarray, np.ndarray]:
        """(the bins holding an impostor score, ascending; above[j] = #{impostor with bin ≥ bins[j]}, one longer):
        made once per summary, the size of the occupied bins, not of the whole histogram."""
        ib = np.flatnonzero(self.counts)
        return ib, suffix_sums(self.counts[ib])

    def _ge(self, b: np.ndarray | int) -> np.ndarray:
        """#{impostor with bin ≥ b} for bins b in [0, bins]: binary searches in the occupied bins, or for many
        queries at once (over bins/64) a lookup in the whole table, made once."""
        if np.size(b) > self.bins >> 6:
            return self._ge_table[b]
        ib, above = self._impostor_bins
        return above[np.searchsorted(ib, b, side="left")]

    @functools.cached_property
    def _ge_table(self) -> np.ndarray:
        return suffix_sums(self.counts)

    def _genuine_tables(self, gs: np.ndarray) -> dict:
        """The bins of the sorted genuine scores ``gs`` (ascending, so #{genuine with bin < b} is a binary search),
        made once for the last ``gs`` seen (the metrics of one evaluation all ask for the same genuine scores; an
        equal copy is kept to recognise them)."""
        t = self.__dict__.get("_gtables")
        if t is None or t["gs"].shape != gs.shape or t["gs"].dtype != gs.dtype or not np.array_equal(t["gs"], gs):
            t = {"gs": gs.copy(), "gb": self.bin_of(gs)}
            self.__dict__["_gtables"] = t  # (a frozen dataclass: a cache, as functools.cached_property writes it)
        return t

    def _lt(self, gs: np.ndarray, b: np.ndarray | int) -> np.ndarray:
        """#{genuine with bin < b}."""
        return np.searchsorted(self._genuine_tables(gs)["gb"], b, side="left")

    def _occupied(self, gs: np.ndarray) -> np.ndarray:
        """The bins holding a genuine or an impostor score, ascending."""
        t = self._genuine_tables(gs)
        if "occ" not in t:
            gb, ib = t["gb"], self._impostor_bins[0]
            if gb.size + ib.size > self.bins >> 6:  # many: mark them in the whole histogram
                mark = self.counts > 0
                mark[gb] = True
                t["occ"] = np.flatnonzero(mark)
            else:
                t["occ"] = np.union1d(ib, gb[np.flatnonzero(np.diff(gb, prepend=-1))])
        return t["occ"]

    def _refined_end(self) -> np.ndarray:
        """End offset in ``refined_values`` of each refined bin."""
        return np.cumsum(self.counts[self.refined_bins]).astype(np.int64)

    # ------------------------------------------------------------------ queries used by the metrics
    def nfa_bounds(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds (lo, hi) on #{impostor ≥ t} for thresholds t; exact (lo = hi) where t's bin is refined or empty."""
        t = np.asarray(t, dtype=np.float64)
        b = self.bin_of(t)
        lo, hi = self._ge(b + 1), self._ge(b)
        if self.refined_bins.size:
            slot = np.minimum(np.searchsorted(self.refined_bins, b), self.refined_bins.size - 1)
            hit = self.refined_bins[slot] == b
            end = self._refined_end()[slot[hit]]
            exact = lo[hit] + end - np.searchsorted(self.refined_values, t[hit], side="left")
            lo[hit] = exact
            hi[hit] = exact
        return lo, hi

    def _refined(self, b: int) -> np.ndarray:
        i = int(np.searchsorted(self.refined_bins, b))
        if i >= self.refined_bins.size or self.refined_bins[i] != b:
            if self.counts[b] == 0:
                return np.empty(0, dtype=np.float64)
            raise ValueError(
                "the ImpostorSummary was not refined for the EER of these genuine scores; "
                "build it with these genuine scores (SummaryBuilder.plan)"
            )
        end = self._refined_end()
        return self.refined_values[end[i] - self.counts[b] : end[i]]

    def eer_bracket(self, gs: np.ndarray) -> tuple[int, int | None]:
        """(b', b*): the EER crossing lies between the operating point at the lowest score of occupied bin b' and the
        one at the lowest score of the next occupied bin b* (None = reject everything)."""
        occ = self._occupied(gs)
        n_miss = np.append(self._lt(gs, occ), gs.size)
        n_fa = np.append(self._ge(occ), 0)
        j = int(np.argmax(n_miss * self.n >= n_fa * gs.size))
        return int(occ[j - 1]), (int(occ[j]) if j < occ.size else None)

    def eer_points(self, gs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The consecutive operating points around the EER crossing, with exact counts (thresholds, n_miss, n_fa)."""
        b_prev, b_star = self.eer_bracket(gs)
        lo, hi = self._lt(gs, [b_prev, b_prev + 1])
        t = np.union1d(gs[lo:hi].astype(np.float64), self._refined(b_prev))
        if b_star is None:
            t_star = math.inf
        else:
            at = int(self._lt(gs, b_star))
            first = list(self._refined(b_star)[:1]) + list(gs[at : at + 1].astype(np.float64))
            t_star = min(first)
        n_fa = np.append(self.nfa_bounds(t)[0], self._ge(b_star) if b_star is not None else 0)
        t = np.append(t, t_star)
        return t, np.searchsorted(gs, t, side="left"), n_fa

    def dcf_bins(self, gs: np.ndarray, p_target: float, c_miss: float, c_fa: float) -> np.ndarray:
        """Bins whose exact values are needed for minDCF: those where a candidate threshold (a genuine score) could
        reach the minimum given only the histogram (its lower-bound cost ≤ the best upper-bound cost)."""
        _, n_miss = distinct_sorted(gs)
        b = self._genuine_tables(gs)["gb"][n_miss]
        cost_lo = dcf_cost(n_miss, self._ge(b + 1), gs.size, self.n, p_target, c_miss, c_fa)
        cost_hi = dcf_cost(n_miss, self._ge(b), gs.size, self.n, p_target, c_miss, c_fa)
        reject_all = dcf_cost(np.array([gs.size]), np.array([0]), gs.size, self.n, p_target, c_miss, c_fa)[0]
        bound = min(float(cost_hi.min()), float(reject_all))
        need = b[(cost_lo <= bound) & (self.counts[b] > 0)]
        return np.unique(need)

    def auc_numerator(self, gs: np.ndarray) -> int:
        """Σ over impostors x of #{genuine > x} + #{genuine ≥ x} (= 2·AUC·G·I), as accumulated in the second pass."""
        if self.auc_state is None or self.auc_state[0] != _genuine_fingerprint(gs):
            raise ValueError(
                "the ImpostorSummary has no AUC for these genuine scores; pass them to SummaryBuilder.plan(auc=True)"
            )
        return int(self.auc_state[1])

    def roc_cuts(self, gs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact ROC points at each occupied bin's lower boundary, decreasing: (bin's lowest float, #gen ≥, #imp ≥).

        The point of bin b accepts the scores whose bin is ≥ b, i.e. score ≥ the lowest score present in bin b.
        """
        occ = self._occupied(gs)[::-1]
        return bin_low_edge(occ, self.shift), gs.size - self._lt(gs, occ), self._ge(occ)


class SummaryBuilder:
    """Two-pass construction of an :class:`ImpostorSummary` (see the module docstring).

    Args:
        top: how many of the largest impostor scores to keep exactly (TAR@FAR = f needs ⌊f·N⌋ + 1).
        mantissa_bits: histogram resolution, 0–13 mantissa bits per bin (11: 2^20 bins, 2^-11 of an octave each);
            finer bins mean fewer exact values kept in the second pass, coarser ones a smaller histogram.
    """

    def __init__(self, top: int = 0, mantissa_bits: int = MANTISSA_BITS):
        top = check_int(top, "top", 0)
        mantissa_bits = check_int(mantissa_bits, "mantissa_bits", 0, 13)
        self.shift = mantissa_shift(mantissa_bits)
        self.bins = n_bins(self.shift)
        self._counts = np.zeros(self.bins, dtype=np.int64)
        self._top = TopAccumulator(int(top))
        self._n = 0
        self._planned: ImpostorSummary | None = None
        self._refine_mask: np.ndarray | None = None
        self._refine_runs: list[tuple[int, int]] = []  # the bins to refine as half-open ranges [first, end)
        self._gocc_mask: np.ndarray | None = None
        self._gs: np.ndarray | None = None
        self._gfp: tuple[int, float] | None = None
        self._n2 = 0
        self._vals: list[np.ndarray] = []
        self._auc_num = 0
        self._auc = False
        self._rbins = np.empty(0, dtype=np.int64)
        self._cells: CellCounter | None = None
        self._top_bin: int | None = None  # one-pass mode: the top scores are the kept keys from this bin up
        self._top_values: np.ndarray | None = None
        self._top_again = False  # ... unless fewer than top of them were kept: then a second pass

    @staticmethod
    def _flat(scores: object) -> np.ndarray:
        if isinstance(scores, torch.Tensor):
            t = scores.detach().cpu()
            a = (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).numpy()
        else:
            a = np.asarray(scores)
        if a.dtype.kind != "f":
            raise ValueError(f"impostor scores must be floating point, got dtype {a.dtype}")
        a = a.reshape(-1)
        if a.size and validating() and not (math.isfinite(float(a.min())) and math.isfinite(float(a.max()))):
            bad = int(np.count_nonzero(~np.isfinite(a)))
            raise ValueError(f"impostor scores contain {bad} NaN/infinite value(s); scores must be finite")
        return a

    def prepare(
        self,
        genuine: object,
        sample: Sequence[object] | None = None,
        p_targets: Sequence[float] = (0.01,),
        c_miss: float = 1.0,
        c_fa: float = 1.0,
        eer: bool = True,
        n: int | None = None,
        max_cells: int = 1 << 21,
        capture: float = 0.03,
    ) -> None:
        """One-pass mode: give the genuine scores before any add(), so that pass 1 also counts AUC exactly and keeps
        the exact values of the bins where EER and minDCF(p) will probably need them (predicted from ``sample``, a
        few groups of impostor scores such as rows of the score matrix, holding about a ``capture`` fraction of the
        impostors). Given ``n``, the number of impostor scores to come, the exact top scores are kept the same way
        (the bins above a predicted threshold) instead of a running selection. plan() then needs a second pass only
        when a prediction missed. Impostor blocks must be float32 (float16/bfloat16, or float64 holding float32
        values); the genuine scores must be float32 values. Memory: about 30 MB of bin tables and counters, 20 bytes
        per cell of the bins holding several genuine values (at most ``max_cells`` cells) and 4 bytes per kept score
        (a ``capture`` fraction, plus about the top).
        """
        if self._n or self._planned is not None or self._cells is not None:
            raise RuntimeError("prepare() comes once, before add()")
        max_cells = check_int(max_cells, "max_cells", 1, 1 << 23)
        gs = np.sort(as_scores(genuine, "genuine"))
        g32 = gs.astype(np.float32)
        if gs.dtype != np.float32 and not np.array_equal(g32.astype(gs.dtype), gs):
            raise ValueError("prepare() needs genuine scores that are float32 values; use plan() alone for others")
        p_targets = [check_rate(p, "p_target") for p in p_targets]
        c_miss, c_fa = check_cost(c_miss, "c_miss"), check_cost(c_fa, "c_fa")
        s = min(self.shift, FINE_SHIFT)
        bins, self._top_bin = np.empty(0, dtype=np.int64), None
        if sample is not None:
            top = self._top.m / n if n and self._top.m <= min(_TOP_KEEP, 0.05 * n) else 0.0
            bins, self._top_bin = predict_bins(g32, sample, s, self.shift, p_targets, c_miss, c_fa, eer, capture, top)
        keys = float32_keys(g32)  # sorted, as g32
        first = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1))
        gcount = np.diff(np.append(first, keys.size))
        self._cells = CellCounter(keys[first], gcount, bins, s, max_cells, self._top_bin)
        self._gfp = _genuine_fingerprint(gs)

    def add(self, scores: object) -> None:
        """Pass 1: count a block of impostor scores (any shape) into the histogram and the exact top. The scores must
        be finite: checked by a scan of each block, except inside :func:`~veriloss.heads.unchecked` (a caller whose
        scores are finite by construction, such as :func:`~veriloss.protocols.all_pairs`)."""
        if self._planned is not None:
            raise RuntimeError("add() after plan(): the first pass is closed; use refine() for the second pass")
        x = self._flat(scores)
        if self._cells is not None:
            if x.dtype != np.float32:
                x32 = x.astype(np.float32)
                if not np.array_equal(x32.astype(x.dtype), x):
                    raise ValueError("after prepare(), impostor scores must be float32 values")
                x = x32
            for i in range(0, x.size, SLOT_CHUNK):
                c = x[i : i + SLOT_CHUNK]
                self._cells.add(c)
                if self._top_bin is None:
                    self._top.add(c)
            self._n += x.size
            return
        for i in range(0, x.size, 8 * CHUNK):
            c = x[i : i + 8 * CHUNK]
            self._add_binned(c, bin_index(c, self.shift))

    def _add_binned(self, x: np.ndarray, b: np.ndarray) -> None:
        if x.size < self.bins // 64:  # small block: no full-length bincount
            np.add.at(self._counts, b, 1)
        else:
            self._counts += torch.bincount(torch.from_numpy(b), minlength=self.bins).numpy()
        self._top.add(x)
        self._n += x.size

    def plan(
        self,
        genuine: object,
        p_targets: Sequence[float] = (0.01,),
        c_miss: float = 1.0,
        c_fa: float = 1.0,
        auc: bool = True,
        eer: bool = True,
    ) -> None:
        """Close pass 1 and choose the bins to refine for the EER (if ``eer``) and minDCF(p) of these genuine
        scores, and whether to count AUC pairs in pass 2."""
        if isinstance(p_targets, (str, bytes)):
            raise ValueError(f"p_targets must be a sequence of rates in (0, 1), got the string {p_targets!r}")
        p_targets = [check_rate(p, "p_target") for p in p_targets]
        c_miss, c_fa = check_cost(c_miss, "c_miss"), check_cost(c_fa, "c_fa")
        if self._n == 0:
            raise ValueError("no impostor scores were added; a verification metric needs impostor scores")
        gs = np.sort(as_scores(genuine, "genuine"))
        kept = None
        if self._cells is not None:
            if _genuine_fingerprint(gs) != self._gfp:
                raise ValueError("plan() must be given the genuine scores that prepare() was given")
            self._counts, auc_num, kept = self._cells.finish(self.shift)
            if auc:
                self._auc, self._auc_num = True, auc_num
            if self._top_bin is not None:
                m, above = min(self._top.m, self._n), kept[1]  # the keys from the top bin up, ascending
                if above.size >= m:
                    self._top_values = key_values(above[above.size - m :])[::-1].copy()
                else:
                    self._top_again = True
        pre = ImpostorSummary(self._n, self.shift, self._counts, np.empty(0))  # (build() hands out a copy)
        need = [np.empty(0, dtype=np.int64)]
        if eer:
            need.append(np.array([b for b in pre.eer_bracket(gs) if b is not None], dtype=np.int64))
        need += [pre.dcf_bins(gs, float(p), float(c_miss), float(c_fa)) for p in p_targets]
        need_bins = np.unique(np.concatenate(need))
        need_bins = need_bins[pre.counts[need_bins] > 0]
        self._planned = pre
        self._rbins = need_bins
        if self._cells is not None:  # bins kept exactly in pass 1 need no second pass
            known, values = self._cells.values(need_bins, self.shift, kept)
            if values.size:
                self._vals.append(values)
            need_bins = need_bins[~known]
            self._cells = None  # frees the counter
        self._refine_mask = np.zeros(self.bins, dtype=bool)
        self._refine_mask[need_bins] = True
        self._refine_runs = [(first, last + 1) for first, last in bin_runs(need_bins)]
        if auc and not self._auc:
            gb = pre._genuine_tables(gs)["gb"]
            self._gocc_mask = np.zeros(self.bins, dtype=bool)
            self._gocc_mask[gb] = True
            ib = pre._impostor_bins[0]
            free = ib[~self._gocc_mask[ib]]  # impostor bins without a genuine score: every pair there is counted
            g_gt = gs.size - np.searchsorted(gb, free, side="right")  # #{genuine with bin > b}
            self._auc_num = int(np.sum(2 * g_gt * pre.counts[free], dtype=np.int64))
            self._gs = gs if gs.dtype == np.float32 else gs.astype(np.float64)
            self._gfp = _genuine_fingerprint(gs)
            self._auc = True

    @property
    def needs_second_pass(self) -> bool:
        """True when refine() must see the scores again (some bin to refine, AUC requested, or the top to select)."""
        if self._planned is None:
            raise RuntimeError("call plan() first")
        return bool(self._refine_runs) or self._gs is not None or self._top_again

    def refine(self, scores: object) -> None:
        """Pass 2: keep the exact scores of the refined bins and count AUC pairs; same scores as pass 1."""
        if self._planned is None:
            raise RuntimeError("call plan() before refine()")
        x = self._flat(scores)
        for i in range(0, x.size, 8 * CHUNK):
            c = x[i : i + 8 * CHUNK]
            self._refine_binned(c, bin_index(c, self.shift))

    def _refine_binned(self, x: np.ndarray, b: np.ndarray) -> None:
        if self._top_again:
            self._top.add(x)
        if self._refine_runs:
            if len(self._refine_runs) <= FEW_RANGES:
                sel = in_ranges(b, self._refine_runs)
            else:
                sel = self._refine_mask[b]
            vals = x[sel]
            if vals.size:
                self._vals.append(vals.astype(np.float64))
        if self._gs is not None:
            self._auc_num += self._auc_pairs(x[self._gocc_mask[b]])
        self._n2 += x.size

    def _auc_pairs(self, x: np.ndarray) -> int:
        """Σ over x of #{genuine > x} + #{genuine ≥ x} = Σ (G − lt) + (G − le); le − lt (ties) only where x is a
        genuine value, so one binary search per score."""
        gs = self._gs
        if x.dtype != gs.dtype:  # compare in a dtype that holds both exactly
            gs = self._gs = gs.astype(np.float64)
            x = x.astype(np.float64)
        n_g = gs.size
        lt = np.searchsorted(gs, x)
        tied = gs[np.minimum(lt, n_g - 1)] == x
        ties = 0
        if tied.any():
            ties = int((np.searchsorted(gs, x[tied], side="right") - lt[tied]).sum())
        return 2 * n_g * x.size - 2 * int(lt.sum(dtype=np.int64)) - ties

    def build(self) -> ImpostorSummary:
        """The summary; after plan() it requires that refine() has seen exactly the scores of pass 1."""
        if self._cells is not None:
            raise RuntimeError("after prepare(), call plan() before build()")
        counts = self._counts.copy()
        top = self._top.result() if self._top_values is None else self._top_values
        if self._planned is None:
            return ImpostorSummary(self._n, self.shift, counts, top)
        if self.needs_second_pass and self._n2 != self._n:
            raise ValueError(
                f"the second pass saw {self._n2} impostor scores but the first saw {self._n}; "
                "refine() must be given exactly the same scores as add()"
            )
        values = np.sort(np.concatenate(self._vals)) if self._vals else np.empty(0, dtype=np.float64)
        rbins = self._rbins
        if values.size != int(counts[rbins].sum()):
            raise ValueError("the second pass saw different scores than the first (refined bin counts differ)")
        auc_state = (self._gfp, self._auc_num) if self._auc else None
        out = ImpostorSummary(self._n, self.shift, counts, top, rbins, values, auc_state)
        for cached in ("_impostor_bins", "_ge_table", "_gtables"):  # tables of the same counts, made by plan()
            if cached in self._planned.__dict__:
                out.__dict__[cached] = self._planned.__dict__[cached]
        return out


def summarize(
    genuine: object,
    impostor: object,
    top: int = 0,
    mantissa_bits: int = MANTISSA_BITS,
    p_targets: Sequence[float] = (0.01,),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    auc: bool = True,
    eer: bool = True,
    block: int = 1 << 23,
) -> ImpostorSummary:
    """Build an ImpostorSummary from an in-memory impostor array (the two passes of :class:`SummaryBuilder` in
    blocks of ``block`` scores; the bins of pass 1 are kept for pass 2, 4 bytes per score)."""
    imp = as_scores(impostor, "impostor")
    b = SummaryBuilder(top=top, mantissa_bits=mantissa_bits)
    blocks = [imp[i : i + block] for i in range(0, imp.size, block)]
    bins = []
    for x in blocks:
        bins.append(bin_index(x, b.shift))
        b._add_binned(x, bins[-1])
    b.plan(genuine, p_targets=p_targets, c_miss=c_miss, c_fa=c_fa, auc=auc, eer=eer)
    if b.needs_second_pass:
        for x, bx in zip(blocks, bins):
            b._refine_binned(x, bx)
    return b.build()
