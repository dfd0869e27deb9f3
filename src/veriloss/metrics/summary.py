"""A reduced, exact representation of a very large set of impostor scores (docs/evaluation.md §Speed).

An all-pairs evaluation of 13k embeddings has ~87M impostor pairs; the metrics do not need them all:

* TAR@FAR needs only the k+1 largest impostors (k = ⌊f·N⌋), kept exactly (``top``);
* EER and minDCF need #{impostor ≥ t} at a few thresholds. A fine histogram gives these counts exactly at bin
  boundaries; a second pass over the scores then keeps the exact values of only the bins where the EER crossing or a
  minDCF candidate can lie, so the result equals the full-array value;
* AUC is accumulated exactly in the second pass (pairs in bins without genuine scores are counted per bin).

When the genuine scores are known first (:meth:`SummaryBuilder.prepare`, as in the all-pairs protocol), one pass
suffices: each bin's counts are split at its genuine value (bins with several are split in finer cells), which makes
#{impostor < g} and #{impostor ≤ g} exact for every genuine g (AUC); the exact scores of the bins that EER, minDCF
and the top will need are kept on the way, those bins being predicted from a small sample of impostor scores. A
missed prediction costs the usual second pass, never exactness.

The bins follow the float32 bit pattern: the pattern, read as a sign-magnitude integer, is monotone in the value, so
its top bits (sign, exponent and ``mantissa_bits`` mantissa bits; 11 by default, i.e. 2^20 bins, each 2^-11 of its
octave wide) give a bin that is non-decreasing in the score, for any score range and no clamping. Every score
(genuine or impostor, any dtype) goes through the same function: cast to float32 (monotone), then the bit bin. So
the bins split the real line into ordered intervals, "above a bin" counts are exact, and computing them is a few
integer operations (no sort).

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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .._checks import check_int
from ._scores import CHUNK, TopAccumulator, as_scores, check_cost, check_rate, dcf_cost

__all__ = ["ImpostorSummary", "SummaryBuilder", "summarize"]

MANTISSA_BITS = 11
_INF_BITS = 0x7F800000  # float32 +inf: the largest finite-or-infinite magnitude


def _shift(mantissa_bits: int) -> int:
    return 23 - int(mantissa_bits)


def n_bins(shift: int) -> int:
    """Number of bins for a given shift (−inf … +inf)."""
    return 2 * (_INF_BITS >> shift) + 1


def bin_index(x: np.ndarray | torch.Tensor, shift: int) -> np.ndarray:
    """Bin of each score (int32 array in [0, n_bins)), non-decreasing in the score.

    key = sign-magnitude integer of float32(x) (−0.0 and +0.0 both give 0); bin = (key >> shift) + offset. A few
    single-threaded integer passes in numpy (memory-bound; no thread contention).
    """
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    v = np.ascontiguousarray(a.reshape(-1), dtype=np.float32).view(np.int32)
    m = v >> 31  # 0 for +, −1 for −
    key = v & 0x7FFFFFFF
    key ^= m
    key -= m  # −magnitude for negative scores
    key >>= shift
    key += _INF_BITS >> shift
    return key


def bin_low_edge(b: np.ndarray, shift: int) -> np.ndarray:
    """The lowest float32 value of each bin (float64), used as the nominal threshold of a bin boundary."""
    key = (np.asarray(b, dtype=np.int64) - (_INF_BITS >> shift)) << shift  # the smallest key of the bin
    bits = np.where(key < 0, (-key) | 0x80000000, key).astype(np.uint32)
    return bits.view(np.float32).astype(np.float64)


def _keys(x: np.ndarray) -> np.ndarray:
    """Sign-magnitude integer of each float32 value (int64): monotone, −0.0 and +0.0 both 0."""
    v = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(v < 0, -(v & 0x7FFFFFFF), v)


def _key_values(k: np.ndarray) -> np.ndarray:
    """The float32 value (as float64) of each sign-magnitude key."""
    k = np.asarray(k, dtype=np.int64)
    return np.where(k < 0, (-k) | 0x80000000, k).astype(np.uint32).view(np.float32).astype(np.float64)


def _prefix_at(counts: np.ndarray, pos: np.ndarray, step: int = CHUNK) -> np.ndarray:
    """Σ counts[:p + 1] for each p in ``pos`` (int64; −1 gives 0), chunk by chunk (no full-size int64 copy)."""
    order = np.argsort(pos, kind="stable")
    ps = pos[order]
    out = np.zeros(pos.size, dtype=np.int64)
    done, total, j = 0, 0, int(np.searchsorted(ps, 0))
    while j < ps.size and done < counts.size:
        c = np.cumsum(counts[done : done + step], dtype=np.int64)
        k = int(np.searchsorted(ps, done + c.size))
        out[order[j:k]] = total + c[ps[j:k] - done]
        total += int(c[-1])
        done += c.size
        j = k
    return out


_TOP_KEEP = 1 << 22  # keep the top scores as keys (one pass) when there are at most this many
SLOT_CHUNK = 1 << 17  # scores per step of the one-pass counter: its work buffers stay in the CPU cache
_FINE_SHIFT = 12  # the counter's bins: 2^12 float32 values each (11 mantissa bits), or the summary's if finer
_SUB_BITS = 6  # a bin holding several genuine values has at most 2^6 cells (of 64 float32 values)
_FLUSH_AT = 2**31 - 1  # int32 counters are moved to int64 totals before this many more scores
_SPLIT = (1 << 13) - 1  # bits of a split value (the genuine value's low key bits; 2^12 + 1: none)
_SHARED = 1 << 14  # cell flag: it still holds two or more genuine values, keep its scores
_DENSE = -(1 << 31)  # bin flag: the bin has cells (its entry: first cell << 4 | shift of the cells)
_KEEP = 1 << 30  # bin flag: keep its scores (a predicted EER/minDCF bin)
_KEEP_SHARED = 1 << 29  # bin flag: keep its scores (several genuine values and no cells)
_FLAGS = _KEEP_SHARED  # as uint32, an entry ≥ this has a flag


class _CellCounter:
    """One-pass impostor counts with exact ranks against every genuine value (see :meth:`SummaryBuilder.prepare`).

    Keys (sign-magnitude integers of the float32 bits) fall in bins of 2^s values (s = min(shift, 12)). Each bin has
    three counters: scores below, equal to and above its genuine value, if it holds exactly one (its "split"). So a
    score costs one lookup in a bin table (small: the scores occupy few bins), a sign and one ``index_add_``. Bins
    holding several genuine values are "dense": their scores are also counted in 2^r cells (r just large enough to
    separate the values, at most 6), each split the same way (a second lookup, for those scores only). Scores of the
    predicted EER/minDCF bins, and of cells still holding two genuine values, are also kept as keys. Hence
    #{impostor < g} and #{impostor ≤ g} are exact for every genuine g (AUC), and the exact values of the kept bins
    are known (EER/minDCF without a second pass).
    """

    def __init__(self, gkeys: np.ndarray, gcount: np.ndarray, keep_bins: np.ndarray, s: int, max_cells: int):
        self.s, self.off = s, _INF_BITS >> s
        nb = 2 * self.off + 1
        low = (1 << s) - 1
        gb = (gkeys >> s) + self.off
        gl = gkeys & low
        # cell bits of a bin: enough to separate its consecutive genuine values (the bits above their highest
        # differing bit), at most _SUB_BITS, fewer if the cells would exceed max_cells
        same = gb[1:] == gb[:-1]
        need = np.zeros(gb.size, dtype=np.int64)
        need[1:][same] = s - np.floor(np.log2((gl[1:] ^ gl[:-1])[same])).astype(np.int64)
        r = np.zeros(nb, dtype=np.int64)
        np.maximum.at(r, gb, need)
        cap = min(_SUB_BITS, s)
        while cap and int(np.sum(np.left_shift(1, np.minimum(r[r > 0], cap)))) > max_cells:
            cap -= 1
        rb = np.minimum(r, cap) if cap else np.zeros_like(r)
        dense = np.flatnonzero(rb > 0)
        sizes = np.left_shift(1, rb[dense])
        first = 1 + np.cumsum(sizes) - sizes  # first cell of each dense bin (cell 0 unused)
        rsh = s - rb
        self.n_cells = int(1 + sizes.sum())
        one = np.bincount(gb, minlength=nb) == 1
        table = np.full(nb, low + 2, dtype=np.int64)  # split beyond every key: all "below"
        table[gb[one[gb]]] = gl[one[gb]]
        table[dense] = _DENSE | ((first + self.n_cells) << 4) | rsh[dense]
        several = np.bincount(gb, minlength=nb) > 1
        table[several & (rb == 0)] |= _KEEP_SHARED  # no room for cells: keep the bin's scores
        keep = np.asarray(keep_bins, dtype=np.int64)
        table[keep] |= _KEEP
        self.keep_bin = np.zeros(nb, dtype=bool)
        self.keep_bin[keep] = True
        self.table = torch.from_numpy(np.concatenate([np.zeros(nb, dtype=np.int64), table]).astype(np.int32))
        # cells of dense bins and the genuine values' cells
        self.gdense = rb[gb] > 0
        self.gcell = np.zeros(gb.size, dtype=np.int64)
        bin_first = np.zeros(nb, dtype=np.int64)
        bin_first[dense] = first
        self.gcell[self.gdense] = bin_first[gb[self.gdense]] + (gl[self.gdense] >> rsh[gb[self.gdense]])
        split = np.full(self.n_cells, low + 2, dtype=np.int64)
        cells, at, per = np.unique(self.gcell[self.gdense], return_index=True, return_counts=True)
        split[cells] = np.where(per == 1, gl[self.gdense][at], low + 2 + _SHARED)
        self.split = torch.from_numpy(np.concatenate([split, split]).astype(np.int32))  # indexed by n_cells + cell
        self.any_shared = bool(np.any(split & _SHARED))
        self.gshared = np.where(self.gdense, (split[self.gcell] & _SHARED) > 0, several[gb] & (rb[gb] == 0))
        cell_rsh = np.where(self.gdense, rsh[gb], s)
        self.glo = (gkeys >> cell_rsh) << cell_rsh  # lowest key of the genuine value's cell (or bin)
        self.gkeys, self.gcount, self.gb = gkeys, gcount, gb
        self.bin_first, self.low = bin_first, low
        self.shared_bin = several & (rb == 0)
        # three planes of counters (scores below, at, above the split), so that bins without a genuine value use one
        self.nb = nb
        self.counts = torch.zeros(3 * nb, dtype=torch.int32)
        self.cell_counts = torch.zeros(3 * self.n_cells, dtype=torch.int32)
        self.wide: list[np.ndarray | None] = [None, None]
        self.unflushed = 0
        self.kept: list[np.ndarray] = []  # keys of the flagged bins
        self.kept_cells: list[np.ndarray] = []  # keys of the shared cells
        self.dense: list[tuple[np.ndarray, np.ndarray]] = []  # scores of dense bins waiting for _add_cells
        self.n_dense = 0
        self._buf = [np.empty(SLOT_CHUNK, dtype=np.int32) for _ in range(5)]
        self._tbuf = [torch.from_numpy(b) for b in self._buf]
        self._flag = np.empty(SLOT_CHUNK, dtype=bool)
        self._ones = torch.ones(1, dtype=torch.int32).expand(2 * SLOT_CHUNK + (1 << 18))

    def _flush(self) -> None:
        """Move the int32 counters to int64 totals (before 2^31 − 1 more scores could overflow them)."""
        self._add_cells()
        for i, x in enumerate((self.counts, self.cell_counts)):
            wide = x.numpy().astype(np.int64)
            self.wide[i] = wide if self.wide[i] is None else self.wide[i] + wide
            x.zero_()
        self.unflushed = 0

    def add(self, c: np.ndarray) -> None:
        """Count one float32 chunk of at most SLOT_CHUNK scores."""
        m = c.size
        if self.unflushed + m > _FLUSH_AT:
            self._flush()
        self.unflushed += m
        v = c.view(np.int32)
        t, k, b, w, u = (x[:m] for x in self._buf)
        tb, tw = self._tbuf[2][:m], self._tbuf[3][:m]
        flag = self._flag[:m]
        np.right_shift(v, 31, out=t)
        np.bitwise_and(v, 0x7FFFFFFF, out=k)
        np.bitwise_xor(k, t, out=k)
        np.subtract(k, t, out=k)  # key
        np.right_shift(k, self.s, out=b)
        np.add(b, self.off + self.nb, out=b)  # bin + nb (the table starts with nb unused entries)
        torch.index_select(self.table, 0, tb, out=tw)  # the bin's split value or cells, and flags
        np.bitwise_and(k, self.low, out=t)  # low bits of the key
        np.bitwise_and(w, _SPLIT, out=u)
        np.subtract(t, u, out=u)
        np.sign(u, out=u)
        np.multiply(u, self.nb, out=u)
        np.add(b, u, out=b)
        self.counts.index_add_(0, tb, self._ones[:m])  # bin + nb·(1 + sign(low − split)): below, at, above
        np.greater_equal(w.view(np.uint32), _FLAGS & 0xFFFFFFFF, out=flag)  # a flag bit (the 3 top bits) set
        if np.count_nonzero(flag):  # scores of dense or kept bins
            i = np.flatnonzero(flag)
            w, k = w.take(i), k.take(i)
            dense = w < 0
            if dense.any():
                self.dense.append((k, w) if dense.all() else (k[dense], w[dense]))
                self.n_dense += self.dense[-1][0].size
                if self.n_dense >= 1 << 18:  # in batches: fewer, larger numpy calls
                    self._add_cells()
            keep = (w & (_KEEP | _KEEP_SHARED)) != 0
            if keep.any():
                self.kept.append(k[keep])

    def _add_cells(self) -> None:
        """Count the pending scores of dense bins (keys, bin table entries) in their cells."""
        if not self.dense:
            return
        k, w = (np.concatenate(x) for x in zip(*self.dense))
        self.dense, self.n_dense = [], 0
        low = k & self.low
        cell = w >> 4
        cell &= (1 << 25) - 1  # first cell of the bin, + n_cells (the split table starts with n_cells unused entries)
        np.bitwise_and(w, 15, out=w)
        np.right_shift(low, w, out=w)
        cell += w
        sp = torch.index_select(self.split, 0, torch.from_numpy(cell)).numpy()
        if self.any_shared:
            shared = sp > _SPLIT
            if shared.any():
                self.kept_cells.append(k[shared])
            np.bitwise_and(sp, _SPLIT, out=sp)
        np.subtract(low, sp, out=low)
        np.sign(low, out=low)
        low *= self.n_cells
        cell += low
        self.cell_counts.index_add_(0, torch.from_numpy(cell), self._ones[: cell.size])  # cell + n_cells·(1 + sign)

    def finish(self, shift: int) -> tuple[np.ndarray, int, np.ndarray]:
        """(the summary's histogram at ``shift``, Σ over genuine g of #{impostor < g} + #{impostor ≤ g}, the keys
        kept in the predicted bins)."""
        self._add_cells()
        wide = [
            x.numpy().astype(np.int64) + (0 if y is None else y)
            for x, y in zip((self.counts, self.cell_counts), self.wide)
        ]
        cb, cc = (x.reshape(3, -1) for x in wide)
        per_bin = self.per_bin = cb.sum(axis=0)
        d = shift - self.s
        per_bin_api = per_bin
        if d:
            first = (np.arange(n_bins(shift), dtype=np.int64) - (_INF_BITS >> shift) << d) + self.off
            per_bin_api = np.add.reduceat(per_bin, np.maximum(first, 0))
        below = np.append(0, np.cumsum(per_bin))[self.gb]  # impostors in lower bins
        lt_in, eq = cb[0, self.gb], cb[1, self.gb]
        if self.n_cells > 1:  # dense bins: the lower cells of the bin, then the cell's counters
            cell_prefix = np.append(0, np.cumsum(cc.sum(axis=0)))  # [c] = scores in cells < c
            gd, cell = self.gdense, self.gcell[self.gdense]
            below[gd] += cell_prefix[cell] - cell_prefix[self.bin_first[self.gb[gd]]]
            lt_in[gd], eq[gd] = cc[0, cell], cc[1, cell]
        kept = np.concatenate(self.kept) if self.kept else np.empty(0, dtype=np.int32)
        kept_bin = (kept >> self.s) + self.off
        shared = np.sort(np.concatenate([*self.kept_cells, kept[self.shared_bin[kept_bin]]]))
        if self.gshared.any():
            g = self.gshared
            left = np.searchsorted(shared, self.gkeys[g], side="left")
            lt_in[g] = left - np.searchsorted(shared, self.glo[g], side="left")
            eq[g] = np.searchsorted(shared, self.gkeys[g], side="right") - left
        auc_num = int(np.sum(self.gcount * (2 * (below + lt_in) + eq), dtype=np.int64))
        return per_bin_api.astype(np.int64), auc_num, kept[self.keep_bin[kept_bin]]

    def values(self, bins: np.ndarray, shift: int, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which summary bins at ``shift`` are known exactly, their sorted values as float64); after finish()."""
        d = shift - self.s
        bins = np.asarray(bins, dtype=np.int64)
        ok = np.zeros(bins.size, dtype=bool)
        for i, b in enumerate(bins):  # every bin of the counter inside it kept, or empty
            lo = max(((b - (_INF_BITS >> shift)) << d) + self.off, 0)
            inner = slice(lo, min(lo + (1 << d), self.keep_bin.size))
            ok[i] = bool(np.all(self.keep_bin[inner] | (self.per_bin[inner] == 0)))
        kb = (kept >> shift) + (_INF_BITS >> shift)
        wanted = np.zeros(n_bins(shift), dtype=bool)
        wanted[bins[ok]] = True
        return ok, _key_values(np.sort(kept[wanted[kb]]))


def _ranges(sizes: np.ndarray) -> np.ndarray:
    """0, 1, …, sizes[0] − 1, 0, 1, …, sizes[1] − 1, … (int64)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    ends = np.cumsum(sizes)
    return np.arange(ends[-1] if ends.size else 0, dtype=np.int64) - np.repeat(ends - sizes, sizes)


def _predict_bins(
    gs: np.ndarray,
    sample: Sequence[object],
    s: int,
    shift: int,
    p_targets: Sequence[float],
    c_miss: float,
    c_fa: float,
    eer: bool,
    budget: float,
    top: float = 0.0,
    z: float = 6.0,
) -> tuple[np.ndarray, int | None]:
    """Bins (of shift ``s``) where the EER and minDCF(p) refinements will probably fall, from a sample of impostors,
    and the lowest bin above which a ``top`` fraction of the impostors will surely lie (None if ``top`` is 0).

    ``sample`` is a few groups of impostor scores (e.g. rows of the score matrix); FAR is estimated from it within
    ``z`` standard errors (the spread between groups gives the design effect), FRR is exact. The bins are widened to
    whole summary bins (``shift``), nearest to each estimate first, until they hold an estimated ``budget`` fraction
    of the impostors. Only a prediction: a miss costs a second pass over the scores, never exactness.
    """
    rows = [np.asarray(r, dtype=np.float32).reshape(-1) for r in sample]
    rows = [r for r in rows if r.size]
    if not rows:
        return np.empty(0, dtype=np.int64), None
    sizes = np.array([r.size for r in rows], dtype=np.int64)
    n_s, nb = int(sizes.sum()), n_bins(s)
    kb = bin_index(np.concatenate(rows), s)
    hist = np.bincount(kb, minlength=nb)
    gcount = np.bincount(bin_index(gs, s), minlength=nb)
    occ = np.flatnonzero(hist + gcount)  # FAR and FRR change only at these bins: work on them
    far = np.append(np.cumsum(hist[occ][::-1])[::-1], 0) / n_s  # at the low edge of occ[i]; [-1]: beyond
    frr = np.append(0, np.cumsum(gcount[occ])) / gs.size
    has_g = gcount[occ] > 0
    groups = np.split(kb, np.cumsum(sizes)[:-1])
    last = occ.size - 1

    def sigma(i: int) -> np.ndarray:  # z standard errors of the FAR estimate, design effect measured at occ[i]
        per = np.array([np.count_nonzero(x >= occ[i]) for x in groups])
        spread = float(np.sum((per - far[i] * sizes).astype(np.float64) ** 2)) / n_s**2
        d = max(1.0, spread / (max(far[i] * (1 - far[i]), 1.0 / n_s) / n_s))
        return z * np.sqrt(d * np.maximum(far * (1 - far), 1.0 / n_s) / n_s)

    bands = []  # (centre, first, last) as indices into occ, one occupied bin of margin on each side
    if eer:
        diff = far - frr  # non-increasing
        c = min(int(np.argmax(diff <= 0)), last)
        sg = sigma(c)
        lo, hi = int(np.argmax(diff <= sg)), occ.size - int(np.argmax((diff >= -sg)[::-1]))
        bands.append((c, lo - 1, hi + 1))
    for p in p_targets:
        c = int(np.argmin(np.where(has_g, c_miss * p * frr[:-1] + c_fa * (1 - p) * far[:-1], np.inf)))
        sg = sigma(c)
        up = c_miss * p * frr[1:] + c_fa * (1 - p) * (far[:-1] + sg[:-1])
        low = c_miss * p * frr[:-1] + c_fa * (1 - p) * np.maximum(far[1:] - sg[1:], 0)
        need = np.flatnonzero(has_g & (low <= min(float(np.min(np.where(has_g, up, np.inf))), c_miss * p)))
        if need.size:
            bands.append((c, int(need[0]) - 1, int(need[-1]) + 1))
    d, width = shift - s, 1 << (shift - s)
    cand = []  # (distance to its band's centre, first bin) of whole summary bins
    for c, lo, hi in bands:
        a = np.arange(int(occ[max(lo, 0)]) >> d << d, int(occ[min(hi, last)]) + 1, width)
        cand += zip(np.abs(a + width // 2 - int(occ[c])).tolist(), a.tolist())
    keep = np.zeros(nb, dtype=bool)
    left = budget * n_s
    for _, a in sorted(cand):  # the bins nearest to every band's centre first, within the budget
        mass = int(hist[a : a + width][~keep[a : a + width]].sum())
        if mass <= left:
            keep[a : a + width] = True
            left -= mass
    top_bin = None
    if top > 0:  # the highest bin whose FAR lower bound still reaches the top fraction
        i = int(np.argmin(far - sigma(min(int(np.argmax(far < top)), last)) >= top)) - 1
        top_bin = int(occ[i]) >> d << d if i >= 0 else None
    return np.flatnonzero(keep), top_bin


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

    # ------------------------------------------------------------------ derived tables (cheap, recomputed on use)
    def bin_of(self, x: np.ndarray) -> np.ndarray:
        """Bin index of each score (the same function as for the impostors)."""
        return bin_index(np.asarray(x), self.shift).astype(np.int64)

    def _ge(self) -> np.ndarray:
        """ge[b] = #{impostor with bin ≥ b}, length bins + 1."""
        return np.append(np.cumsum(self.counts[::-1])[::-1], 0).astype(np.int64)

    def _gen_lt(self, gs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bin of each sorted genuine score, lt[b] = #{genuine with bin < b}, length bins + 1)."""
        gb = self.bin_of(gs)
        return gb, np.append(0, np.cumsum(np.bincount(gb, minlength=self.bins))).astype(np.int64)

    def _refined_end(self) -> np.ndarray:
        """End offset in ``refined_values`` of each refined bin."""
        return np.cumsum(self.counts[self.refined_bins]).astype(np.int64)

    # ------------------------------------------------------------------ queries used by the metrics
    def nfa_bounds(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds (lo, hi) on #{impostor ≥ t} for thresholds t; exact (lo = hi) where t's bin is refined or empty."""
        t = np.asarray(t, dtype=np.float64)
        b = self.bin_of(t)
        ge = self._ge()
        lo, hi = ge[b + 1].copy(), ge[b].copy()
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
        gb, lt = self._gen_lt(gs)
        ge = self._ge()
        occ = np.flatnonzero(np.bincount(gb, minlength=self.bins) + self.counts)
        n_miss = np.append(lt[occ], gs.size)
        n_fa = np.append(ge[occ], 0)
        j = int(np.argmax(n_miss * self.n >= n_fa * gs.size))
        return int(occ[j - 1]), (int(occ[j]) if j < occ.size else None)

    def eer_points(self, gs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The consecutive operating points around the EER crossing, with exact counts (thresholds, n_miss, n_fa)."""
        b_prev, b_star = self.eer_bracket(gs)
        _, lt = self._gen_lt(gs)
        t = np.union1d(gs[lt[b_prev] : lt[b_prev + 1]].astype(np.float64), self._refined(b_prev))
        if b_star is None:
            t_star = math.inf
        else:
            first = list(self._refined(b_star)[:1]) + list(gs[lt[b_star] : lt[b_star] + 1].astype(np.float64))
            t_star = min(first)
        n_fa = np.append(self.nfa_bounds(t)[0], self._ge()[b_star] if b_star is not None else 0)
        t = np.append(t, t_star)
        return t, np.searchsorted(gs, t, side="left"), n_fa

    def dcf_bins(self, gs: np.ndarray, p_target: float, c_miss: float, c_fa: float) -> np.ndarray:
        """Bins whose exact values are needed for minDCF: those where a candidate threshold (a genuine score) could
        reach the minimum given only the histogram (its lower-bound cost ≤ the best upper-bound cost)."""
        cand = np.unique(gs).astype(np.float64)
        n_miss = np.searchsorted(gs, cand, side="left")
        b = self.bin_of(cand)
        ge = self._ge()
        cost_lo = dcf_cost(n_miss, ge[b + 1], gs.size, self.n, p_target, c_miss, c_fa)
        cost_hi = dcf_cost(n_miss, ge[b], gs.size, self.n, p_target, c_miss, c_fa)
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
        gb, lt = self._gen_lt(gs)
        occ = np.flatnonzero(np.bincount(gb, minlength=self.bins) + self.counts)[::-1]
        return bin_low_edge(occ, self.shift), gs.size - lt[occ], self._ge()[occ]


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
        self.shift = _shift(mantissa_bits)
        self.bins = n_bins(self.shift)
        self._counts = np.zeros(self.bins, dtype=np.int64)
        self._top = TopAccumulator(int(top))
        self._n = 0
        self._planned: ImpostorSummary | None = None
        self._refine_mask: np.ndarray | None = None
        self._refine_runs: list[tuple[int, int]] = []
        self._gocc_mask: np.ndarray | None = None
        self._gs: np.ndarray | None = None
        self._gfp: tuple[int, float] | None = None
        self._n2 = 0
        self._vals: list[np.ndarray] = []
        self._auc_num = 0
        self._auc = False
        self._rbins = np.empty(0, dtype=np.int64)
        self._cells: _CellCounter | None = None
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
        if a.size and not (math.isfinite(float(a.min())) and math.isfinite(float(a.max()))):
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
        s = min(self.shift, _FINE_SHIFT)
        bins, self._top_bin = np.empty(0, dtype=np.int64), None
        if sample is not None:
            top = self._top.m / n if n and self._top.m <= min(_TOP_KEEP, 0.05 * n) else 0.0
            bins, self._top_bin = _predict_bins(g32, sample, s, self.shift, p_targets, c_miss, c_fa, eer, capture, top)
        if self._top_bin is not None:
            bins = np.concatenate([bins[bins < self._top_bin], np.arange(self._top_bin, n_bins(s))])
        keys = _keys(g32)  # sorted, as g32
        first = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1))
        gcount = np.diff(np.append(first, keys.size))
        self._cells = _CellCounter(keys[first], gcount, bins, s, max_cells)
        self._gfp = _genuine_fingerprint(gs)

    def add(self, scores: object) -> None:
        """Pass 1: count a block of impostor scores (any shape) into the histogram and the exact top."""
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
                m = min(self._top.m, self._n)
                above = kept[kept >= (self._top_bin - self._cells.off) << self._cells.s]
                if above.size >= m:
                    part = np.partition(above, above.size - m)[above.size - m :] if m else above[:0]
                    self._top_values = _key_values(np.sort(part))[::-1].copy()
                else:
                    self._top_again = True
        pre = ImpostorSummary(self._n, self.shift, self._counts.copy(), np.empty(0))
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
        starts = np.flatnonzero(np.diff(need_bins, prepend=-2) != 1)  # runs of consecutive bins
        ends = np.append(starts[1:], need_bins.size) - 1
        self._refine_runs = [(int(need_bins[a]), int(need_bins[e])) for a, e in zip(starts, ends)]
        if auc and not self._auc:
            gcount = np.bincount(pre.bin_of(gs), minlength=self.bins)
            self._gocc_mask = gcount > 0
            g_gt = gs.size - np.cumsum(gcount)  # #{genuine with bin > b}
            free = gcount == 0
            self._auc_num = int(np.sum(2 * g_gt[free] * pre.counts[free], dtype=np.int64))
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
            if len(self._refine_runs) <= 4:  # a few runs of bins: range tests are cheaper than a table lookup
                sel = np.zeros(b.shape, dtype=bool)
                for lo, hi in self._refine_runs:
                    sel |= (b >= lo) & (b <= hi)
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
        return ImpostorSummary(self._n, self.shift, counts, top, rbins, values, auc_state)


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
