"""Genuine vs impostor score histograms, one panel per system, with the thresholds of the TAR@FAR operating points.

Impostor scores may be an :class:`~veriloss.metrics.ImpostorSummary` (all-pairs protocol): its counts are kept per
fine bin of the float32 bit pattern (2^-11 of an octave wide by default), and each fine bin is counted in the
plotting bin that holds its lowest value. A panel with a summary snaps its plotting-bin edges to fine-bin edges, so
its counts are exact (and bins that hold one or two fine bins show the same density, not a comb); elsewhere a
plotting bin's count can differ from the full-array count only by scores in a fine bin that straddles its edge.

The density axis is logarithmic by default (``log=True``): the impostor tail that decides TAR@FAR = 1e-4 … 1e-6 is a
few bins of a few scores, invisible on a linear axis. A dashed vertical line marks the threshold of each
measurable TAR@FAR=f (accept = score ≥ threshold), labelled in the legend.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from ..metrics import ImpostorSummary, tar_at_far
from ..metrics._scores import CHUNK, as_scores, check_fars, floor_far_count
from ..metrics.bins import bin_index, bin_low_edge
from ._atomic import new_figure, save_figure
from .tables import DEFAULT_FARS, _far_label

__all__ = ["histogram_counts", "score_histograms", "score_range", "thresholds"]


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


def thresholds(genuine: object, impostor: object, far: Sequence[float] = DEFAULT_FARS) -> list[tuple[float, float]]:
    """(FAR, threshold) of each measurable TAR@FAR=f with a finite threshold (accept = score ≥ threshold).

    From an ImpostorSummary only the FARs its exact top resolves (⌊f·N⌋ + 1 top scores) are given.

    >>> thresholds([0.9, 0.8, 0.7], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.85, 0.95, 0.05], far=[0.01, 0.1, 0.2])
    [(0.1, 0.9), (0.2, 0.8)]
    """
    fars = check_fars(list(far))[0] if len(far) else []
    g, imp = as_scores(genuine, "genuine"), _as_input(impostor, "impostor")
    if isinstance(imp, ImpostorSummary) and imp.top.size < imp.n:
        fars = [f for f in fars if floor_far_count(f, imp.n) + 1 <= imp.top.size]
    if not fars:
        return []
    points = tar_at_far(g, imp, fars)
    return [(p.far_target, p.threshold) for p in points if p.measurable and math.isfinite(p.threshold)]


def _edges(lo: float, hi: float, bins: int, summaries: list[ImpostorSummary]) -> np.ndarray:
    """``bins`` equal bins over [lo, hi]; with a summary, each edge moved to the nearest edge of its fine bins."""
    edges = np.linspace(lo, hi, bins + 1)
    for s in summaries:
        b = bin_index(edges, s.shift).astype(np.int64)
        low, high = bin_low_edge(b, s.shift), bin_low_edge(b + 1, s.shift)
        snapped = np.where(edges - low <= high - edges, low, high)
        snapped[0], snapped[-1] = low[0], high[-1]  # the range stays covered
        edges = np.unique(snapped)
    return edges


def _title(name: str, width: int = 62) -> str:
    """A panel title: at most two lines of ``width`` characters, the middle of longer names elided."""
    if len(name) <= width:
        return name
    if len(name) > 2 * width:
        half = width - 1
        name = name[:half] + "…" + name[-half:]
    cut = max(name.rfind(c, 0, width + 1) for c in " _-/.")  # break after a separator when there is one
    cut = cut + 1 if cut > width // 2 else width
    return name[:cut] + "\n" + name[cut:]


def _panels(ax, path, n: int, cols: int, rows: int) -> tuple[list, bool]:
    if ax is None:
        fig = new_figure((4.6 * cols, 3.4 * rows), for_file=path is not None)
        axes = list(fig.subplots(rows, cols, squeeze=False).flat)
        return axes, True
    axes = [ax] if not isinstance(ax, Sequence | np.ndarray) else list(np.asarray(ax, dtype=object).flat)
    if len(axes) < n:
        raise ValueError(f"ax must be one Axes per system: {n} systems, {len(axes)} Axes")
    return axes, False


def score_histograms(
    systems: Mapping[str, tuple[object, object]],
    path: str | os.PathLike | None = None,
    bins: int = 80,
    title: str | None = None,
    log: bool = True,
    far: Sequence[float] = DEFAULT_FARS,
    ax: Axes | Sequence[Axes] | None = None,
) -> Path | list[Axes]:
    """Histograms of the genuine and impostor scores of each system: densities on common bins, one panel per
    system (up to 3 per row), log density axis when ``log``, and the threshold of each measurable TAR@FAR=f
    (``far``; () for none) as a labelled dashed line.

    Draws on ``ax`` when given (one Axes per system, or one Axes for one system), else on a new figure. Writes a PNG
    atomically when ``path`` is given and returns ``path``; otherwise returns the list of Axes.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> (ax,) = score_histograms({"toy": (rng.normal(2, 1, 500), rng.normal(0, 1, 20000))}, far=[1e-3])
    >>> ax.get_yscale(), [t.get_text().split(":")[0] for t in ax.get_legend().get_texts()]
    ('log', ['impostor (20,000)', 'genuine (500)', 'FAR=0.001'])
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    if not isinstance(systems, Mapping) or not systems:
        raise ValueError("systems must be a non-empty mapping name → (genuine, impostor)")
    if not (isinstance(bins, int) and bins >= 2):
        raise ValueError(f"bins must be an integer ≥ 2, got {bins!r}")
    fars = check_fars(list(far))[0] if len(far) else []
    items = []
    for name, pair in systems.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"systems[{name!r}] must be a (genuine, impostor) pair")
        items.append(
            (str(name), as_scores(pair[0], f"genuine scores of {name!r}"), _as_input(pair[1], f"impostor of {name!r}"))
        )
    cols = min(3, len(items))
    rows = math.ceil(len(items) / cols)
    axes, own = _panels(ax, path, len(items), cols, rows)
    for a, (name, g, imp) in zip(axes, items):
        (g_lo, g_hi), (i_lo, i_hi) = score_range(g), score_range(imp)
        lo, hi = min(g_lo, i_lo), max(g_hi, i_hi)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = _edges(lo, hi, bins, [imp] if isinstance(imp, ImpostorSummary) else [])
        width = np.diff(edges)
        densities = []
        for scores, label, color in ((imp, "impostor", "C3"), (g, "genuine", "C0")):
            counts = histogram_counts(scores, edges)
            n = int(counts.sum())
            densities.append((counts / (n * width), f"{label} ({n:,})", color))
        floor = 0.0
        if log:  # one score in the widest bin of the larger set is visible; empty bins drop to the floor
            floor = 0.5 * min(float(d[d > 0].min()) for d, _, _ in densities)
            a.set_yscale("log")
        for d, label, color in densities:
            shown = np.maximum(d, floor) if log else d
            a.stairs(shown, edges, fill=True, alpha=0.35, color=color, baseline=floor)
            a.stairs(shown, edges, color=color, lw=1.0, label=label, baseline=None)
        marks = thresholds(g, imp, fars)
        digits = _digits([t for _, t in marks])
        for j, (f, t) in enumerate(marks):
            a.axvline(t, color="0.15", lw=0.9, ls=_dashes(j), label=f"FAR={_far_label(f)}: threshold {t:.{digits}g}")
        # room above the data for the legend (about 6% of the height per entry), on either scale
        room = 1.0 - (0.1 + 0.065 * (2 + len(marks)))
        top = max(float(d.max()) for d, _, _ in densities)
        if log:
            a.set_ylim(floor, floor * (top / floor) ** (1.0 / room))
        else:
            a.set_ylim(0.0, top / room)
        a.set_xlim(edges[0], edges[-1])
        a.set_title(_title(name), fontsize=8)
        a.set_xlabel("score", fontsize=8)
        a.set_ylabel("density (log)" if log else "density", fontsize=8)
        a.tick_params(labelsize=7)
        a.legend(fontsize=6.5, loc="upper left", handlelength=2.2, framealpha=0.85)
        a.grid(alpha=0.3)
    for a in axes[len(items) :] if own else []:
        a.set_visible(False)
    fig = axes[0].figure.figure
    if title and own:
        fig.suptitle(title, fontsize=10)
    if own:
        fig.tight_layout()
    if path is None:
        return axes[: len(items)]
    return save_figure(fig, path, close=own)


def _digits(values: list[float]) -> int:
    """Significant digits (4 to 10) that tell the values apart."""
    for d in range(4, 11):
        if len({f"{v:.{d}g}" for v in values}) == len(set(values)):
            return d
    return 10


def _dashes(j: int) -> object:
    """The j-th threshold line's dash pattern: dashed, dash-dotted, dotted, long dashes, dash-dot-dotted."""
    return ((0, (4, 2)), (0, (6, 2, 1, 2)), (0, (1, 1.5)), (0, (10, 3)), (0, (6, 2, 1, 2, 1, 2)))[j % 5]
