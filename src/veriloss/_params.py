"""Config values checked against the annotated keyword parameters of a registered class or builder (every registry:
heads, pair losses, models, datasets, samplers), without building anything.

Types, without converting or building anything: ``bool`` (true/false, not 1), ``int`` (not a bool, not 2.0),
``float`` (an int is accepted), ``str``, a path (``str``, ``os.PathLike``, ``pathlib.Path``, :data:`PathLike`: a
string or a path object), ``Literal[...]`` choices, ``X | None``, lists (``list[X]``, ``Sequence[X]``,
``tuple[X, ...]``, ``tuple[X, Y]``: a YAML list) of these. Other or missing annotations accept any value.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import os
import pathlib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Union

__all__ = ["PathLike", "closest", "expected", "hints", "is_path", "keyword_problems", "matches", "type_problems"]

#: a path in a config: a string (as YAML gives it) or a path object (as Python callers may pass)
PathLike = str | os.PathLike


def _close(word: Any, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1) if isinstance(word, str) else []
    return close[0] if close else None


def closest(word: Any, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``word`` (difflib), else ``""``."""
    close = _close(word, choices)
    return f" (did you mean {close!r}?)" if close else ""


def hints(builder: Callable) -> dict[str, Any]:
    """Parameter name → resolved annotation of ``builder`` (a function, or a class: its ``__init__``); {} when the
    annotations cannot be resolved (then every value is accepted)."""
    target = builder.__init__ if inspect.isclass(builder) else builder
    try:
        return typing.get_type_hints(target)
    except Exception:  # an unresolvable forward reference: check nothing rather than fail on the user's builder
        return {}


def is_path(t: Any) -> bool:
    """Whether the annotation ``t`` is a path (alone or in a union with None / str)."""
    members = _members(t)
    if members is not None:
        rest = [m for m in members if m is not type(None)]
        return any(map(_is_path, rest)) and all(m is str or _is_path(m) for m in rest)
    return _is_path(t)


def _is_path(t: Any) -> bool:
    """``os.PathLike`` (or ``os.PathLike[str]``), ``pathlib.Path`` and the other path classes."""
    if typing.get_origin(t) is os.PathLike:
        return True
    return inspect.isclass(t) and issubclass(t, (os.PathLike, pathlib.PurePath))


def _members(t: Any) -> tuple[Any, ...] | None:
    """The members of a union annotation (``X | Y``, ``Union[X, Y]``, ``Optional[X]``), else None."""
    if isinstance(t, types.UnionType) or typing.get_origin(t) is Union:
        return typing.get_args(t)
    return None


def _sequence_item(t: Any) -> tuple[Any, ...] | None:
    """(item,) of ``list[X]``, ``Sequence[X]``, ``tuple[X, ...]``; the per-position types of ``tuple[X, Y]``."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence) and len(args) == 1:
        return args
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[:1]
    return None


def expected(t: Any) -> str:
    """What annotation ``t`` allows, in words: ``an integer``, ``a number or null``, ``one of 'a', 'b'``, …"""
    members = _members(t)
    if members is not None:
        rest = [m for m in members if m is not type(None)]
        text = "a path" if any(map(_is_path, rest)) and all(m is str or _is_path(m) for m in rest) else None
        text = text or " or ".join(expected(m) for m in rest)
        return text + (" or null" if len(rest) < len(members) else "")
    if typing.get_origin(t) is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(t))
    item = _sequence_item(t)
    if item is not None:
        return f"a list (each item {expected(item[0])})"
    if typing.get_origin(t) is tuple:
        return f"a list of {len(typing.get_args(t))} items ({', '.join(expected(a) for a in typing.get_args(t))})"
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if t in words:
        return words[t]
    return "a path" if _is_path(t) else "any value"


def matches(value: Any, t: Any) -> bool:
    """Whether ``value`` (as YAML gives it) has the type annotation ``t`` allows (see the module docstring)."""
    members = _members(t)
    if members is not None:
        return any(matches(value, m) for m in members)
    if typing.get_origin(t) is Literal:
        return any(value == v and type(value) is type(v) for v in typing.get_args(t))
    item = _sequence_item(t)
    if item is not None:
        return isinstance(value, (list, tuple)) and all(matches(v, item[0]) for v in value)
    if typing.get_origin(t) is tuple:
        args = typing.get_args(t)
        return isinstance(value, (list, tuple)) and len(value) == len(args) and all(map(matches, value, args))
    if t is bool:
        return isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t is str:
        return isinstance(value, str)
    if t is type(None):
        return value is None
    if _is_path(t):
        return isinstance(value, (str, os.PathLike))
    return True  # Any, a callable, an unannotated parameter, …: not checked here


def type_problems(values: Mapping[str, Any], types_: Mapping[str, Any], where: str) -> list[str]:
    """One line per value of ``values`` (config key → value) whose type its annotation in ``types_`` does not allow:
    ``<where>.<key> must be <expected>, got <value>`` (with a did-you-mean among ``Literal`` choices)."""
    lines = []
    for key, value in values.items():
        if key in types_ and not matches(value, types_[key]):
            literal = typing.get_origin(types_[key]) is Literal
            hint = closest(value, typing.get_args(types_[key])) if literal else ""
            if isinstance(value, float) and value.is_integer() and matches(int(value), types_[key]):
                hint = f" (write {int(value)})"
            lines.append(f"{where}.{key} must be {expected(types_[key])}, got {value!r}{hint}")
    return lines


def keyword_problems(
    values: Mapping[str, Any],
    accepted: Mapping[str, Any],
    types_: Mapping[str, Any],
    where: str,
    owner: str,
    named: bool = True,
) -> list[str]:
    """One line per problem of ``values`` (config keys → values) against ``accepted`` (key → default, or
    ``inspect.Parameter.empty`` when required) and ``types_`` (key → annotation): unknown keys (listing the valid
    ones, ``name`` first, with a did-you-mean), missing required keys, values of the wrong type
    (:func:`type_problems`). ``where`` prefixes the keys (``data`` → ``data.image_size``); ``owner`` names the entry
    (``'omniglot'``); ``named``: the section also holds the ``name`` key (listed first among the valid keys)."""
    lines = []
    unknown = sorted(str(k) for k in values if k not in accepted)
    if unknown:
        close = [f"{k!r}: did you mean {c!r}?" for k in unknown if (c := _close(k, accepted))]
        hint = f" ({'; '.join(close)})" if close else ""
        valid = ", ".join(["name", *accepted] if named else accepted) or "(none)"
        lines.append(f"unknown {where} key(s) {', '.join(unknown)} for {owner}; valid keys: {valid}{hint}")
    for key, default in accepted.items():
        if default is inspect.Parameter.empty and key not in values:
            what = f" ({expected(types_[key])})" if key in types_ else ""
            lines.append(f"{where}.{key} is required for {owner}{what}: it has no default")
    return lines + type_problems({k: v for k, v in values.items() if k in accepted}, types_, where)
