"""The vocabulary of config rules: :class:`Rule` and its kinds (:class:`Int`, :class:`Real`, :class:`Choice`,
:class:`ListOf`, :class:`Record`, :class:`OneOf`, …), each checking one value, and :class:`Check`, a rule across keys.
The training config's rules themselves are :mod:`veriloss.train.schema`.

Integers must be YAML integers (``2.0`` and ``true`` are rejected), booleans YAML booleans (``true``/``false``),
numbers finite; ``null`` only where a rule says what it means.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AutoBool",
    "Bool",
    "BoolOr",
    "Check",
    "Choice",
    "Device",
    "Fraction",
    "FreeForm",
    "Int",
    "Issue",
    "ListOf",
    "Nullable",
    "OneOf",
    "Real",
    "Record",
    "Rule",
    "Str",
    "show",
]


def show(value: Any) -> str:
    """A value as the message shows it: ``null``/``true``/``false`` as YAML spells them, else ``repr``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(ge=None, gt=None, le=None, lt=None) -> str:
    """`` ≥ 1``, `` in [0, 1)``, … (empty when unbounded)."""
    lo, hi = (ge if gt is None else gt), (le if lt is None else lt)
    if lo is not None and hi is not None:
        return f" in {'(' if gt is not None else '['}{lo}, {hi}{')' if lt is not None else ']'}"
    if lo is not None:
        return f" {'>' if gt is not None else '≥'} {lo}"
    if hi is not None:
        return f" {'<' if lt is not None else '≤'} {hi}"
    return ""


def _in_bounds(x, ge=None, gt=None, le=None, lt=None) -> bool:
    return (ge is None or x >= ge) and (gt is None or x > gt) and (le is None or x <= le) and (lt is None or x < lt)


#: what a rule reports: (suffix of the key, e.g. "[1]" or ".at"; the offending value; what is wrong with it)
Issue = tuple[str, Any, str]


class Rule:
    """A check of one config value: :meth:`issues` yields what is wrong, :attr:`expected` says what is allowed."""

    expected = "any value"

    def __init__(self, doc: str = ""):
        self.doc = doc

    def issues(self, value: Any) -> Iterator[Issue]:  # pragma: no cover - overridden
        return iter(())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expected!r})"


class Int(Rule):
    """An integer (not a bool, not ``2.0``) with optional bounds."""

    def __init__(self, ge: int | None = None, le: int | None = None, doc: str = ""):
        super().__init__(doc)
        self.ge, self.le = ge, le
        self.expected = "an integer" + _bounds(ge=ge, le=le)

    def issues(self, value):
        if not _is_int(value):
            hint = f" (write {int(value)})" if isinstance(value, float) and value.is_integer() else ""
            yield "", value, "is not an integer" + hint
        elif not _in_bounds(value, ge=self.ge, le=self.le):
            yield "", value, "is out of range"


class Real(Rule):
    """A number (an int or a float, not a bool), finite unless ``finite=False``, with optional bounds."""

    def __init__(self, ge=None, gt=None, le=None, lt=None, finite: bool = True, doc: str = ""):
        super().__init__(doc)
        self.bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt}
        self.finite = finite
        self.expected = ("a finite number" if finite else "a number") + _bounds(**self.bounds)

    def issues(self, value):
        if not _is_number(value):
            yield "", value, "is not a number"
        elif self.finite and not math.isfinite(value):
            yield "", value, "is not finite"
        elif not _in_bounds(value, **self.bounds):
            yield "", value, "is out of range"


def Fraction(doc: str = "") -> Real:
    """A number in the open interval (0, 1)."""
    return Real(gt=0, lt=1, doc=doc)


class Bool(Rule):
    """A YAML boolean: ``true`` or ``false`` (not ``1``, not ``"yes"``)."""

    expected = "true or false"

    def issues(self, value):
        if not isinstance(value, bool):
            yield "", value, "is not a boolean"


class AutoBool(Rule):
    """``auto``, ``true`` or ``false``."""

    expected = "auto, true or false"

    def issues(self, value):
        if not isinstance(value, bool) and value != "auto":
            yield "", value, "is not auto, true or false"


class BoolOr(Rule):
    """``true``, ``false``, or what ``rule`` accepts."""

    def __init__(self, rule: Rule, doc: str = ""):
        super().__init__(doc)
        self.rule = rule

    @property
    def expected(self) -> str:
        return f"true, false or {self.rule.expected}"

    def issues(self, value):
        if not isinstance(value, bool):
            yield from self.rule.issues(value)


class Str(Rule):
    """A non-empty string (``123`` unquoted is a number)."""

    expected = "a non-empty string"

    def issues(self, value):
        if not isinstance(value, str):
            yield "", value, "is not a string"
        elif not value.strip():
            yield "", value, "is empty"


class Choice(Rule):
    """One of a set of strings: fixed, or a registry's names (``options`` a function returning them, read at each
    check, so names registered later are valid)."""

    def __init__(self, *options: str | Callable[[], Sequence[str]], doc: str = ""):
        super().__init__(doc)
        self._options = options

    @property
    def options(self) -> tuple[str, ...]:
        if len(self._options) == 1 and callable(self._options[0]):
            return tuple(self._options[0]())
        return tuple(self._options)

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(self.options)

    def issues(self, value):
        options = self.options
        if not isinstance(value, str) or value not in options:
            close = difflib.get_close_matches(value, options, n=1) if isinstance(value, str) else []
            yield "", value, "is not a valid choice" + (f" (did you mean {close[0]!r}?)" if close else "")


class Device(Rule):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

    expected = "auto, cpu, cuda or cuda:<index>"

    def issues(self, value):
        if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda|cuda:[0-9]+", value):
            yield "", value, "is not a device"


class Nullable(Rule):
    """``null`` (which means ``meaning``) or a value of ``rule``."""

    def __init__(self, rule: Rule, meaning: str, doc: str = ""):
        super().__init__(doc)
        self.rule = rule
        self.expected = f"null ({meaning}) or {rule.expected}"

    def issues(self, value):
        if value is not None:
            yield from self.rule.issues(value)


def _items(n: int) -> str:
    return f"{n} item{'' if n == 1 else 's'}"


class ListOf(Rule):
    """A list of values of ``item``: at least ``min_len`` long (exactly ``length`` when given), strictly
    increasing if ``increasing``, unique by the field ``unique`` of mapping items if given."""

    def __init__(
        self,
        item: Rule,
        min_len: int = 0,
        length: int | None = None,
        increasing: bool = False,
        unique: str | None = None,
        doc: str = "",
    ):
        super().__init__(doc)
        self.item, self.min_len, self.length, self.increasing, self.unique = item, min_len, length, increasing, unique
        kind = "an increasing list" if increasing else "a non-empty list" if min_len == 1 else "a list"
        size = f" of {length} items" if length is not None else f" of at least {min_len} items" if min_len > 1 else ""
        distinct = f" with distinct {unique}s" if unique else ""
        self.expected = f"{kind}{size}{distinct}, each item {item.expected}"

    def issues(self, value):
        if not isinstance(value, (list, tuple)):
            yield "", value, "is not a list"
            return
        if self.length is not None and len(value) != self.length:
            yield "", value, f"has {_items(len(value))}"
            return
        if len(value) < self.min_len:
            yield "", value, "is empty" if not value else f"has {_items(len(value))}"
            return
        bad = False
        for i, x in enumerate(value):
            for suffix, v, what in self.item.issues(x):
                bad = True
                yield f"[{i}]{suffix}", v, what
        if bad:
            return
        if self.increasing and any(b <= a for a, b in itertools.pairwise(value)):
            yield "", value, "is not strictly increasing"
        if self.unique:
            names = [x.get(self.unique) for x in value if isinstance(x, dict)]
            twice = sorted({n for n in names if names.count(n) > 1}, key=str)
            if twice:
                yield "", value, f"repeats the {self.unique} {', '.join(map(repr, twice))}"


class FreeForm(Rule):
    """A mapping whose content is checked where it is used."""

    expected = "a mapping"

    def issues(self, value):
        if not isinstance(value, dict):
            yield "", value, "is not a mapping"


class Record(Rule):
    """A mapping with the keys of ``fields`` (those in ``required`` must be present), each checked by its rule."""

    def __init__(self, fields: Mapping[str, Rule], required: tuple[str, ...] = (), doc: str = ""):
        super().__init__(doc)
        self.fields, self.required = dict(fields), required
        parts = [f"{k}: {r.expected}" + ("" if k in required else " (optional)") for k, r in self.fields.items()]
        self.expected = "a mapping {" + "; ".join(parts) + "}"

    def issues(self, value):
        if not isinstance(value, dict):
            yield "", value, "is not a mapping"
            return
        unknown = [k for k in value if k not in self.fields]
        missing = [k for k in self.required if k not in value]
        if unknown or missing:
            what = [f"unknown key(s) {', '.join(map(repr, unknown))}"] if unknown else []
            what += [f"no {', '.join(map(repr, missing))}"] if missing else []
            yield "", value, "has " + " and ".join(what)
            return
        for key, x in value.items():
            for suffix, v, what in self.fields[key].issues(x):
                yield f".{key}{suffix}", v, what


class OneOf(Rule):
    """A mapping with exactly one key, one of ``options``, whose value that option's rule checks."""

    def __init__(self, options: Mapping[str, Rule], doc: str = ""):
        super().__init__(doc)
        self.options = dict(options)
        self.expected = "exactly one of " + ", ".join(f"{{{k}: {r.expected}}}" for k, r in self.options.items())

    def issues(self, value):
        if not isinstance(value, dict):
            yield "", value, "is not a mapping"
        elif len(value) != 1 or next(iter(value)) not in self.options:
            yield "", value, f"does not have exactly one of the keys {', '.join(self.options)}"
        else:
            ((key, x),) = value.items()
            for suffix, v, what in self.options[key].issues(x):
                yield f".{key}{suffix}", v, what


@dataclass(frozen=True)
class Check:
    """A rule across keys: ``run(config)`` yields ``(key, value, message)`` for a config whose ``keys`` passed
    their own rules; the error is located where the most recently set of ``keys`` came from."""

    keys: tuple[str, ...]
    run: Callable[[dict], Iterator[tuple[str, Any, str]]]
