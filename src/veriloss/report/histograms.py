"""Genuine vs impostor score histograms, one panel per system, written as PNG.

Impostor scores may be an :class:`~veriloss.metrics.ImpostorSummary` (all-pairs protocol): its counts are kept per
fine bin of the float32 bit pattern (2^-11 of an octave wide by default), and each fine bin is counted in the
plotting bin that holds its lowest value. This choice moves a score by less than one fine bin, so a plotting bin's
count can differ from the full-array count only by scores in a fine bin that straddles a plotting-bin edge.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..metrics import ImpostorSummary
from ..metrics._scores import CHUNK, as_scores
from ..metrics.summary import bin_low_edge
from ._atomic import save_figure

__all__ = ["histogram_counts", "score_histograms", "score_range"]


def _as_input(x: object, name: str) -> np.ndarray | ImpostorSummary:
    return x if isinstance(x, ImpostorSummary) else as_scores(x, name)


def score_range(x: object) -> tuple[float, float]:
    """(lowest, highest) score of an array, or bounds from an ImpostorSummary's occupied bins and exact top."""
    x = _as_input(x, "scores")
    if isinstance(x, ImpostorSummary):
        occ = np.flatnonzero(x.counts)
        lo = float(bin_low_edge(occ[:1], x.shift)[0])
        hi = float(x.top[0]) if x.top.size else float(bin_low_edge(occ[-1:] + 1, x.shift)[0])
        return lo, hi
    return float(x.min()), float(x.max())


def histogram_counts(x: object, edges: np.ndarray) -> np.ndarray:
    """Counts of the scores in each bin [e_i, e_{i+1}) (the last bin closed), as ``np.histogram``; int64.

    ``x`` is a score array (counted in chunks) or an ImpostorSummary (each fine bin counted at its lowest value).
    """
    x = _as_input(x, "scores")
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError("edges must be a 1-D increasing array of at least 2 bin edges")
    if isinstance(x, ImpostorSummary):
        occ = np.flatnonzero(x.counts)
        h, _ = np.histogram(bin_low_edge(occ, x.shift), edges, weights=x.counts[occ].astype(np.float64))
        return np.rint(h).astype(np.int64)
    out = np.zeros(edges.size - 1, dtype=np.int64)
    for i in range(0, x.size, CHUNK):
        out += np.histogram(x[i : i + CHUNK], edges)[0]
    return out


def score_histograms(
    systems: Mapping[str, tuple[object, object]],
    path: str | os.PathLike,
    bins: int = 80,
    title: str | None = None,
) -> Path:
    """Histograms of the genuine and impostor scores of each system (densities on common bins; one panel per
    system, up to 3 per row), written atomically as PNG. Returns ``path``."""
    if not isinstance(systems, Mapping) or not systems:
        raise ValueError("systems must be a non-empty mapping name → (genuine, impostor)")
    if not (isinstance(bins, int) and bins >= 2):
        raise ValueError(f"bins must be an integer ≥ 2, got {bins!r}")
    items = []
    for name, pair in systems.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"systems[{name!r}] must be a (genuine, impostor) pair")
        items.append(
            (str(name), as_scores(pair[0], f"genuine scores of {name!r}"), _as_input(pair[1], f"impostor of {name!r}"))
        )
    cols = min(3, len(items))
    rows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax, (name, g, imp) in zip(axes.flat, items):
        (g_lo, g_hi), (i_lo, i_hi) = score_range(g), score_range(imp)
        lo, hi = min(g_lo, i_lo), max(g_hi, i_hi)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        width = np.diff(edges)
        for scores, label, color in ((imp, "impostor", "C3"), (g, "genuine", "C0")):
            counts = histogram_counts(scores, edges)
            n = int(counts.sum())
            ax.stairs(counts / (n * width), edges, fill=True, alpha=0.35, color=color)
            ax.stairs(counts / (n * width), edges, color=color, lw=1.0, label=f"{label} ({n:,})")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("score", fontsize=8)
        ax.set_ylabel("density", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(items) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
