"""ROC and DET plots of one or several systems (docs/evaluation.md §Metrics), on an Axes or written as PNG.

A *systems* argument is a mapping ``name → (genuine, impostor)``; ``impostor`` is a score array or an
:class:`~veriloss.metrics.ImpostorSummary` (the all-pairs protocol's reduced form). The curves are exact ROC points
(accept = score ≥ t) drawn as a staircase in the order of increasing FAR: at any FAR x the curve shows the TAR of
the last operating point with FAR ≤ x, which is the TAR@FAR=x definition. The exact operating point of every
marked TAR@FAR=f (its admitted impostors and accepted genuines) is a vertex of the curve, so each marker
(f, TAR) lies on the drawn line, for score arrays and summaries alike. Choices:

* ROC: log FAR axis to 1, starting at ``far_min`` (default 1e-6, lower if a smaller FAR is asked; a decade lower
  when a marker sits there) or, when no system reaches that far down, a decade below the smallest FAR = 1/N
  (N = impostor scores); the operating points with FAR = 0 start the curve at FAR = 1/N (TAR@FAR below 1/N is
  not measurable), marked by a dotted line. The TAR axis starts at the tenth below the lowest TAR shown.
* DET: FAR and FRR on normal-deviate (probit) axes, Φ⁻¹(rate), with tick labels in %; FAR from the same lower
  limit to 50%; the FRR range follows the data (at least 1%–50%); the EER is marked on the FAR = FRR diagonal.
* TAR@FAR markers are drawn for measurable FARs only (on the DET, where 0 < TAR < 1); the not-measurable ones are
  listed under the plot.
* ``intervals`` (name → :class:`~veriloss.metrics.BootstrapResult`) draws each marked TAR@FAR's bootstrap interval
  as a vertical bar through the marker (on the DET, over FRR = 1 − TAR) and, on the DET, the EER's interval as a
  bar along the FAR = FRR diagonal.
* On its own figure the systems' legend (name and EER) sits below the axes; on an ``ax`` given by the caller one
  legend inside the axes holds everything. Names longer than 80 characters are shortened in the middle.
* Curves with more than ``max_points`` points are thinned for drawing to points on a log-FAR grid and a linear
  TAR grid (kept points are exact operating points). From an ImpostorSummary the points are its exact bin
  boundaries plus every threshold above its smallest kept top score (exact: the low-FAR end is drawn point by
  point). Impostor arrays above 2^22 scores are reduced to such a summary (keeping the top 2^16) first.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from ..metrics import DET, EER, ImpostorSummary, TarAtFar, eer, roc, summarize, tar_at_far
from ..metrics._scores import as_scores, check_fars
from ._atomic import new_figure, save_figure
from .tables import DEFAULT_FARS, _far_label

__all__ = ["det_plot", "roc_plot"]

_SUMMARIZE_ABOVE = 1 << 22
_SUMMARY_TOP = 1 << 16
_DET_TICKS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9)
_DET_TICKS += (0.95, 0.99, 0.999, 0.9999)
_OFF_AXIS = 1e-12  # a DET rate of 0 (or 1) is drawn at this distance from it: off the axes, not at ±inf


@dataclass
class _Curve:
    name: str
    far: np.ndarray  # exact operating points in order of increasing FAR (and TAR), with the marked ones
    tar: np.ndarray
    n_impostor: int
    marks: list[TarAtFar]  # the measurable TAR@FAR points
    eer: EER


def _systems(systems: Mapping[str, tuple[object, object]]) -> list[tuple[str, np.ndarray, object]]:
    if not isinstance(systems, Mapping) or not systems:
        raise ValueError("systems must be a non-empty mapping name → (genuine, impostor)")
    out = []
    for name, pair in systems.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"systems[{name!r}] must be a (genuine, impostor) pair")
        g = as_scores(pair[0], f"genuine scores of {name!r}")
        imp = pair[1] if isinstance(pair[1], ImpostorSummary) else as_scores(pair[1], f"impostor scores of {name!r}")
        out.append((str(name), g, imp))
    return out


def _sorted_points(fps: np.ndarray, tps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Operating points (counts) of one ROC in order of increasing FAR then TAR, without repeats."""
    fps, tps = np.asarray(fps, dtype=np.int64), np.asarray(tps, dtype=np.int64)
    order = np.lexsort((tps, fps))
    fps, tps = fps[order], tps[order]
    keep = np.r_[True, (np.diff(fps) != 0) | (np.diff(tps) != 0)]
    return fps[keep], tps[keep]


def _top_points(gs: np.ndarray, imp: ImpostorSummary) -> tuple[np.ndarray, np.ndarray]:
    """Exact operating points (#impostors ≥ t, #genuine ≥ t) at every score t above the summary's smallest kept top
    score (every score if it keeps them all): there, #impostors ≥ t is counted in the exact top."""
    top = imp.top[::-1]  # ascending
    cut = -math.inf if top.size >= imp.n else top[0]
    thr = np.unique(np.concatenate([top[top > cut], gs[gs > cut].astype(np.float64)]))
    return top.size - np.searchsorted(top, thr, side="left"), gs.size - np.searchsorted(gs, thr, side="left")


def _roc_points(
    g: np.ndarray, imp: object, max_points: int, marks: Sequence[TarAtFar] = ()
) -> tuple[np.ndarray, np.ndarray, int]:
    """(FAR, TAR) of exact operating points in order of increasing FAR, thinned to about ``max_points``, plus the
    operating points of ``marks``; and the number of impostors."""
    if not isinstance(imp, ImpostorSummary) and imp.size > _SUMMARIZE_ABOVE:
        imp = summarize(g, imp, top=_SUMMARY_TOP, p_targets=(), auc=False, eer=False)
    r = roc(g, imp)
    fps, tps = r.false_accepts, r.true_accepts
    if isinstance(imp, ImpostorSummary) and imp.top.size:
        f2, t2 = _top_points(np.sort(g), imp)
        fps, tps = _sorted_points(np.concatenate([fps, f2]), np.concatenate([tps, t2]))
    n = fps.size
    if n > max_points:
        far = fps / r.n_impostor
        pos = far[far > 0]
        lo = float(pos.min()) if pos.size else 1.0
        grid_f = np.geomspace(lo, 1.0, 2 * max_points // 3)
        idx_f = np.searchsorted(far, grid_f, side="right") - 1  # last point with FAR ≤ grid value
        idx_t = np.searchsorted(tps, np.linspace(0.0, 1.0, max_points // 3) * r.n_genuine, side="left")
        idx = np.unique(np.clip(np.concatenate([[0, n - 1], idx_f, idx_t]), 0, n - 1))
        fps, tps = fps[idx], tps[idx]
    if marks:
        fps = np.concatenate([fps, [p.impostors_admitted for p in marks]])
        tps = np.concatenate([tps, [p.genuine_accepted for p in marks]])
        fps, tps = _sorted_points(fps, tps)
    return fps / r.n_impostor, tps / r.n_genuine, r.n_impostor


def _short(name: str, width: int = 80) -> str:
    """Display name: long names keep their start and end around an ellipsis."""
    if len(name) <= width:
        return name
    half = (width - 1) // 2
    return name[:half] + "…" + name[-half:]


def _notes(bad: dict[tuple[tuple[str, ...], int], list[str]]) -> list[str]:
    """One line per group of systems with the same not-measurable FARs and impostor count."""
    if not bad:
        return []
    lines = ["not measurable (FAR·N < 1, N = impostor scores):"]
    for (fars, n), names in bad.items():
        who = "" if len(bad) == 1 else ": " + ", ".join(_short(x, 40) for x in names)
        lines.append(f"  TAR@FAR={', '.join(fars)} with N = {n:,}{who}")
    return lines


def _curves(systems: Mapping, fars: list[float], max_points: int) -> tuple[list[_Curve], dict]:
    """Each system's drawn points, marks and EER; ``bad`` groups the not-measurable FARs for the note. A summary
    must keep the top ⌊f·N⌋+1 impostors (the all-pairs protocol builds it so)."""
    curves, bad = [], {}
    for name, g, imp in _systems(systems):
        pts = tar_at_far(g, imp, fars)
        n_imp = pts[0].n_impostor
        missing = tuple(f"{p.far_target:g}" for p in pts if not p.measurable)
        if missing:
            bad.setdefault((missing, n_imp), []).append(name)
        marks = [p for p in pts if p.measurable]
        far, tar, _ = _roc_points(g, imp, max_points, marks)
        curves.append(_Curve(name, far, tar, n_imp, marks, eer(g, imp)))
    return curves, bad


def _from_one_over_n(c: _Curve) -> tuple[np.ndarray, np.ndarray]:
    """The curve's points with those at FAR = 0 replaced by one at FAR = 1/N with the largest of their TARs: the
    drawn curve starts where TAR@FAR becomes measurable."""
    j = int(np.searchsorted(c.far, 0.0, side="right")) - 1  # the last point with FAR = 0 (the ROC starts at 0, 0)
    return np.r_[1.0 / c.n_impostor, c.far[j + 1 :]], c.tar[j:]


def _staircase(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the "steps-post" polyline through the points: (x0, y0), (x1, y0), (x1, y1), (x2, y1), …"""
    return np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]


def _far_floor(curves: list[_Curve], lo: float) -> float:
    """The FAR axis starts at ``lo``, a decade lower when a marked FAR sits there (its marker would be cut in half),
    and never lower than needed: a decade at least half a decade below the smallest 1/N."""
    floor = 10.0 ** math.floor(math.log10(min(1.0 / c.n_impostor for c in curves)) - 0.5)
    if any(p.far_target <= lo * (1 + 1e-9) for c in curves for p in c.marks):
        lo /= 10
    return max(lo, floor)


def _axes(ax, path, n_lines: int, width: float, height: float):
    """(ax, own): the caller's axes, or a new figure's (off pyplot when it goes to a file)."""
    if ax is not None:
        return ax, False
    fig = new_figure((width, height + 0.17 * n_lines), for_file=path is not None, layout="constrained")
    return fig.add_subplot(), True


def _one_over_n(ax, curves: list[_Curve], where=lambda v: v) -> None:
    """A dotted line at FAR = 1/N per distinct N: in the system's colour, grey when systems share it."""
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(curves):
        groups.setdefault(c.n_impostor, []).append(i)
    for n, idx in groups.items():
        color = _line_style(idx[0])["color"] if len(idx) == 1 else "0.4"
        ax.axvline(float(where(1.0 / n)), color=color, ls=":", lw=0.8)


def _finish(ax, own: bool, path, title, systems: list, keys: list, bad: dict, key_loc: str):
    """Key to the markers inside the axes; systems (and the not-measurable note) in a legend below them on an own
    figure, in the same legend on the caller's axes. Written to ``path`` when given (returned), else the Axes."""
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    notes = [Line2D([], [], lw=0, label=line) for line in _notes(bad)]
    if own:
        ax.add_artist(ax.legend(handles=keys, fontsize=7, loc=key_loc))
        ax.figure.legend(handles=systems + notes, loc="outside lower center", fontsize=7, frameon=False,
                         handlelength=2.0)  # fmt: skip
    else:
        ax.legend(handles=systems + keys + notes, fontsize=7, loc=key_loc)
    if path is None:
        return ax
    return save_figure(ax.figure.figure, path, close=own)


def roc_plot(
    systems: Mapping[str, tuple[object, object]],
    path: str | os.PathLike | None = None,
    far: Sequence[float] = DEFAULT_FARS,
    title: str | None = None,
    far_min: float = 1e-6,
    max_points: int = 6000,
    ax: Axes | None = None,
    intervals: Mapping[str, object] | None = None,
) -> Path | Axes:
    """ROC curves (TAR against FAR on a log axis) of several systems, with each one's TAR@FAR=f points marked.

    TAR(t) = #{genuine ≥ t}/G against FAR(t) = #{impostor ≥ t}/I at every distinct threshold (layout choices in
    the module docstring). Draws on ``ax`` when given, else on a new figure. Writes a PNG atomically when ``path``
    is given and returns ``path``; otherwise returns the Axes (a pyplot figure if it made one).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ax = roc_plot({"toy": (rng.normal(2, 1, 200), rng.normal(0, 1, 5000))}, far=[1e-3, 1e-2])
    >>> ax.get_xscale(), float(ax.get_xlim()[1])
    ('log', 1.0)
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    fars, _ = check_fars(list(far))
    curves, bad = _curves(systems, fars, max_points)
    x_lo = _far_floor(curves, min([far_min, *fars]))
    ax, own = _axes(ax, path, len(curves) + len(_notes(bad)), 6.4, 4.8)
    handles, shown = [], []
    for i, c in enumerate(curves):
        style = _line_style(i)
        f, t = _from_one_over_n(c)
        label = f"{_short(c.name)} (EER {100 * c.eer.eer:.2f}%)"
        handles += ax.plot(*_staircase(f, t), lw=1.4, label=label, **style)
        shown.append(t[max(0, int(np.searchsorted(f, x_lo, side="right")) - 1)])
        if c.marks:
            ax.plot([p.far_target for p in c.marks], [p.tar for p in c.marks], "o", color=style["color"], ms=4)
        for f, lo, hi in _tar_bands(intervals, c):
            ax.vlines(f, lo, hi, color=style["color"], lw=1.2)
            shown.append(lo)
    _one_over_n(ax, curves)
    ax.set_xscale("log")
    ax.set_xlim(x_lo, 1.0)
    ax.set_ylim(max(0.0, math.floor(10 * (min(shown) - 0.02)) / 10), 1.005)
    ax.set_xlabel("false acceptance rate (FAR)")
    ax.set_ylabel("true acceptance rate (TAR)")
    keys = [
        Line2D([], [], marker="o", ls="", color="0.4", ms=4, label="TAR@FAR"),
        Line2D([], [], ls=":", color="0.4", lw=0.8, label="FAR = 1/N"),
    ]
    keys += _band_key(intervals)
    return _finish(ax, own, path, title, handles, keys, bad, "lower right")


def _check_intervals(intervals: Mapping[str, object] | None) -> dict:
    from ..metrics.bootstrap import BootstrapResult

    if intervals is None:
        return {}
    if not isinstance(intervals, Mapping) or not all(isinstance(v, BootstrapResult) for v in intervals.values()):
        raise ValueError("intervals must map system names to BootstrapResult (veriloss.metrics.bootstrap_scores …)")
    return dict(intervals)


def _tar_bands(intervals: Mapping[str, object] | None, c: _Curve) -> list[tuple[float, float, float]]:
    """(FAR, low, high) of the bootstrap interval at each of the curve's marked TAR@FAR points that has one."""
    boot = _check_intervals(intervals).get(c.name)
    if boot is None:
        return []
    out = []
    for p in c.marks:
        m = boot.metrics.get(f"tar@far={p.far_target:g}")
        if m is not None and math.isfinite(m.low) and math.isfinite(m.high):
            out.append((p.far_target, m.low, m.high))
    return out


def _band_key(intervals: Mapping[str, object] | None) -> list[Line2D]:
    boots = list(_check_intervals(intervals).values())
    if not boots:
        return []
    return [Line2D([], [], ls="-", color="0.4", lw=1.2, label=f"{100 * boots[0].level:g}% subject bootstrap")]


def _line_style(i: int) -> dict:
    """Colour and dash of the i-th curve: ten colours, then the same colours dashed, dash-dotted, dotted."""
    return {"color": f"C{i % 10}", "ls": ("-", "--", "-.", (0, (1, 1)))[(i // 10) % 4]}


def _probit(x: np.ndarray | Sequence[float]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return DET(a, a, a).probit()[0]


def _det_points(c: _Curve) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, FRR) to draw: from FAR = 1/N, and up to the first point with FRR = 0; rates of 0 or 1 are drawn just
    off the axes (their probit is infinite)."""
    far, tar = _from_one_over_n(c)
    stop = int(np.searchsorted(tar, 1.0, side="left"))  # TAR rises with FAR
    far, frr = far[: stop + 1], 1.0 - tar[: stop + 1]
    return np.minimum(far, 1.0 - _OFF_AXIS), np.clip(frr, _OFF_AXIS, 1.0 - _OFF_AXIS)


def det_plot(
    systems: Mapping[str, tuple[object, object]],
    path: str | os.PathLike | None = None,
    far: Sequence[float] = DEFAULT_FARS,
    title: str | None = None,
    far_min: float = 1e-6,
    max_points: int = 6000,
    ax: Axes | None = None,
    intervals: Mapping[str, object] | None = None,
) -> Path | Axes:
    """DET curves (FRR against FAR, both on normal-deviate axes labelled in %) of several systems.

    Axes are Φ⁻¹(FAR) and Φ⁻¹(FRR) with FRR = 1 − TAR (Martin et al., *The DET curve in assessment of detection
    task performance*, Eurospeech 1997). Marks each system's EER and measurable TAR@FAR=f points (at FRR = 1 − TAR).
    Draws on ``ax`` when given, else on a new figure. Writes a PNG atomically when ``path`` is given and returns
    ``path``; otherwise returns the Axes.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ax = det_plot({"toy": (rng.normal(2, 1, 200), rng.normal(0, 1, 5000))}, far=[1e-2])
    >>> ax.get_xlabel()
    'false acceptance rate (%)'
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    fars, _ = check_fars(list(far))
    curves, bad = _curves(systems, fars, max_points)
    x_lo = _far_floor(curves, min([far_min, *fars]))
    ax, own = _axes(ax, path, len(curves) + len(_notes(bad)), 6.4, 5.2)
    handles = []
    frr_seen: list[float] = []
    for i, c in enumerate(curves):
        style = _line_style(i)
        color = style["color"]
        f, r = _det_points(c)
        view = (f <= 0.5) & (r > _OFF_AXIS) & (r < 1 - _OFF_AXIS)
        view &= np.r_[f[1:] >= x_lo, True]  # a point whose segment reaches into the axes
        if view.any():  # FRR falls as FAR rises: the first point in view has the largest FRR, the last the least
            frr_seen += [float(r[view][0]), float(r[view][-1])]
        label = f"{_short(c.name)} (EER {100 * c.eer.eer:.2f}%)"
        handles += ax.plot(*_staircase(_probit(f), _probit(r)), lw=1.4, label=label, **style)
        if 0 < c.eer.eer < 1:
            ax.plot(_probit([c.eer.eer]), _probit([c.eer.eer]), "s", color=color, ms=4, mfc="none")
        ok = [p for p in c.marks if 0 < p.tar < 1]  # FRR = 0 or 1 is off the probit axes
        if ok:
            ax.plot(_probit([p.far_target for p in ok]), _probit([1 - p.tar for p in ok]), "o", color=color, ms=4)
        for f, lo, hi in _tar_bands(intervals, c):
            y = _probit(np.clip([1 - hi, 1 - lo], _OFF_AXIS, 1 - _OFF_AXIS))
            ax.vlines(_probit([f])[0], y[0], y[1], color=color, lw=1.2)
        boot = _check_intervals(intervals).get(c.name)
        if boot is not None and 0 < boot.eer.low and boot.eer.high < 1:
            d = _probit([boot.eer.low, boot.eer.high])
            ax.plot(d, d, color=color, lw=2.5, alpha=0.6)
    _one_over_n(ax, curves, where=lambda v: _probit([v])[0])
    y_min = min([0.01, *frr_seen])
    y_max = max([0.5, *frr_seen])
    y_lo = max([v for v in _DET_TICKS if v <= y_min] or [_DET_TICKS[0]])
    y_hi = min([v for v in _DET_TICKS if v >= y_max] or [_DET_TICKS[-1]])
    for axis, (a, b) in (("x", (x_lo, 0.5)), ("y", (y_lo, y_hi))):
        ticks = [v for v in _DET_TICKS if a <= v <= b]
        labels = [_far_label(100 * v) for v in ticks]  # in %: 1e-4, 0.001, …, 99.99
        if axis == "x":
            ax.set_xticks(_probit(ticks), labels, fontsize=7, rotation=45)
            ax.set_xlim(*_probit([a, b]))
        else:
            ax.set_yticks(_probit(ticks), labels, fontsize=7)
            ax.set_ylim(*_probit([a, b]))
    d = _probit([max(x_lo, y_lo), min(0.5, y_hi)])
    ax.plot(d, d, color="0.6", lw=0.7, ls="--")
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("false rejection rate (%)")
    keys = [
        Line2D([], [], marker="s", ls="", color="0.4", ms=4, mfc="none", label="EER"),
        Line2D([], [], marker="o", ls="", color="0.4", ms=4, label="TAR@FAR"),
        Line2D([], [], ls="--", color="0.6", lw=0.7, label="FAR = FRR"),
        Line2D([], [], ls=":", color="0.4", lw=0.8, label="FAR = 1/N"),
    ]
    keys += _band_key(intervals)
    return _finish(ax, own, path, title, handles, keys, bad, "upper right")
