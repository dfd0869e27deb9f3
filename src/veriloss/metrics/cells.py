"""One-pass impostor counting with exact ranks against genuine scores known first (docs/evaluation.md §Speed).

When the genuine scores are known first (:meth:`~veriloss.metrics.SummaryBuilder.prepare`, as in the all-pairs
protocol), one pass suffices: each bin's counts are split at its genuine value (bins with several are split in finer
cells), which makes #{impostor < g} and #{impostor ≤ g} exact for every genuine g (AUC); the exact scores of the
bins that EER, minDCF and the top will need are kept on the way, those bins being predicted from a small sample of
impostor scores (:func:`predict_bins`). A missed prediction costs the usual second pass, never exactness.
:class:`CellCounter` does the counting; :class:`~veriloss.metrics.SummaryBuilder` turns its totals into an
:class:`~veriloss.metrics.ImpostorSummary`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ._scores import prefix_sums, suffix_sums
from .bins import FEW_RANGES, INF_BITS, bin_index, bin_runs, in_ranges, key_values, n_bins

__all__ = ["FINE_SHIFT", "SLOT_CHUNK", "CellCounter", "predict_bins"]

SLOT_CHUNK = 1 << 17  # scores per step of the one-pass counter: its work buffers stay in the CPU cache
FINE_SHIFT = 12  # the counter's bins: 2^12 float32 values each (11 mantissa bits), or the summary's if finer
_SUB_BITS = 6  # a bin holding several genuine values has at most 2^6 cells (of 64 float32 values)
_FLUSH_AT = 2**31 - 1  # int32 counters are moved to int64 totals before this many more scores
_SPLIT = (1 << 13) - 1  # bits of a split value (the genuine value's low key bits; 2^12 + 1: none)
_SHARED = 1 << 14  # cell flag: it still holds two or more genuine values, keep its scores
_DENSE = -(1 << 31)  # bin flag: the bin has cells (its entry: first cell << 4 | shift of the cells)
_KEEP = 1 << 30  # bin flag: keep its scores (a predicted EER/minDCF bin)
_KEEP_SHARED = 1 << 29  # bin flag: keep its scores (several genuine values and no cells)
_FLAGS = _KEEP_SHARED  # as uint32, an entry ≥ this has a flag


class CellCounter:
    """One-pass impostor counts with exact ranks against every genuine value (the module docstring).

    Keys (sign-magnitude integers of the float32 bits) fall in bins of 2^s values (s = min(shift, 12)). Each bin has
    three counters: scores below, equal to and above its genuine value, if it holds exactly one (its "split"). So a
    score costs one lookup in a bin table (small: the scores occupy few bins), a sign and one ``index_add_``. Bins
    holding several genuine values are "dense": their scores are also counted in 2^r cells (r just large enough to
    separate the values, at most 6), each split the same way (a second lookup, for those scores only). Scores of the
    predicted EER/minDCF bins (``keep_bins``, and every bin from ``top_bin`` up: the top scores, kept apart), and of
    cells still holding two genuine values, are also kept as keys. Hence #{impostor < g} and #{impostor ≤ g} are
    exact for every genuine g (AUC), and the exact values of the kept bins are known (EER/minDCF without a second
    pass).
    """

    def __init__(
        self,
        gkeys: np.ndarray,
        gcount: np.ndarray,
        keep_bins: np.ndarray,
        s: int,
        max_cells: int,
        top_bin: int | None = None,
    ):
        self.s, self.off = s, INF_BITS >> s
        self.top_key = None if top_bin is None else (top_bin - self.off) << s  # lowest key of the top region
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
        per_bin = np.bincount(gb, minlength=nb)
        one, several = per_bin == 1, per_bin > 1
        entries = np.zeros(2 * nb, dtype=np.int32)  # the table starts with nb unused entries
        table = entries[nb:]
        table[:] = low + 2  # split beyond every key: all "below"
        table[gb[one[gb]]] = gl[one[gb]]
        table[dense] = _DENSE | ((first + self.n_cells) << 4) | rsh[dense]
        shared_bin = several & (rb == 0)  # no room for cells: keep the bin's scores
        table[shared_bin] |= _KEEP_SHARED
        keep = np.asarray(keep_bins, dtype=np.int64)
        self.keep_bin = np.zeros(nb, dtype=bool)
        self.keep_bin[keep] = True
        if top_bin is not None:
            self.keep_bin[top_bin:] = True
        table[self.keep_bin] |= _KEEP
        self.table = torch.from_numpy(entries)
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
        self.gshared = np.where(self.gdense, (split[self.gcell] & _SHARED) > 0, shared_bin[gb])
        cell_rsh = np.where(self.gdense, rsh[gb], s)
        self.glo = (gkeys >> cell_rsh) << cell_rsh  # lowest key of the genuine value's cell (or bin)
        self.gkeys, self.gcount, self.gb = gkeys, gcount, gb
        self.bin_first, self.low = bin_first, low
        # three planes of counters (scores below, at, above the split), so that bins without a genuine value use one
        self.nb = nb
        self.counts = torch.zeros(3 * nb, dtype=torch.int32)
        self.cell_counts = torch.zeros(3 * self.n_cells, dtype=torch.int32)
        self.wide: list[np.ndarray | None] = [None, None]
        self.unflushed = 0
        self.any_shared_bin = bool(shared_bin.any())
        self.kept: list[np.ndarray] = []  # keys of the predicted bins below the top region
        self.kept_top: list[np.ndarray] = []  # keys of the top region
        self.kept_cells: list[np.ndarray] = []  # keys of the shared cells and of the shared bins without cells
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
        i = np.flatnonzero(flag)
        if i.size:  # scores of dense or kept bins
            w, k = w.take(i), k.take(i)
            dense = w < 0
            if dense.any():
                self.dense.append((k, w) if dense.all() else (k[dense], w[dense]))
                self.n_dense += self.dense[-1][0].size
                if self.n_dense >= 1 << 18:  # in batches: fewer, larger numpy calls
                    self._add_cells()
            keep = (w & _KEEP) != 0
            if keep.any():
                kk = k[keep]
                if self.top_key is None:
                    self.kept.append(kk)
                else:
                    top = kk >= self.top_key
                    self.kept.append(kk[~top])
                    self.kept_top.append(kk[top])
            if self.any_shared_bin:
                shared = (w & _KEEP_SHARED) != 0
                if shared.any():
                    self.kept_cells.append(k[shared])

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

    def finish(self, shift: int) -> tuple[np.ndarray, int, tuple[np.ndarray, np.ndarray]]:
        """(the summary's histogram at ``shift``, Σ over genuine g of #{impostor < g} + #{impostor ≤ g}, the keys
        kept in the predicted bins: (those below the top region, unsorted; those of the top region, ascending))."""
        self._add_cells()
        cb, cc = (  # the int32 counters as they are (no int64 copy) unless some were flushed to int64 totals
            (x.numpy() if y is None else x.numpy() + y).reshape(3, -1)
            for x, y in zip((self.counts, self.cell_counts), self.wide)
        )
        per_bin = self.per_bin = cb.sum(axis=0, dtype=np.int64)
        d = shift - self.s
        per_bin_api = per_bin
        if d:
            first = (np.arange(n_bins(shift), dtype=np.int64) - (INF_BITS >> shift) << d) + self.off
            per_bin_api = np.add.reduceat(per_bin, np.maximum(first, 0))
        below = prefix_sums(per_bin)[self.gb]  # impostors in lower bins
        lt_in, eq = cb[0, self.gb].astype(np.int64), cb[1, self.gb].astype(np.int64)
        if self.n_cells > 1:  # dense bins: the lower cells of the bin, then the cell's counters
            cell_prefix = prefix_sums(cc.sum(axis=0, dtype=np.int64))  # [c] = scores in cells < c
            gd, cell = self.gdense, self.gcell[self.gdense]
            below[gd] += cell_prefix[cell] - cell_prefix[self.bin_first[self.gb[gd]]]
            lt_in[gd], eq[gd] = cc[0, cell], cc[1, cell]
        kept = _joined(self.kept), np.sort(_joined(self.kept_top))
        shared = np.sort(_joined(self.kept_cells))
        if self.gshared.any():
            g = self.gshared
            left = np.searchsorted(shared, self.gkeys[g], side="left")
            lt_in[g] = left - np.searchsorted(shared, self.glo[g], side="left")
            eq[g] = np.searchsorted(shared, self.gkeys[g], side="right") - left
        auc_num = int(np.sum(self.gcount * (2 * (below + lt_in) + eq), dtype=np.int64))
        return per_bin_api, auc_num, kept

    def values(
        self, bins: np.ndarray, shift: int, kept: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(which summary bins at ``shift`` are known exactly, their sorted values as float64); after finish(), with
        the keys it returned."""
        d = shift - self.s
        bins = np.asarray(bins, dtype=np.int64)
        ok = np.zeros(bins.size, dtype=bool)
        for i, b in enumerate(bins):  # every bin of the counter inside it kept, or empty
            lo = max(((b - (INF_BITS >> shift)) << d) + self.off, 0)
            inner = slice(lo, min(lo + (1 << d), self.keep_bin.size))
            ok[i] = bool(np.all(self.keep_bin[inner] | (self.per_bin[inner] == 0)))
        low, top = kept
        top_key = INF_BITS + 1 if self.top_key is None else self.top_key  # (no top region: every key is below it)
        off = INF_BITS >> shift
        runs = [((a - off) << shift, (b + 1 - off) << shift) for a, b in bin_runs(bins[ok])]
        below = [(a, b) for a, b in runs if a < top_key]  # key ranges [a, b), from the unsorted keys
        if len(below) <= FEW_RANGES:
            sel = in_ranges(low, below)
        else:
            wanted = np.zeros(n_bins(shift), dtype=bool)
            wanted[bins[ok]] = True
            sel = wanted[(low >> shift) + off]
        parts = [np.sort(low[sel])]  # then the sorted top keys, by slices (all above the others)
        parts += [top[np.searchsorted(top, a) : np.searchsorted(top, b)] for a, b in runs if b > top_key]
        return ok, key_values(np.concatenate(parts))


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)


def predict_bins(
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
    ends = np.cumsum(sizes)
    kb = np.empty(n_s, dtype=np.int32)
    for r, e, m in zip(rows, ends.tolist(), sizes.tolist()):  # row by row: the temporaries stay in the cache
        kb[e - m : e] = bin_index(r, s)
    hist = torch.bincount(torch.from_numpy(kb), minlength=nb).numpy()
    gb = bin_index(gs, s)
    occupied = hist > 0
    occupied[gb] = True
    occ = np.flatnonzero(occupied)  # FAR and FRR change only at these bins: work on them
    g_occ = np.bincount(np.searchsorted(occ, gb), minlength=occ.size)  # genuine scores per occupied bin
    far = suffix_sums(hist[occ]) / n_s  # at the low edge of occ[i]; [-1]: beyond
    frr = prefix_sums(g_occ) / gs.size
    has_g = g_occ > 0
    groups = np.split(kb, ends[:-1])
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
    windows = [(int(occ[max(lo, 0)]) >> d << d, int(occ[min(hi, last)]) >> d << d, int(occ[c])) for c, lo, hi in bands]
    keep = _nearest_within_budget(windows, hist, width, budget * n_s)
    top_bin = None
    if top > 0:  # the highest bin whose FAR lower bound still reaches the top fraction
        i = int(np.argmin(far - sigma(min(int(np.argmax(far < top)), last)) >= top)) - 1
        top_bin = int(occ[i]) >> d << d if i >= 0 else None
    return np.flatnonzero(keep), top_bin


def _nearest_within_budget(
    bands: list[tuple[int, int, int]], hist: np.ndarray, width: int, budget: float
) -> np.ndarray:
    """The bins kept (bool, like ``hist``). Each band ``(a0, a1, centre)`` lists the windows ``[a, a + width)`` for a
    = a0, a0 + width, …, a1 (aligned: two windows are equal or disjoint); the windows are taken by increasing distance
    |a + width/2 − centre| (then bin) while their sampled mass fits the remaining ``budget``; a window listed again
    adds nothing, an empty one is always taken. Work on the windows with mass only: a band spanning the float32 range
    near 0 has hundreds of thousands of windows, almost all empty (marked by one slice per band)."""
    nb = hist.size
    keep = np.zeros(nb, dtype=bool)
    if not bands:
        return keep
    nz = np.flatnonzero(hist)  # the bins with mass, ascending
    cum = prefix_sums(hist[nz])
    cand_a, cand_d = [], []
    for a0, a1, centre in bands:
        keep[a0 : a1 + width] = True  # every window of the band; those with mass not taken are cleared below
        z = nz[np.searchsorted(nz, a0) : np.searchsorted(nz, a1 + width)]
        a = a0 + (z - a0) // width * width
        a = a[np.diff(a, prepend=a0 - 1) != 0]  # (ascending: one per window)
        cand_a.append(a)
        cand_d.append(np.abs(a + width // 2 - centre))
    a, d = np.concatenate(cand_a), np.concatenate(cand_d)
    mass = cum[np.searchsorted(nz, a + width)] - cum[np.searchsorted(nz, a)]
    order = np.lexsort((a, d))  # nearest first, then by bin
    a, mass = a[order], mass[order]
    first = np.sort(np.unique(a, return_index=True)[1])  # a window listed again adds nothing
    a, mass = a[first], mass[first]
    left, take = budget, np.zeros(a.size, dtype=bool)
    for i, m in enumerate(mass.tolist()):  # while the budget lasts
        if left < 1:  # (masses are counts)
            break
        if m <= left:
            take[i] = True
            left -= m
    bins = (a[~take][:, None] + np.arange(width)).reshape(-1)
    keep[bins[bins < nb]] = False
    return keep
