"""Comparing a run's stored config with a new one: what changed, and whether resuming with it is still one run.

A resumed run equals the uninterrupted one only if nothing that shapes training changed. Keys that touch only
logging, checkpoint frequency, data loading, the reported evaluation or an α head's layout are safe
(:data:`SAFE_TO_CHANGE`); any other change is refused unless forced, and a forced change is recorded in the run
(checkpoint and metrics.json).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ..checkpoint import CHECKPOINT_NAME, load_checkpoint

__all__ = ["SAFE_TO_CHANGE", "config_changes", "describe_changes", "flatten", "stored_state", "unsafe_changes"]

#: dotted keys (or section prefixes) that may differ on ``--resume``: logging, checkpoint frequency, data loading,
#: the memory layout and compilation of the backbone (the same values to float rounding), the reported evaluation,
#: and the layout of an α head (sharded over processes, streamed in chunks: the same loss)
SAFE_TO_CHANGE = (
    "log",
    "checkpoint.every_steps",
    "num_workers",
    "data.cache_mb",
    "channels_last",
    "compile",
    "validate.every_epochs",
    "validate.max_samples",
    "validate.far",
    "validate.split",
    "loss.params.sharded",
    "loss.params.chunk_size",
)

_ABSENT = "<absent>"

#: keys that configs no longer have, with the value that meant "off": runs stored with it compare as unchanged
RETIRED = {"skip_bad_batches": False}


def flatten(config: object, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (JSON values: tuples become lists); an empty mapping stays a leaf."""
    if isinstance(config, dict) and config:
        out: dict[str, object] = {}
        for key, value in config.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.loads(json.dumps(config, default=str))}


def _same(key: str, a: object, b: object) -> bool:
    if key == "data.root" and isinstance(a, str) and isinstance(b, str):
        return os.path.realpath(a) == os.path.realpath(b)  # one folder, two spellings
    return a == b


def config_changes(old: dict, new: dict) -> dict[str, tuple[object, object]]:
    """Every dotted key whose value differs, as ``key: (old, new)`` (``"<absent>"`` for a missing key). A relative
    ``data.root`` and its absolute spelling are the same folder."""
    fa, fb = flatten(old), flatten(new)
    for key, off in RETIRED.items():
        for flat in (fa, fb):
            if key in flat and flat[key] == off:
                del flat[key]
    keys = sorted(set(fa) | set(fb))
    return {
        k: (fa.get(k, _ABSENT), fb.get(k, _ABSENT))
        for k in keys
        if not _same(k, fa.get(k, _ABSENT), fb.get(k, _ABSENT))
    }


def describe_changes(changes: dict[str, tuple[object, object]], limit: int = 4, then: str = "there") -> str:
    """``"epochs: 3 there, 5 now; seed: ..."`` for the first ``limit`` changes, then how many more."""
    shown = "; ".join(f"{k}: {a!r} {then}, {b!r} now" for k, (a, b) in list(changes.items())[:limit])
    return shown + (f" (and {len(changes) - limit} more)" if len(changes) > limit else "")


def unsafe_changes(old: dict, new: dict) -> dict[str, tuple[object, object]]:
    """The changes of :func:`config_changes` outside :data:`SAFE_TO_CHANGE`."""
    return {
        k: v
        for k, v in config_changes(old, new).items()
        if not any(k == s or k.startswith(s + ".") for s in SAFE_TO_CHANGE)
    }


def stored_state(out: Path, config: dict, force: bool, log: Callable[[str], None]) -> tuple[dict | None, list[dict]]:
    """The checkpoint in ``out`` to resume from (None: there is none) and the run's record of forced config changes,
    after comparing its config with ``config``: a change outside :data:`SAFE_TO_CHANGE` raises ``ValueError``
    naming the keys, unless ``force`` (then it is logged and appended to the record)."""
    path = Path(out) / CHECKPOINT_NAME
    if not path.exists():
        log(f"no checkpoint in {out}; starting from scratch")
        return None, []
    state = load_checkpoint(path, map_location="cpu")
    changes = unsafe_changes(state["config"], config)
    record = list(state.get("config_changes", []))
    if changes and not force:
        raise ValueError(
            f"--resume: {path} was trained with another config ({describe_changes(changes, then='stored')}); "
            "resuming would mix two runs. Use the stored config, another --out, or --force to continue anyway"
        )
    if changes:
        every = describe_changes(changes, limit=len(changes), then="stored")
        log(f"warning: --force: resuming with a changed config ({every}); the run records it")
        record.append({"step": state["step"], "changed": {k: {"stored": a, "now": b} for k, (a, b) in changes.items()}})
    return state, record
