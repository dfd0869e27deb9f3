"""The range checks the packaged dataset builders share (their types are checked by :mod:`veriloss._params`)."""

from __future__ import annotations

import pathlib
from typing import Any

from .._params import PathLike

__all__ = ["PathLike", "at_least", "existing_path", "positive_seconds"]


def at_least(key: str, value: Any, low: int) -> int:
    """``value`` of ``data.<key>``: an integer ≥ ``low``; ``ValueError`` naming the key otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"data.{key} must be an integer ≥ {low}, got {value!r}")
    return value


def positive_seconds(key: str, value: Any) -> float | None:
    """``value`` of ``data.<key>``: a positive number of seconds as a float, or None (null)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"data.{key} must be a positive number of seconds (or null), got {value!r}")
    return float(value)


def existing_path(key: str, value: Any, name: str, what: str) -> pathlib.Path:
    """``value`` of ``data.<key>`` as an existing path (``~`` expanded); ``ValueError`` when it is unset (null) or
    missing, naming the key, the dataset ``name`` and ``what`` was expected."""
    if value is None:
        raise ValueError(f"data.{key} is required for {name!r} ({what})")
    path = pathlib.Path(value).expanduser()
    if not path.exists():
        where = "" if path.is_absolute() else " (a relative path starts from --data-root / $VERILOSS_DATA when given)"
        raise ValueError(f"data.{key} = {str(path)!r} does not exist; expected {what}{where}")
    return path
