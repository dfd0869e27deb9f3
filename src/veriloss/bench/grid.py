"""Sweep grids: ``--grid key=v1,v2,...`` over any config keys, expanded to their cartesian product.

Each ``--grid`` names one dotted config key (``loss.params.alpha``, ``loss.params.s``, ``loss.params.m``,
``loss.params.kappa``, ``loss.reinit.at``, ``epochs``, ...) and its values, separated by commas outside brackets
and braces, each parsed as YAML like a ``--set`` value (``loss.reinit={at: 0.1},{at: 0.25},null`` has three values).
A grid point is the base recipe, then every ``--set`` override, then the point's values (a grid key wins over a
``--set`` of the same key). Points whose loss parameters are invalid together (Q-Margin's κ > 1, say) are skipped and
listed. A point's name, also its run folder, is ``key=value`` per grid key joined by ``_``, with the last component
of the key (the full key where two grid keys share it) and the value as written, each run of characters other than
letters, digits and ``.+=-`` replaced by one ``-`` (none at the ends). Switching ``loss.reinit`` between kinds
(``{at: ...}`` / ``{epoch: ...}``) needs ``--set loss.reinit=null`` first: config sections merge key by key.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence

from ..data import with_data_root
from ..train.config import apply_override
from .runner import Variant, make_variant

__all__ = ["expand_grid", "parse_grid", "split_values"]

_OPEN, _CLOSE = "[{(", "]})"


def split_values(text: str) -> list[str]:
    """Split ``text`` at the commas outside ``[]``, ``{}``, ``()`` and quotes; items are stripped."""
    items, depth, quote, start = [], 0, "", 0
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced {c!r} in {text!r}")
        elif c == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    if depth or quote:
        raise ValueError(f"unbalanced brackets or quotes in {text!r}")
    items.append(text[start:].strip())
    return items


def parse_grid(specs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["key=v1,v2", ...]`` → ``[(key, ["v1", "v2"]), ...]``; ``ValueError`` for a malformed item."""
    if not specs:
        raise ValueError("--grid: give at least one, e.g. --grid loss.params.alpha=1.25,1.5,2")
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        key, sep, raw = str(spec).partition("=")
        key = key.strip()
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)*", key):
            raise ValueError(f"--grid expects dotted.key=value1,value2,..., got {spec!r}")
        try:
            values = split_values(raw)
        except ValueError as err:
            raise ValueError(f"--grid {key}: {err}") from None
        if any(v == "" for v in values):
            raise ValueError(f"--grid {key}: empty value in {raw!r} (values are separated by single commas)")
        if len(set(values)) != len(values):
            raise ValueError(f"--grid {key}: repeated value in {raw!r}")
        if key in (k for k, _ in grid):
            raise ValueError(f"--grid {key} is given twice; list all its values in one --grid")
        grid.append((key, values))
    return grid


def _label(key: str, keys: Sequence[str]) -> str:
    last = key.rsplit(".", 1)[-1]
    return last if sum(k.rsplit(".", 1)[-1] == last for k in keys) == 1 else key


def expand_grid(
    base: dict,
    grid: Sequence[tuple[str, Sequence[str]]],
    overrides: Sequence[str] = (),
    data_root: str | os.PathLike | None = None,
) -> tuple[list[Variant], list[tuple[str, str]]]:
    """The points of the cartesian product of ``grid`` (first key slowest) as
    :class:`~veriloss.bench.runner.Variant` s, and the points skipped as ``(name, reason)``.

    A point whose loss cannot be built from its parameters (e.g. Q-Margin with κ > 1: (α−1)·s·m < 1) is skipped,
    since such holes are normal in a product of parameter ranges; if every point is skipped, that is an error.
    An unknown key, an unparseable value or two points with one run name raise ``ValueError``. Relative data paths
    start from ``data_root`` (:func:`veriloss.data.with_data_root`).
    """
    config = base
    for assignment in overrides:
        config = apply_override(config, assignment)
    keys = [k for k, _ in grid]
    variants: list[Variant] = []
    skipped: list[tuple[str, str]] = []
    seen: dict[str, tuple[str, ...]] = {}
    for values in itertools.product(*(v for _, v in grid)):
        point = config
        for key, value in zip(keys, values):
            try:
                point = apply_override(point, f"{key}={value}")
            except ValueError as err:
                raise ValueError(f"--grid {key}={value}: {err}") from None
        point = {**point, "data": with_data_root(point["data"], data_root)}
        columns = {_label(k, keys): v for k, v in zip(keys, values)}
        name = "_".join(f"{label}={re.sub(r'[^A-Za-z0-9.+=-]+', '-', v).strip('-')}" for label, v in columns.items())
        if name in seen:
            raise ValueError(f"--grid values {seen[name]} and {values} give the same run name {name!r}")
        seen[name] = tuple(values)
        try:
            variants.append(make_variant(name, point, columns))
        except ValueError as err:
            skipped.append((name, str(err).removeprefix(f"{name}: ")))
    if not variants:
        raise ValueError(
            "--grid: no point of the grid is a valid config: " + "; ".join(f"{n}: {r}" for n, r in skipped)
        )
    return variants, skipped
