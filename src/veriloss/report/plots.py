"""ROC and DET plots of one or several systems (docs/EVALUATION.md §Metrics), written as PNG.

A *systems* argument is a mapping ``name → (genuine, impostor)``; ``impostor`` is a score array or an
:class:`~veriloss.metrics.ImpostorSummary` (the all-pairs protocol's reduced form). The curves are the exact ROC
points of :func:`veriloss.metrics.roc` (accept = score ≥ t), drawn as a staircase ("steps-post" in the order of
increasing FAR): at any FAR x the curve shows the TAR of the last operating point with FAR ≤ x, which is exactly
the TAR@FAR=x definition, so the marked TAR@FAR points lie on the curve. Choices:

* ROC: log FAR axis from ``far_min`` (default 1e-6, lower if a smaller FAR is asked) to 1; points with FAR = 0
  are not drawn (they are off a log axis, and TAR@FAR below 1/N is not measurable); a dotted vertical line marks
  FAR = 1/N for each system.
* DET: FAR and FRR on normal-deviate (probit) axes, Φ⁻¹(rate), with tick labels in %; FAR from ``far_min`` to 50%;
  the FRR range follows the data (at least 1%–50%); the EER is marked on the FAR = FRR diagonal.
* TAR@FAR markers are drawn for measurable FARs only; the not-measurable ones are listed under the plot.
* The systems' legend (name and EER) sits below the axes; names longer than 80 characters are shortened with an
  ellipsis in the middle.
* Curves with more than ``max_points`` points are thinned for drawing to points on a log-FAR grid and a linear
  TAR grid (kept points are exact operating points). Impostor arrays above 2^22 scores are reduced to an
  :class:`~veriloss.metrics.ImpostorSummary` histogram first, whose bin boundaries are exact ROC points.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from ..metrics import DET, ImpostorSummary, TarAtFar, eer, roc, summarize, tar_at_far
from ..metrics._scores import as_scores, check_fars
from ._atomic import save_figure
from .tables import DEFAULT_FARS

__all__ = ["det_plot", "roc_plot"]

_SUMMARIZE_ABOVE = 1 << 22
_DET_TICKS = (1e-6, 1e-5, 1e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99, 0.999)


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


def _roc_points(g: np.ndarray, imp: object, max_points: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(FAR, TAR) in order of increasing FAR, thinned to about ``max_points``; and the number of impostors."""
    if not isinstance(imp, ImpostorSummary) and imp.size > _SUMMARIZE_ABOVE:
        imp = summarize(g, imp, p_targets=(), auc=False, eer=False)
    r = roc(g, imp)
    far, tar = r.far, r.tar
    n = far.size
    if n > max_points:
        pos = far[far > 0]
        lo = float(pos.min()) if pos.size else 1.0
        grid_f = np.geomspace(lo, 1.0, 2 * max_points // 3)
        idx_f = np.searchsorted(far, grid_f, side="right") - 1  # last point with FAR ≤ grid value
        idx_t = np.searchsorted(tar, np.linspace(0.0, 1.0, max_points // 3), side="left")
        idx = np.unique(np.clip(np.concatenate([[0, n - 1], idx_f, idx_t]), 0, n - 1))
        far, tar = far[idx], tar[idx]
    return far, tar, r.n_impostor


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


def _finish(fig, ax, path, title, systems: list, keys: list, bad: dict) -> Path:
    """Key to the markers inside the axes; systems (and the not-measurable note) in a legend below them."""
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.add_artist(ax.legend(handles=keys, fontsize=7, loc="lower right" if ax.get_xscale() == "log" else "upper right"))
    handles = systems + [Line2D([], [], lw=0, label=line) for line in _notes(bad)]
    fig.legend(handles=handles, loc="outside lower center", fontsize=7, frameon=False, handlelength=2.0)
    return save_figure(fig, path)


def _figure(n_lines: int, width: float, height: float):
    return plt.subplots(figsize=(width, height + 0.17 * n_lines), layout="constrained")


def _tar_points(g: np.ndarray, imp: object, fars: list[float], name: str, n_imp: int, bad: dict) -> list[TarAtFar]:
    """The measurable TAR@FAR points; the others are recorded in ``bad`` for the note. A summary must keep the
    top ⌊f·N⌋+1 impostors (the all-pairs protocol builds it so)."""
    pts = tar_at_far(g, imp, fars)
    missing = tuple(f"{p.far_target:g}" for p in pts if not p.measurable)
    if missing:
        bad.setdefault((missing, n_imp), []).append(name)
    return [p for p in pts if p.measurable]


def roc_plot(
    systems: Mapping[str, tuple[object, object]],
    path: str | os.PathLike,
    far: Sequence[float] = DEFAULT_FARS,
    title: str | None = None,
    far_min: float = 1e-6,
    max_points: int = 6000,
) -> Path:
    """ROC curves (TAR against FAR on a log axis from ``far_min`` to 1) of several systems on one PNG.

    TAR(t) = #{genuine ≥ t}/G against FAR(t) = #{impostor ≥ t}/I at every distinct threshold, with each system's
    measurable TAR@FAR=f points marked. Returns ``path`` (written atomically).
    """
    fars, _ = check_fars(list(far))
    items = _systems(systems)
    lo = min([far_min, *fars])
    curves = [(name, g, imp, *_roc_points(g, imp, max_points)) for name, g, imp in items]
    bad: dict = {}
    pts = [_tar_points(g, imp, fars, name, n, bad) for name, g, imp, _, _, n in curves]
    fig, ax = _figure(len(items) + len(_notes(bad)), 6.4, 4.8)
    handles = []
    for i, ((name, g, imp, f, t, n_imp), ok) in enumerate(zip(curves, pts)):
        style = _line_style(i)
        color = style["color"]
        keep = f > 0
        label = f"{_short(name)} (EER {100 * eer(g, imp).eer:.2f}%)"
        handles += ax.plot(f[keep], t[keep], drawstyle="steps-post", lw=1.4, label=label, **style)
        ax.axvline(1.0 / n_imp, color=color, ls=":", lw=0.8)
        if ok:
            ax.plot([p.far_target for p in ok], [p.tar for p in ok], "o", color=color, ms=4)
    ax.set_xscale("log")
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(0.0, 1.005)
    ax.set_xlabel("false acceptance rate (FAR)")
    ax.set_ylabel("true acceptance rate (TAR)")
    keys = [
        Line2D([], [], marker="o", ls="", color="0.4", ms=4, label="TAR@FAR"),
        Line2D([], [], ls=":", color="0.4", lw=0.8, label="FAR = 1/N"),
    ]
    return _finish(fig, ax, path, title, handles, keys, bad)


def _line_style(i: int) -> dict:
    """Colour and dash of the i-th curve: ten colours, then the same colours dashed, dash-dotted, dotted."""
    return {"color": f"C{i % 10}", "ls": ("-", "--", "-.", (0, (1, 1)))[(i // 10) % 4]}


def _probit(x: np.ndarray | Sequence[float]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return DET(a, a, a).probit()[0]


def det_plot(
    systems: Mapping[str, tuple[object, object]],
    path: str | os.PathLike,
    far: Sequence[float] = DEFAULT_FARS,
    title: str | None = None,
    far_min: float = 1e-6,
    max_points: int = 6000,
) -> Path:
    """DET curves (FRR against FAR, both on normal-deviate axes labelled in %) of several systems on one PNG.

    Axes are Φ⁻¹(FAR) and Φ⁻¹(FRR) with FRR = 1 − TAR (Martin et al., *The DET curve in assessment of detection
    task performance*, Eurospeech 1997). Marks each system's EER and measurable TAR@FAR=f points (at FRR = 1 − TAR).
    Returns ``path`` (written atomically).
    """
    fars, _ = check_fars(list(far))
    items = _systems(systems)
    x_lo = min([far_min, *fars])
    curves = [(name, g, imp, *_roc_points(g, imp, max_points)) for name, g, imp in items]
    bad: dict = {}
    pts = [_tar_points(g, imp, fars, name, n, bad) for name, g, imp, _, _, n in curves]
    fig, ax = _figure(len(items) + len(_notes(bad)), 6.4, 5.2)
    handles = []
    frr_seen: list[float] = []
    for i, ((name, g, imp, f, t, _), ok) in enumerate(zip(curves, pts)):
        style = _line_style(i)
        color = style["color"]
        r = 1.0 - t
        keep = (f > 0) & (r > 0)
        view = keep & (f >= x_lo) & (f <= 0.5)
        if view.any():  # FRR falls as FAR rises: the first point in view has the largest FRR, the last the least
            frr_seen += [float(r[view][0]), float(r[view][-1])]
        e = eer(g, imp)
        label = f"{_short(name)} (EER {100 * e.eer:.2f}%)"
        handles += ax.plot(_probit(f[keep]), _probit(r[keep]), drawstyle="steps-post", lw=1.4, label=label, **style)
        if 0 < e.eer < 1:
            ax.plot(_probit([e.eer]), _probit([e.eer]), "s", color=color, ms=4, mfc="none")
        ok = [p for p in ok if p.tar < 1]
        if ok:
            ax.plot(_probit([p.far_target for p in ok]), _probit([1 - p.tar for p in ok]), "o", color=color, ms=4)
    y_min = min([0.01, *frr_seen])
    y_max = max([0.5, *frr_seen])
    y_lo = max([v for v in _DET_TICKS if v <= y_min] or [_DET_TICKS[0]])
    y_hi = min([v for v in _DET_TICKS if v >= y_max] or [_DET_TICKS[-1]])
    for axis, (a, b) in (("x", (x_lo, 0.5)), ("y", (y_lo, y_hi))):
        ticks = [v for v in _DET_TICKS if a <= v <= b]
        labels = [f"{100 * v:g}" for v in ticks]
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
    ]
    return _finish(fig, ax, path, title, handles, keys, bad)
