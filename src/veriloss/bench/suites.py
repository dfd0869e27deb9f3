"""Loss suites: one base recipe and one ``loss`` block per entry (``veriloss bench losses --suite NAME``).

A suite is a YAML file (packaged ones in ``veriloss/configs/suites/``)::

    base: omniglot_softmax          # a packaged recipe name, or a path (relative to the suite file, then the cwd)
    entries:
      arcface:                      # the entry's name: a run folder and a report row
        loss: {name: arcface, params: {s: 30.0, m: 0.5}}
      triplet:
        loss: {name: triplet, params: {margin: 0.2}}
        sampler: {name: pk, p: 64, k: 4}   # pair losses need P×K batches

Every entry trains with the base recipe whose ``loss`` section is *replaced* by the entry's (the base's loss
parameters are not inherited); ``sampler`` is the only other section an entry may set, because pair and triplet
losses need batches with several samples per identity. Everything else is identical across entries by construction.
The suite file is the one place to edit the parameters.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data import with_data_root
from ..train.config import DEFAULTS, apply_override, load_config, merge, packaged_file, read_yaml, recipe_path
from .runner import Variant, make_variant

__all__ = ["SUITES_DIR", "Suite", "SuiteEntry", "available_suites", "load_suite", "suite_path", "suite_variants"]

SUITES_DIR = Path(__file__).resolve().parents[1] / "configs" / "suites"
_ENTRY_KEYS = ("loss", "sampler")


@dataclass(frozen=True)
class SuiteEntry:
    """One loss of a suite: its name, its ``loss`` section and, optionally, its ``sampler`` section."""

    name: str
    loss: dict
    sampler: dict | None = None


@dataclass(frozen=True)
class Suite:
    """A suite file, loaded: its name (the file's stem), path, resolved base recipe and entries in file order."""

    name: str
    path: Path
    base: Path
    entries: tuple[SuiteEntry, ...]


def available_suites() -> list[str]:
    """Names of the packaged suites."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def suite_path(name: str | os.PathLike) -> Path:
    """``name`` itself when it is a file, else the packaged suite ``veriloss/configs/suites/<name>.yaml``."""
    return packaged_file(name, SUITES_DIR, "suite")


def _base_path(base: object, suite_file: Path) -> Path:
    if not isinstance(base, str) or not base:
        raise ValueError(f"suite {str(suite_file)!r}: 'base' must name a recipe (e.g. omniglot_softmax), got {base!r}")
    beside = suite_file.parent / base
    if beside.is_file():
        return beside
    try:
        return recipe_path(base)
    except ValueError as err:
        raise ValueError(f"suite {str(suite_file)!r}: base: {err}") from None


def load_suite(name: str | os.PathLike) -> Suite:
    """Read and check a suite file (a packaged name or a path); ``ValueError`` names the file and the problem."""
    path = suite_path(name)
    where = f"suite {str(path)!r}"
    doc, _ = read_yaml(path)  # UTF-8 (with or without a BOM); errors name the file
    if not isinstance(doc, dict) or set(doc) - {"base", "entries"} or "entries" not in doc:
        raise ValueError(f"{where} must be a mapping with 'base' and 'entries' (and nothing else)")
    entries_doc = doc["entries"]
    if not isinstance(entries_doc, dict) or not entries_doc:
        raise ValueError(f"{where}: 'entries' must be a non-empty mapping name → {{loss: ..., sampler: ...}}")
    entries = []
    for entry_name, body in entries_doc.items():
        if not isinstance(body, dict) or "loss" not in body or set(body) - set(_ENTRY_KEYS):
            raise ValueError(f"{where}: entry {entry_name!r} must be a mapping with 'loss' and optionally 'sampler'")
        loss, sampler = body["loss"], body.get("sampler")
        if not isinstance(loss, dict) or "name" not in loss:
            raise ValueError(f"{where}: entry {entry_name!r}: 'loss' must be a mapping with a 'name'")
        if sampler is not None and not isinstance(sampler, dict):
            raise ValueError(f"{where}: entry {entry_name!r}: 'sampler' must be a mapping")
        entries.append(SuiteEntry(str(entry_name), copy.deepcopy(loss), copy.deepcopy(sampler)))
    return Suite(path.stem, path, _base_path(doc.get("base"), path), tuple(entries))


def _describe(loss: dict, sampler: dict) -> str:
    """The report's "parameters" cell: loss parameters, re-initialization, margin warm-up, auxiliary terms, sampler."""
    parts = [", ".join(f"{k}={v}" for k, v in (loss.get("params") or {}).items())]
    if loss.get("reinit"):
        parts.append("re-init " + ", ".join(f"{k}={v}" for k, v in loss["reinit"].items()))
    if loss.get("margin_warmup_steps"):
        parts.append(f"margin warm-up {loss['margin_warmup_steps']} steps")
    for term in loss.get("aux") or []:
        parts.append(f"+ {term.get('weight')}·{term.get('name')}")
    if sampler.get("name") == "pk":
        parts.append(f"P×K = {sampler.get('p')}×{sampler.get('k')}")
    elif sampler.get("name", "random") != "random":
        parts.append(f"sampler {sampler['name']}")
    return "; ".join(p for p in parts if p)


def suite_variants(
    suite: Suite,
    overrides: Sequence[str] = (),
    losses: Sequence[str] | None = None,
    data_root: str | os.PathLike | None = None,
) -> list[Variant]:
    """One :class:`~veriloss.bench.runner.Variant` per entry (those named in ``losses``, in suite order, if given):
    the base recipe with the entry's ``loss`` (and ``sampler``), then each ``--set`` override; relative data paths
    from ``data_root`` (:func:`veriloss.data.with_data_root`)."""
    names = [e.name for e in suite.entries]
    if losses is not None:
        wanted = [x.strip() for x in losses if x.strip()]
        unknown = [x for x in wanted if x not in names]
        if unknown or not wanted:
            raise ValueError(
                f"--losses: unknown loss(es) {', '.join(map(repr, unknown)) or '(none given)'} in suite "
                f"{suite.name!r}; its losses: {', '.join(names)}"
            )
    base = load_config(suite.base)
    base["loss"] = copy.deepcopy(DEFAULTS["loss"])  # replaced, not merged: no base parameter leaks into an entry
    out = []
    for entry in suite.entries:
        if losses is not None and entry.name not in wanted:
            continue
        update = {"loss": entry.loss, **({"sampler": entry.sampler} if entry.sampler is not None else {})}
        try:
            config = merge(base, update)
            for assignment in overrides:
                config = apply_override(config, assignment)
            config["data"] = with_data_root(config["data"], data_root)
        except ValueError as err:
            raise ValueError(f"suite {suite.name!r}, entry {entry.name!r}: {err}") from None
        loss = str(config["loss"]["name"])
        label = loss if entry.name == loss else f"{entry.name} ({loss})"  # two entries may share a loss
        columns = {"loss": label, "parameters": _describe(config["loss"], config["sampler"])}
        out.append(make_variant(entry.name, config, columns))
    return out
