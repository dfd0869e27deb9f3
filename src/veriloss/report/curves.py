"""Training curves (loss, batch accuracy, learning rate, α statistics, validation) from a trainer's history."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["plot_training_curves"]

_PANELS = (
    ("loss", "training loss"),
    ("accuracy", "batch accuracy"),
    ("lr", "learning rate"),
    ("support_size", "α support size"),
    ("py_zero", "fraction with p_y = 0"),
    ("val_eer", "validation EER"),
)


def plot_training_curves(history: list[dict], path: str | Path) -> Path | None:
    """One panel per logged quantity present in ``history``; written atomically as PNG. None if nothing to plot."""
    panels = [(k, t) for k, t in _PANELS if any(k in row for row in history)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        rows = [r for r in history if key in r]
        ax.plot([r["step"] for r in rows], [r[key] for r in rows], marker="o" if key == "val_eer" else None, lw=1.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
