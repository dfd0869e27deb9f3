"""Heads by name: ``create(name, embedding_dim, num_classes, **params)``, ``available()``, ``describe(name)``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from .base import Head

__all__ = ["HeadSpec", "aliases", "available", "create", "describe", "register"]


@dataclass
class HeadSpec:
    name: str
    cls: type[Head]
    fixed: dict = field(default_factory=dict)  # parameters fixed by the name (e.g. elasticface variants)
    aliases: tuple[str, ...] = ()

    def parameters(self) -> dict[str, object]:
        """User-settable parameters and their defaults (``inspect.Parameter.empty`` when required)."""
        sig = inspect.signature(self.cls.__init__)
        out = {}
        for p in list(sig.parameters.values())[1:]:
            if p.name in ("embedding_dim", "num_classes") or p.name in self.fixed:
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = p.default
        return out


_REGISTRY: dict[str, HeadSpec] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, cls: type[Head], aliases: tuple[str, ...] = (), **fixed) -> type[Head]:
    """Register ``cls`` under ``name`` (lower case), with constructor arguments ``fixed`` bound by the name."""
    key = name.lower()
    if key in _REGISTRY or key in _ALIASES:
        raise ValueError(f"head name {name!r} is already registered")
    _REGISTRY[key] = HeadSpec(key, cls, dict(fixed), tuple(a.lower() for a in aliases))
    for a in aliases:
        _ALIASES[a.lower()] = key
    return cls


def _spec(name: str) -> HeadSpec:
    if not isinstance(name, str):
        raise ValueError(f"head name must be a string, got {name!r}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _REGISTRY:
        raise ValueError(f"unknown head {name!r}; available: {', '.join(available())}")
    return _REGISTRY[key]


def create(name: str, embedding_dim: int, num_classes: int, **params) -> Head:
    """Build the head registered as ``name``; unknown parameters raise a ``ValueError`` that lists the valid ones."""
    spec = _spec(name)
    valid = spec.parameters()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for head {spec.name!r}; "
            f"accepted: {', '.join(valid) or '(none)'}"
        )
    return spec.cls(embedding_dim, num_classes, **spec.fixed, **params)


def available() -> list[str]:
    """The registered head names (canonical names, sorted; see :func:`aliases` for the other spellings)."""
    return sorted(_REGISTRY)


def aliases() -> dict[str, str]:
    """Alias -> canonical name."""
    return dict(_ALIASES)


def describe(name: str) -> dict:
    """Name, parameters with defaults, reference and the first docstring line of a head."""
    spec = _spec(name)
    doc = inspect.getdoc(spec.cls) or ""
    return {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "parameters": {k: (None if v is inspect.Parameter.empty else v) for k, v in spec.parameters().items()},
        "fixed": dict(spec.fixed),
        "reference": spec.cls.reference,
        "summary": doc.splitlines()[0] if doc else "",
    }
