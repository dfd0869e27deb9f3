"""Training curves (loss, batch accuracy, learning rate, α statistics, validation) from a trainer's history.

A grid of panels, two per row, all on one step axis (0 to the last step): one panel per logged training quantity
(the known ones first, then any other numeric key of the training rows), and the validation metrics (``val_eer``,
``val_tar@f``) together on their own panel. Series of fewer than 30 points are drawn with markers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ._atomic import new_figure, save_figure

__all__ = ["plot_training_curves"]

_KNOWN = {
    "loss": "training loss",
    "accuracy": "batch accuracy",
    "lr": "learning rate",
    "support_size": "α support size",
    "py_zero": "fraction with p_y = 0",
}
_NOT_PLOTTED = {"step", "epoch", "seconds"}
_MARKERS_BELOW = 30


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _panels(history: list[dict]) -> list[tuple[str, list[str]]]:
    """(title, keys) of each panel: training quantities one each, the validation metrics together."""
    train, val = [], []
    for row in history:
        for key, value in row.items():
            if key in _NOT_PLOTTED or not _is_number(value):
                continue
            group = val if key.startswith("val_") else train
            if key not in group:
                group.append(key)
    train.sort(key=lambda k: list(_KNOWN).index(k) if k in _KNOWN else len(_KNOWN))  # stable: others as seen
    panels = [(_KNOWN.get(k, k), [k]) for k in train]
    if val:
        val.sort(key=lambda k: k != "val_eer")
        panels.append(("validation", val))
    return panels


def _label(key: str) -> str:
    """A validation series' legend label: val_eer → EER, val_tar@0.001 → TAR@FAR=0.001."""
    name = key[4:]
    return "EER" if name == "eer" else name.replace("tar@", "TAR@FAR=")


def plot_training_curves(
    history: list[dict], path: str | os.PathLike | None = None, title: str | None = None, fig=None
):
    """The training-curve grid of ``history`` (the trainer's rows). Draws into ``fig`` (a Figure or SubFigure)
    when given, else a new figure; writes a PNG atomically when ``path`` is given and returns ``path``, otherwise
    the figure. None (and no file) when the history holds nothing to plot.

    >>> rows = [{"step": s, "epoch": 0, "loss": 5.0 / s, "lr": 0.1} for s in (10, 20, 30)]
    >>> fig = plot_training_curves(rows + [{"step": 30, "epoch": 1, "val_eer": 0.2, "val_tar@0.001": 0.4}])
    >>> [ax.get_title() for ax in fig.axes]
    ['training loss', 'learning rate', 'validation']
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    panels = _panels(history)
    if not panels:
        return None
    cols = 1 if len(panels) == 1 else 2
    rows = math.ceil(len(panels) / cols)
    own = fig is None
    if own:
        height = 2.7 * rows + (0.35 if title else 0.0)
        fig = new_figure((4.8 * cols, height), for_file=path is not None, layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    last = max(int(r["step"]) for r in history if "step" in r)
    for ax, (name, keys) in zip(axes, panels):
        for i, key in enumerate(keys):
            pts = [(r["step"], r[key]) for r in history if _is_number(r.get(key))]
            marker = "o" if len(pts) < _MARKERS_BELOW else None
            label = _label(key) if key.startswith("val_") else None
            ax.plot(*zip(*pts), marker=marker, ms=3.5, lw=1.2, color=f"C{i}", label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, max(1, last) * 1.03)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if name == "validation":
            ax.set_ylabel("rate", fontsize=8)
            ax.legend(fontsize=7)
    for ax in axes[len(panels) :]:  # the rest of the last row
        ax.remove()
    if title:
        fig.suptitle(title, fontsize=10)
    if path is None:
        return fig
    return save_figure(fig.figure, Path(path), close=own)
