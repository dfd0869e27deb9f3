"""Checkpoints written atomically (temporary file, fsync, rename): an interrupted write leaves the previous intact."""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["CHECKPOINT_NAME", "load_checkpoint", "save_atomic", "save_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


def save_atomic(obj: object, path: str | Path) -> Path:
    """``torch.save`` to ``path`` through a temporary file in the same folder, fsynced, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_checkpoint(state: dict, out_dir: str | Path) -> Path:
    """Write the trainer state to ``out_dir/checkpoint.pt`` atomically."""
    return save_atomic({"format_version": FORMAT_VERSION, **state}, Path(out_dir) / CHECKPOINT_NAME)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`; a missing or corrupt file raises a ``ValueError``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(f"checkpoint {str(path)!r} is unreadable or corrupt: {err}") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} is not a veriloss checkpoint (format version {FORMAT_VERSION})")
    return state
