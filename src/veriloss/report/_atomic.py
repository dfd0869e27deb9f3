"""Figures for reports and atomic file output (figures here; text and the rest in :mod:`veriloss._io`).

The plot functions never choose a matplotlib backend: a figure they write to a file is a plain
:class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot state, so a notebook's backend and its open figures are
left alone); a figure they return for display is made by pyplot, in whatever backend the session uses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .._io import atomic_write, write_text

__all__ = ["atomic_write", "new_figure", "save_figure", "write_text"]


def new_figure(figsize: tuple[float, float], for_file: bool = True, **kwargs):
    """A figure of ``figsize`` inches: off pyplot on an Agg canvas when ``for_file``, else ``pyplot.figure``.

    >>> fig = new_figure((2, 1))
    >>> type(fig.canvas).__name__, fig.canvas.manager is None
    ('FigureCanvasAgg', True)
    """
    if not for_file:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, **kwargs)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 110, close: bool = True) -> Path:
    """Save a matplotlib figure as PNG atomically; with ``close``, a pyplot-managed figure is closed after."""
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    finally:
        plt = sys.modules.get("matplotlib.pyplot")
        if close and plt is not None and getattr(fig.canvas, "manager", None) is not None:
            plt.close(fig)
