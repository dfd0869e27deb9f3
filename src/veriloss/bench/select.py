"""Sweeps that tune without the test split: which split a sweep selects on, the chosen grid point, and its test score.

``veriloss bench sweep --select-on validation`` sets ``validate.split: validation`` in every grid point, so every
evaluation (during training and the final one, hence the report and the selection) scores the identities the data
section holds out of training (``data.validation_alphabets``, ``data.validation_speakers``, ...); the test split is
never built. ``--select-on auto`` (the default) does so when the base recipe (with ``--set``) holds identities out,
else selects on the test split and says so. The chosen point is the best mean over the finished seeds of the
selection metric (``--select-by``: ``tar@<far>`` at a bench FAR, higher is better, or ``eer``, lower is better; ties:
the first in grid order). ``--then-test`` then scores the chosen point's finished runs on the test split from their
checkpoints (the same trained models: the training set is the same) and writes ``test_metrics.json`` into each run
folder: after the selection, never before it.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._io import write_text

__all__ = [
    "TEST_METRICS_NAME",
    "choose",
    "evaluate_on_test",
    "parse_select_by",
    "selection_section",
    "selection_split",
    "with_selection_split",
]

TEST_METRICS_NAME = "test_metrics.json"


def selection_split(config: Mapping, select_on: str) -> str:
    """The split a sweep over ``config`` (the base with ``--set``) selects on: "validation" or "test".

    ``select_on``: "validation" (needs held-out identities: ``ValueError`` naming the data key to set otherwise),
    "test", or "auto" (validation when the data section holds identities out, else test).
    """
    from ..data import validation_key

    if select_on not in ("auto", "validation", "test"):
        raise ValueError(f"--select-on must be auto, validation or test, got {select_on!r}")
    if select_on == "test":
        return "test"
    key = validation_key(config["data"])
    held = bool(key and config["data"].get(key))
    if select_on == "auto":
        return "validation" if held else "test"
    if key is None:
        raise ValueError(
            f"--select-on validation: dataset {config['data'].get('name', 'synthetic')!r} has no validation split "
            "(no data.validation_* key); use --select-on test"
        )
    if not held:
        raise ValueError(
            f"--select-on validation: the base recipe holds no identities out of training (data.{key} is 0); add "
            f"--set data.{key}=N (e.g. 5 alphabets of Omniglot, 15 speakers of speechocean762)"
        )
    return "validation"


def with_selection_split(config: dict, split: str) -> dict:
    """``config`` with ``validate.split`` set to ``split``."""
    out = copy.deepcopy(config)
    out["validate"]["split"] = split
    return out


def parse_select_by(text: str, far: Sequence[float]) -> tuple[str, float | None]:
    """``"eer"`` → ("eer", None); ``"tar@1e-4"`` / ``"tar@far=0.0001"`` → ("tar", 1e-4), the FAR one of ``far``."""
    t = str(text).strip().lower()
    if t == "eer":
        return "eer", None
    if t.startswith("tar@"):
        raw = t[4:].removeprefix("far=")
        try:
            f = float(raw)
        except ValueError:
            f = math.nan
        match = [x for x in far if math.isclose(x, f, rel_tol=1e-9)]
        if match:
            return "tar", float(match[0])
    choices = ", ".join(["eer", *(f"tar@{x:g}" for x in far)])
    raise ValueError(f"--select-by must be one of {choices}, got {text!r}")


def choose(doc: Mapping, select_by: tuple[str, float | None]) -> dict | None:
    """The chosen variant of a report document (:func:`veriloss.bench.collect`): ``{"name", "metric", "value",
    "seeds"}`` for the best mean over finished seeds, or None when no variant has a value."""
    kind, far = select_by
    best = None
    for v in doc["variants"]:
        s = v["summary"]
        if kind == "eer":
            value, better = s["eer"]["mean"], lambda a, b: a < b
        else:
            cell = next(t for t in s["tar_at_far"] if math.isclose(t["far"], far, rel_tol=1e-9))
            value, better = cell["mean"], lambda a, b: a > b
        if value is None:
            continue
        if best is None or better(value, best["value"]):
            seeds = [r["seed"] for r in v["runs"] if r["status"] == "finished"]
            metric = "EER" if kind == "eer" else f"TAR@FAR={far:g}"
            best = {"name": v["name"], "metric": metric, "value": float(value), "seeds": seeds}
    return best


def evaluate_on_test(run_dir: str | os.PathLike, far: Sequence[float]) -> dict:
    """Score a finished run's checkpoint on the test split (all pairs) and write ``test_metrics.json`` (the system
    record of :func:`veriloss.report.tables.system_metrics`, with ``"split": "test"``); returns the record. A run
    that already has the file is read back, not scored again."""
    from ..checkpoint import load_checkpoint
    from ..data import build_dataset
    from ..inference import embed
    from ..models import load_backbone
    from ..protocols import all_pairs
    from ..report.tables import system_metrics
    from ..train.build import evaluation_chunks

    run_dir = Path(run_dir)
    path = run_dir / TEST_METRICS_NAME
    if path.is_file():
        return json.loads(path.read_text())
    state = load_checkpoint(run_dir)
    backbone, config = load_backbone(state), state["config"]
    test_set = build_dataset(config["data"], "test")
    chunks = evaluation_chunks(config["data"], test_set)
    emb = embed(backbone, test_set, batch_size=int(config["validate"]["batch_size"]), chunks=chunks)
    result = all_pairs(emb, test_set.labels, far=list(far))
    record = system_metrics(config["loss"]["name"], result.genuine, result.impostor, far, extra={"split": "test"})
    write_text(path, json.dumps(record, indent=2, allow_nan=False) + "\n")
    return record


def selection_section(doc: Mapping, specs: Sequence, selection: Mapping, then_test: bool, far: Sequence[float]) -> dict:
    """The report's ``selection``: the split read (``split``), ``select_on``, ``select_by``, the ``chosen`` point
    (:func:`choose`) and, with ``then_test``, ``test``: the chosen point's test records (:func:`evaluate_on_test`)."""
    out = {k: v for k, v in selection.items() if k != "key"}
    out["chosen"] = choose(doc, selection["key"])
    if then_test and out["chosen"] is not None:
        runs = [s for s in specs if s.variant == out["chosen"]["name"] and s.seed in out["chosen"]["seeds"]]
        out["test"] = [{"seed": s.seed, **evaluate_on_test(s.dir, far)} for s in runs]
    return out
