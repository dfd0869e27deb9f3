"""Verification metrics (docs/evaluation.md §Metrics): ROC, DET, TAR@FAR, EER, minDCF and AUC, exact with ties.

Conventions, used by every function here:

* genuine scores come from same-identity pairs, impostor scores from different identities; higher = more similar;
* a threshold ``t`` accepts a pair when ``score ≥ t``; FAR(t) = #{impostor ≥ t}/I, TAR(t) = #{genuine ≥ t}/G,
  FRR(t) = 1 − TAR(t); the operating points are the thresholds at every distinct score (ties move together) plus
  "reject everything" (t = +inf);
* inputs are 1-D torch tensors, numpy arrays or sequences (float32 is kept as is, counts are exact integers and
  rates float64); ``impostor`` may also be an :class:`~veriloss.metrics.summary.ImpostorSummary`, the reduced form
  that the all-pairs protocol builds without keeping every impostor score. TAR@FAR, EER, minDCF and AUC computed
  from a summary equal the full-array values exactly (or raise if the summary lacks what they need).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._scores import (
    as_scores,
    check_cost,
    check_fars,
    check_rate,
    dcf_cost,
    distinct_sorted,
    floor_far_count,
    top_values,
)
from .summary import ImpostorSummary, summarize

__all__ = ["DET", "EER", "ROC", "MinDCF", "TarAtFar", "auc", "det", "eer", "min_dcf", "roc", "tar_at_far"]

# EER and minDCF of impostor arrays larger than this go through the exact histogram route (two passes of a few
# integer operations per score, summary.py) instead of a sort; both give identical results.
HISTOGRAM_ROUTE_MIN = 1 << 20


# ----------------------------------------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class ROC:
    """ROC points in order of decreasing threshold; the first point is (0, 0) at threshold +inf (as sklearn).

    ``false_accepts[i]`` = #{impostor ≥ thresholds[i]}, ``true_accepts[i]`` = #{genuine ≥ thresholds[i]}.
    """

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray
    false_accepts: np.ndarray
    true_accepts: np.ndarray
    n_genuine: int
    n_impostor: int


@dataclass(frozen=True, eq=False)
class DET:
    """Detection-error trade-off points (FAR, FRR) in order of increasing threshold (FAR falls, FRR rises)."""

    far: np.ndarray
    frr: np.ndarray
    thresholds: np.ndarray

    def probit(self) -> tuple[np.ndarray, np.ndarray]:
        """(Φ⁻¹(FAR), Φ⁻¹(FRR)), the normal-deviate axes of a DET plot (0 maps to −inf, 1 to +inf)."""
        f = torch.special.ndtri(torch.from_numpy(np.asarray(self.far, dtype=np.float64))).numpy()
        r = torch.special.ndtri(torch.from_numpy(np.asarray(self.frr, dtype=np.float64))).numpy()
        return f, r


@dataclass(frozen=True)
class TarAtFar:
    """TAR at a target FAR, with the counts behind it.

    ``k`` = ⌊far_target·n_impostor⌋ is the number of impostors the threshold may admit; ``impostors_admitted`` ≤ k is
    how many it does admit (fewer when a tied group straddles the k-th place). ``tar``/``threshold`` are None when the
    value is not measurable (far_target·n_impostor < 1). ``float(result)`` is the TAR (an error if not measurable).
    """

    tar: float | None
    threshold: float | None
    far_target: float
    k: int
    impostors_admitted: int | None
    genuine_accepted: int | None
    n_impostor: int
    n_genuine: int
    measurable: bool
    mode: str = "exact"

    @property
    def far(self) -> float | None:
        """The FAR actually achieved, impostors_admitted / n_impostor."""
        return None if self.impostors_admitted is None else self.impostors_admitted / self.n_impostor

    def __float__(self) -> float:
        if self.tar is None:
            raise ValueError(
                f"TAR@FAR={self.far_target:g} is not measurable with {self.n_impostor} impostor scores "
                f"(FAR·N = {self.far_target * self.n_impostor:.3g} < 1); it needs at least "
                f"{math.ceil(1 / self.far_target)} impostor scores"
            )
        return self.tar

    def __str__(self) -> str:
        if self.tar is None:
            return f"TAR@FAR={self.far_target:g}: not measurable (n_impostor={self.n_impostor})"
        return (
            f"TAR@FAR={self.far_target:g}: {self.tar:.4f} (threshold {self.threshold:.6g}, "
            f"{self.impostors_admitted}/{self.n_impostor} impostors admitted)"
        )


@dataclass(frozen=True)
class EER:
    """Equal error rate (interpolated at the FAR = FRR crossing) and the threshold of the crossing's upper point."""

    eer: float
    threshold: float
    n_genuine: int
    n_impostor: int

    def __float__(self) -> float:
        return self.eer

    def __str__(self) -> str:
        return f"EER: {100 * self.eer:.3f}% (threshold {self.threshold:.6g})"


@dataclass(frozen=True)
class MinDCF:
    """Minimum detection cost, its threshold and the error rates there (``normalized`` says which value it is)."""

    min_dcf: float
    threshold: float
    p_miss: float
    p_fa: float
    p_target: float
    c_miss: float
    c_fa: float
    normalized: bool

    def __float__(self) -> float:
        return self.min_dcf

    def __str__(self) -> str:
        kind = "normalized" if self.normalized else "un-normalized"
        return f"minDCF(p={self.p_target:g}): {self.min_dcf:.4f} ({kind}, threshold {self.threshold:.6g})"


# ----------------------------------------------------------------------------------------------------------- helpers
def _impostors(impostor: object) -> np.ndarray | ImpostorSummary:
    return impostor if isinstance(impostor, ImpostorSummary) else as_scores(impostor, "impostor")


def _full_only(impostor: np.ndarray | ImpostorSummary, what: str) -> np.ndarray:
    if isinstance(impostor, ImpostorSummary):
        raise ValueError(f"{what} needs every impostor score; an ImpostorSummary keeps only a reduced form")
    return impostor


def _nfa_bounds(imp_sorted: np.ndarray | ImpostorSummary, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on #{impostor ≥ t} for ascending thresholds t (equal, i.e. exact, for a full sorted array)."""
    if isinstance(imp_sorted, ImpostorSummary):
        return imp_sorted.nfa_bounds(t)
    n = imp_sorted.size - np.searchsorted(imp_sorted, t, side="left")
    return n, n


def _eer_points_sorted(gs: np.ndarray, imp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run of consecutive operating points that contains the EER crossing, from sorted arrays.

    The first distinct genuine value u* (or +inf) with FRR ≥ FAR brackets the crossing with the previous genuine
    value u'; between them FRR is constant and only impostor values make points. Returns (thresholds, n_miss, n_fa).
    """
    n_gen, n_imp = gs.size, imp.size
    cand, first = distinct_sorted(gs)
    cand, n_miss = np.append(cand, math.inf), np.append(first, gs.size)
    n_fa = n_imp - np.searchsorted(imp, cand, side="left")
    j = int(np.argmax(n_miss * n_imp >= n_fa * n_gen))  # +inf always qualifies (n_fa = 0)
    lo = np.searchsorted(imp, cand[j - 1], side="left") if j > 0 else 0
    hi = np.searchsorted(imp, cand[j], side="left")
    t = np.unique(imp[lo:hi]).astype(np.float64)
    if j > 0:
        t = np.union1d(t, cand[j - 1 : j])
    t = np.append(t, cand[j])
    return t, np.searchsorted(gs, t, side="left"), n_imp - np.searchsorted(imp, t, side="left")


def _eer_from_points(t: np.ndarray, n_miss: np.ndarray, n_fa: np.ndarray, n_gen: int, n_imp: int) -> tuple:
    """EER over consecutive operating points (ascending thresholds); the first point must have FRR < FAR.

    j = first point with FRR ≥ FAR (integer test). If FRR_j = FAR_j the EER is that rate; otherwise the segment
    (j−1, j) is intersected with FAR = FRR: a = d_j/(d_j − d_{j−1}), d = FRR − FAR, EER = FRR_j + a·(FRR_{j−1} − FRR_j)
    (the NIST/Kaldi/WeSpeaker ``compute_eer`` interpolation). The threshold returned is t_j.
    """
    n_miss = np.asarray(n_miss, dtype=np.int64)
    n_fa = np.asarray(n_fa, dtype=np.int64)
    ok = n_miss * n_imp >= n_fa * n_gen
    j = int(np.argmax(ok))
    frr = n_miss / n_gen
    far = n_fa / n_imp
    if n_miss[j] * n_imp == n_fa[j] * n_gen or j == 0:
        return float(frr[j]), float(t[j])
    d1, d0 = frr[j] - far[j], frr[j - 1] - far[j - 1]
    a = d1 / (d1 - d0)
    return float(frr[j] + a * (frr[j - 1] - frr[j])), float(t[j])


# ----------------------------------------------------------------------------------------------------------- metrics
def roc(genuine: object, impostor: object, drop_intermediate: bool = False) -> ROC:
    """ROC at every distinct threshold (accept = score ≥ t), tie-exact; equals ``sklearn.metrics.roc_curve``.

    FAR(t) = #{impostor ≥ t}/I, TAR(t) = #{genuine ≥ t}/G. ``drop_intermediate=True`` drops the same collinear points
    as sklearn (the curve that insightface's ``roc_curve(...)`` call sees). From an ImpostorSummary the points are the
    exact ROC points at the summary's bin boundaries (thresholds reported as the nominal bin edges), not every score.
    """
    g = as_scores(genuine, "genuine")
    imp = _impostors(impostor)
    gs = np.sort(g)
    if isinstance(imp, ImpostorSummary):
        thr, tps, fps = imp.roc_cuts(gs)
        n_imp = imp.n
    else:
        imp_s = np.sort(imp)
        thr = np.unique(np.concatenate([gs.astype(np.float64), imp_s.astype(np.float64)]))[::-1]
        tps = gs.size - np.searchsorted(gs, thr, side="left")
        fps = imp_s.size - np.searchsorted(imp_s, thr, side="left")
        n_imp = imp_s.size
    if drop_intermediate and fps.size > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        thr, tps, fps = thr[keep], tps[keep], fps[keep]
    thr = np.r_[math.inf, thr]
    tps = np.r_[0, tps].astype(np.int64)
    fps = np.r_[0, fps].astype(np.int64)
    return ROC(fps / n_imp, tps / gs.size, thr, fps, tps, int(gs.size), int(n_imp))


def det(genuine: object, impostor: object) -> DET:
    """DET points (FAR, FRR = 1 − TAR) at every distinct threshold, in order of increasing threshold."""
    r = roc(genuine, impostor)
    return DET(r.far[::-1].copy(), 1.0 - r.tar[::-1], r.thresholds[::-1].copy())


def _tar_nearest(g: np.ndarray, imp: np.ndarray, fars: list[float]) -> list[TarAtFar]:
    r = roc(g, imp, drop_intermediate=True)
    far_f, tar_f, thr_f, fps_f, tps_f = (a[::-1] for a in (r.far, r.tar, r.thresholds, r.false_accepts, r.true_accepts))
    out = []
    for f in fars:
        i = int(np.argmin(np.abs(far_f - f)))
        k = floor_far_count(f, imp.size)
        out.append(
            TarAtFar(
                float(tar_f[i]),
                float(thr_f[i]),
                f,
                k,
                int(fps_f[i]),
                int(tps_f[i]),
                imp.size,
                g.size,
                k >= 1,
                mode="nearest",
            )
        )
    return out


def tar_at_far(
    genuine: object, impostor: object, far: float | Sequence[float], mode: str = "exact"
) -> TarAtFar | list[TarAtFar]:
    """TAR at FAR = f: the largest TAR over thresholds whose FAR ≤ f (docs/evaluation.md).

    Exact definition: with N impostor scores and k = ⌊f·N⌋ (f read as a decimal), let v be the (k+1)-th largest
    impostor score. Every threshold ≤ v admits ≥ k+1 impostors and every threshold > v at most k, so the threshold is
    the smallest observed score strictly above v (+inf if none) and TAR = #{genuine > v}/G. A tied group at v is
    rejected as a whole, so ``impostors_admitted`` can be < k. When f·N < 1 (k = 0) the value is not measurable and
    ``tar``/``threshold`` are None. Only the k_max+1 largest impostors are selected (chunked partition, no sort and no
    full-size copy); several FARs share one selection.

    ``mode="nearest"`` reproduces the insightface / FaceX-Zoo reading: the TPR of the ``roc_curve`` point (sklearn's
    default ``drop_intermediate=True`` curve) whose FPR is nearest to f, ties to the larger FPR. It needs every
    impostor score and is reported as measurable only when f·N ≥ 1.

    Returns one TarAtFar for a scalar ``far`` and a list for a sequence.
    """
    fars, scalar = check_fars(far)
    if not isinstance(mode, str) or mode not in ("exact", "nearest"):
        raise ValueError(f"mode must be 'exact' or 'nearest', got {mode!r}")
    g = as_scores(genuine, "genuine")
    imp = _impostors(impostor)
    if mode == "nearest":
        out = _tar_nearest(g, _full_only(imp, "tar_at_far(mode='nearest')"), fars)
        return out[0] if scalar else out
    n_imp = imp.n if isinstance(imp, ImpostorSummary) else imp.size
    ks = [floor_far_count(f, n_imp) for f in fars]
    m = max(ks) + 1
    if isinstance(imp, ImpostorSummary):
        top = imp.top
        if top.size < min(m, n_imp):
            raise ValueError(
                f"the ImpostorSummary keeps the top {top.size} impostor scores but TAR@FAR={max(fars):g} needs the "
                f"top {m} of {n_imp}; build it with top ≥ {m}"
            )
    else:
        top = top_values(imp, m)
    gs = np.sort(g)
    asc = top[::-1]  # ascending view, for counting
    out = []
    for f, k in zip(fars, ks):
        if k < 1:
            out.append(TarAtFar(None, None, f, k, None, None, n_imp, gs.size, False))
            continue
        v = top[k]
        admitted = int(asc.size - np.searchsorted(asc, v, side="right"))
        gi = int(np.searchsorted(gs, v, side="right"))
        above = [float(top[admitted - 1])] if admitted else []
        if gi < gs.size:
            above.append(float(gs[gi]))
        thr = min(above) if above else math.inf
        out.append(TarAtFar((gs.size - gi) / gs.size, thr, f, k, admitted, gs.size - gi, n_imp, gs.size, True))
    return out[0] if scalar else out


def eer(genuine: object, impostor: object) -> EER:
    """Equal error rate: where FAR = FRR, linearly interpolated between the two operating points that straddle it.

    Over the operating points (distinct thresholds, ascending), j is the first with FRR ≥ FAR; EER = FRR_j if equal,
    else the intersection of segment (j−1, j) with the diagonal (as the NIST/Kaldi/WeSpeaker scripts, which agree on
    tie-free scores). The threshold is t_j, the lowest operating threshold with FRR ≥ FAR (+inf if only rejecting
    everything reaches it). Cost: one sort of the impostor scores, or for large arrays two histogram passes (exact,
    no sort; see :mod:`veriloss.metrics.summary`).
    """
    g = as_scores(genuine, "genuine")
    imp = _impostors(impostor)
    gs = np.sort(g)
    if not isinstance(imp, ImpostorSummary) and imp.size > HISTOGRAM_ROUTE_MIN:
        imp = summarize(gs, imp, p_targets=(), auc=False)
    if isinstance(imp, ImpostorSummary):
        t, n_miss, n_fa = imp.eer_points(gs)
        n_imp = imp.n
    else:
        imp = np.sort(imp)
        t, n_miss, n_fa = _eer_points_sorted(gs, imp)
        n_imp = imp.size
    value, thr = _eer_from_points(t, n_miss, n_fa, gs.size, n_imp)
    return EER(value, thr, int(gs.size), int(n_imp))


def _check_dcf_params(p_target: float, c_miss: float, c_fa: float) -> tuple[float, float, float]:
    return check_rate(p_target, "p_target"), check_cost(c_miss, "c_miss"), check_cost(c_fa, "c_fa")


def min_dcf(
    genuine: object,
    impostor: object,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    normalized: bool = True,
) -> MinDCF:
    """minDCF = min_t C_miss·P_miss(t)·P_target + C_fa·P_fa(t)·(1 − P_target), over every threshold.

    Normalized (default) by min(C_miss·P_target, C_fa·(1 − P_target)) as in NIST SRE / Kaldi ``compute_min_dcf``;
    ``normalized=False`` gives the raw cost (speechbrain's ``minDCF``). The minimum is always reached at a distinct
    genuine score or at +inf (raising t to the next genuine score never adds misses and never adds false alarms),
    so only those candidates are evaluated; ties go to the lowest threshold. Cost as for :func:`eer`.
    """
    p, cm, cf = _check_dcf_params(p_target, c_miss, c_fa)
    g = as_scores(genuine, "genuine")
    imp = _impostors(impostor)
    gs = np.sort(g)
    if not isinstance(imp, ImpostorSummary):
        if imp.size > HISTOGRAM_ROUTE_MIN:
            imp = summarize(gs, imp, p_targets=(p,), c_miss=cm, c_fa=cf, auc=False, eer=False)
        else:
            imp = np.sort(imp)
    n_imp = imp.n if isinstance(imp, ImpostorSummary) else imp.size
    cand, first = distinct_sorted(gs)
    n_miss = np.append(first, gs.size)
    lo, hi = _nfa_bounds(imp, cand)
    lo, hi = np.append(lo, 0), np.append(hi, 0)
    cand = np.append(cand, math.inf)
    cost_lo = dcf_cost(n_miss, lo, gs.size, n_imp, p, cm, cf)
    exact = lo == hi
    best = cost_lo[exact].min()
    if np.any(~exact & (cost_lo <= best)):
        raise ValueError(
            f"the ImpostorSummary was not refined for minDCF(p_target={p:g}, c_miss={cm:g}, c_fa={cf:g}) "
            "with these genuine scores; pass these parameters when building it"
        )
    i = int(np.argmax(exact & (cost_lo == best)))
    norm = min(cm * p, cf * (1.0 - p)) if normalized else 1.0
    return MinDCF(
        float(best / norm), float(cand[i]), float(n_miss[i] / gs.size), float(lo[i] / n_imp), p, cm, cf, normalized
    )


def auc(genuine: object, impostor: object) -> float:
    """Area under the ROC = P(genuine > impostor) + ½·P(genuine = impostor) (Mann–Whitney; ties count half).

    Equals ``sklearn.metrics.roc_auc_score`` (trapezoids over the tie-exact ROC). Computed from exact integer counts.
    """
    g = as_scores(genuine, "genuine")
    imp = _impostors(impostor)
    gs = np.sort(g)
    if isinstance(imp, ImpostorSummary):
        num2, n_imp = imp.auc_numerator(gs), imp.n
    else:
        s = np.sort(imp)
        lt = np.searchsorted(s, gs, side="left")
        le = np.searchsorted(s, gs, side="right")
        num2, n_imp = int(lt.sum(dtype=np.int64)) + int(le.sum(dtype=np.int64)), s.size
    return num2 / (2 * gs.size * n_imp)
