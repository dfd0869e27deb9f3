"""Checkpoints of :class:`veriloss.train.Trainer`: plain data (tensors, numbers, strings, lists, dicts), written
atomically and read without running code.

Writing goes through a temporary file, fsync and rename: an interrupted write leaves the previous checkpoint intact.
Reading uses ``torch.load(weights_only=True)``, whose unpickler admits only tensors and Python containers, so a
crafted file cannot execute code; the result is then checked against the format (version, keys, types) before any
of it is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ._io import atomic_write

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT_VERSION",
    "check_checkpoint",
    "load_checkpoint",
    "plain",
    "save_atomic",
    "save_checkpoint",
]

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1

#: what every checkpoint holds, with the type each value must have (checked before use)
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "config": dict,
    "step": int,
    "epoch": int,
    "batch_in_epoch": int,
    "total_steps": int,
    "finished": bool,
    "model_args": (dict, type(None)),  # None: a backbone of the user's own (not from the model registry)
    "backbone": dict,
    "loss": dict,
    "optimizer": dict,
    "scheduler": dict,
    "scaler": dict,
    "rng": torch.Tensor,
    "history": list,
    "num_classes": int,
}
#: written by newer trainers; absent from older checkpoints (their default is used)
OPTIONAL: dict[str, type | tuple[type, ...]] = {"cuda_rng": list, "config_changes": list}


def plain(obj: object) -> object:
    """``obj`` with numpy scalars and arrays, tuples and paths turned into the plain types a safe load admits."""
    if isinstance(obj, dict):
        return {plain(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def save_atomic(obj: object, path: str | Path) -> Path:
    """``torch.save`` to ``path`` through a temporary file in the same folder, fsynced, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    return atomic_write(path, write, fsync=True)


def save_checkpoint(state: dict, out_dir: str | Path) -> Path:
    """Write the trainer state to ``out_dir/checkpoint.pt`` atomically, as plain data (see :func:`plain`)."""
    return save_atomic(plain({"format_version": FORMAT_VERSION, **state}), Path(out_dir) / CHECKPOINT_NAME)


def _describe(value: object) -> str:
    return type(value).__name__


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and check a checkpoint written by :func:`save_checkpoint` (``path``: the file or its run folder).

    Safe on untrusted files: nothing but tensors and plain containers is unpickled. Raises ``ValueError`` naming the
    file for a missing, unreadable, foreign or malformed checkpoint (a pickle with code in it is refused unread).

    >>> load_checkpoint("no/such/run")
    Traceback (most recent call last):
    ...
    ValueError: checkpoint 'no/such/run/checkpoint.pt' does not exist
    """
    path = Path(path)
    if path.is_dir() or (not path.exists() and path.suffix != ".pt"):
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated, foreign or code-carrying files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Unsupported global" in str(err) or "GLOBAL" in str(err):
            reason = "it holds Python objects other than tensors and plain data (refused: loading could run code)"
        what = "is unreadable, corrupt or not a veriloss checkpoint"
        raise ValueError(f"checkpoint {str(path)!r} {what}: {reason}") from None
    check_checkpoint(state, str(path))
    return state


def check_checkpoint(state: object, source: str = "checkpoint") -> None:
    """Raise ``ValueError`` unless ``state`` has this format's version and every required key with its type."""
    if not isinstance(state, dict):
        raise ValueError(f"{source!r} is not a veriloss checkpoint: it holds a {_describe(state)}, not a dict")
    version = state.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{source!r} is not a veriloss checkpoint of format version {FORMAT_VERSION} (format_version: {version!r})"
        )
    missing = sorted(k for k in REQUIRED if k not in state)
    if missing:
        raise ValueError(f"checkpoint {source!r} is incomplete: missing {', '.join(missing)}")
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key not in state:
            continue
        value = state[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if ok and kind is int and value < 0:
            ok = False
        if not ok:
            expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise ValueError(f"checkpoint {source!r} is malformed: {key} is {value!r:.60}, expected {expected}")
    for key in ("backbone", "loss"):
        bad = [k for k, v in state[key].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
        if bad:
            raise ValueError(f"checkpoint {source!r} is malformed: {key} holds non-tensor entries {bad[:3]}")
    if state["model_args"] is not None and not isinstance(state["model_args"].get("name"), str):
        raise ValueError(f"checkpoint {source!r} is malformed: model_args has no model name")
