"""Every bench variant against a named baseline on the same pairs: per-seed differences and a paired interval.

Inputs: each run's :class:`~veriloss.bench.bootstrap.RunBootstrap` (``bootstrap.npz``), drawn with common random
numbers (the same bootstrap seed over the same identities gives every run the same multiplicities in replicate r).
For an entry E and the baseline B, over the seeds S where both have replicates, and a metric m:

* per-seed difference: d_s = E_s − B_s (point estimates);
* difference: the mean of d_s over the seeds;
* paired interval over seeds and subjects: replicate r draws |S| seeds with replacement (a fixed generator,
  :data:`SEED_DRAW_SEED`) and takes the mean over the drawn seeds of (E_{s,r} − B_{s,r}), where E_{s,r} is seed s's
  value in subject replicate r (the same identities resampled for both); the interval is the percentiles
  (1 ∓ level)/2 of these R values (replicates where the metric is undefined, NaN, are left out);
* verdict: "ahead" when the interval excludes 0 on the better side (TAR higher; EER and minDCF lower), "behind"
  when it excludes 0 on the worse side, "level" when it contains 0 (or the metric cannot be measured);
* an interval needs the metric in at least :data:`MIN_DEFINED` of the replicates (a TAR@FAR=f is undefined in a
  replicate whose resampled impostor count N_r has f·N_r < 1): otherwise there is none (``low``/``high`` None) and
  the verdict is "level", since the replicates that remain are not a sample of the whole distribution.

A system against itself has d_s = 0 and every replicate 0: a zero interval, "level".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .bootstrap import RunBootstrap

__all__ = ["MIN_DEFINED", "SEED_DRAW_SEED", "compare_runs", "higher_is_better", "paired_seed_interval", "verdict"]

#: the seed of the generator that draws training seeds with replacement in each replicate (fixed: reproducible)
SEED_DRAW_SEED = 12345

#: the fraction of replicates in which a metric must be defined for its interval to be reported
MIN_DEFINED = 0.9


def higher_is_better(metric: str) -> bool:
    """TAR@FAR: higher is better; EER and minDCF: lower is better."""
    return metric.startswith("tar@")


def verdict(low: float, high: float, metric: str) -> str:
    """ "ahead", "behind" or "level" for the interval [low, high] of entry − baseline on ``metric``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "level"
    if low > 0:
        return "ahead" if higher_is_better(metric) else "behind"
    if high < 0:
        return "behind" if higher_is_better(metric) else "ahead"
    return "level"


def paired_seed_interval(
    diffs: np.ndarray, level: float = 0.95, seed: int = SEED_DRAW_SEED, min_defined: float = MIN_DEFINED
) -> tuple[float, float]:
    """Percentile interval of the seed-and-subject bootstrap of a mean difference.

    ``diffs`` (S, R): entry − baseline of seed s in subject replicate r. Replicate r draws S seeds with replacement
    and averages their differences in column r (NaN entries are skipped; a replicate with none is left out). When
    fewer than ``min_defined`` of the R replicates have a value, the interval is (nan, nan).

    >>> paired_seed_interval(np.zeros((3, 100)))
    (0.0, 0.0)
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] < 1 or d.shape[1] < 1:
        raise ValueError(f"diffs must be a (seeds, replicates) array, got shape {d.shape}")
    n_seeds, n_reps = d.shape
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, n_seeds, size=(n_reps, n_seeds))  # replicate r's drawn seeds
    drawn = d[pick, np.arange(n_reps)[:, None]]  # (R, S)
    ok = ~np.isnan(drawn)
    counts = ok.sum(axis=1)
    sums = np.where(ok, drawn, 0.0).sum(axis=1)
    values = sums[counts > 0] / counts[counts > 0]
    if values.size == 0 or values.size < min_defined * n_reps:
        return math.nan, math.nan
    a = (1.0 - level) / 2
    low, high = np.quantile(values, [a, 1.0 - a])
    return float(low), float(high)


def _check_pairable(name: str, seed: int, run: RunBootstrap, base: RunBootstrap) -> None:
    if run.seed != base.seed or run.draws != base.draws:
        raise ValueError(
            f"{name} seed {seed}: its bootstrap was drawn with seed {run.seed} and {run.draws} replicates, the "
            f"baseline's with seed {base.seed} and {base.draws}; delete both bootstrap.npz files to redraw them"
        )
    if run.identities.shape != base.identities.shape or not np.array_equal(run.identities, base.identities):
        raise ValueError(
            f"{name} seed {seed}: scored on other identities ({run.split} split, {run.identities.size} identities) "
            f"than the baseline ({base.split} split, {base.identities.size}); a paired comparison needs the same pairs"
        )


def compare_runs(
    runs: Mapping[str, Mapping[int, RunBootstrap]],
    baseline: str,
    metrics: Sequence[str],
    level: float = 0.95,
) -> dict:
    """Each variant of ``runs`` (name → seed → replicates) against ``baseline`` on ``metrics``.

    Returns ``{"baseline", "level", "metrics", "entries": [{"name", "seeds", "unpaired_seeds", "metrics": {metric:
    {"per_seed": {seed: d_s}, "difference", "low", "high", "verdict", "defined"}}}]}`` (``defined``: the fraction
    of seed × replicate differences with a value); a metric with no value for a seed
    (e.g. a TAR@FAR that is not measurable) has d_s None and, if no seed has one, difference/low/high None and
    verdict "level". ``ValueError`` for an unknown baseline, or runs drawn differently from the baseline's.
    """
    if baseline not in runs:
        raise ValueError(f"--baseline {baseline!r} is not a variant of this bench; variants: {', '.join(runs)}")
    base = runs[baseline]
    entries = []
    for name, by_seed in runs.items():
        if name == baseline:
            continue
        seeds = sorted(s for s in by_seed if s in base)
        unpaired = sorted(set(by_seed) ^ set(base))
        for s in seeds:
            _check_pairable(name, s, by_seed[s], base[s])
        cells = {}
        for metric in metrics:
            if not seeds:
                cells[metric] = {"per_seed": {}, "difference": None, "low": None, "high": None, "verdict": "level"}
                continue
            point = np.array([by_seed[s].point[by_seed[s].index(metric)] - base[s].point[base[s].index(metric)]
                              for s in seeds])  # fmt: skip
            reps = np.stack(
                [by_seed[s].replicates[by_seed[s].index(metric)] - base[s].replicates[base[s].index(metric)]
                 for s in seeds]
            )  # fmt: skip
            have = ~np.isnan(point)
            if not have.any():
                cells[metric] = {
                    "per_seed": {s: None for s in seeds},
                    "difference": None,
                    "low": None,
                    "high": None,
                    "verdict": "level",
                }
                continue
            low, high = paired_seed_interval(reps[have], level)
            finite = math.isfinite(low) and math.isfinite(high)
            cells[metric] = {
                "defined": float(np.mean(~np.isnan(reps[have]))),
                "per_seed": {s: (None if math.isnan(d) else float(d)) for s, d in zip(seeds, point)},
                "difference": float(np.mean(point[have])),
                "low": low if finite else None,
                "high": high if finite else None,
                "verdict": verdict(low, high, metric),
            }
        entries.append({"name": name, "seeds": seeds, "unpaired_seeds": unpaired, "metrics": cells})
    return {"baseline": baseline, "level": level, "metrics": list(metrics), "entries": entries}
