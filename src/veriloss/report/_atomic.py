"""Atomic file output for reports (figures here; text and the rest in :mod:`veriloss._io`)."""

from __future__ import annotations

import os
from pathlib import Path

from .._io import atomic_write, write_text

__all__ = ["atomic_write", "save_figure", "write_text"]


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    finally:
        plt.close(fig)
