"""Pair, triplet and centre losses by name: ``create(name, **params)``, ``available()``, ``describe(name)``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from .base import PairwiseLoss

__all__ = ["LossSpec", "aliases", "available", "create", "describe", "register"]


@dataclass
class LossSpec:
    name: str
    cls: type[PairwiseLoss]
    fixed: dict = field(default_factory=dict)  # parameters fixed by the name
    aliases: tuple[str, ...] = ()

    def parameters(self) -> dict[str, object]:
        """User-settable parameters and their defaults (``inspect.Parameter.empty`` when required)."""
        sig = inspect.signature(self.cls.__init__)
        out = {}
        for p in list(sig.parameters.values())[1:]:
            if p.name in self.fixed or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = p.default
        return out


_REGISTRY: dict[str, LossSpec] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, cls: type[PairwiseLoss], aliases: tuple[str, ...] = (), **fixed) -> type[PairwiseLoss]:
    """Register ``cls`` under ``name`` (lower case), with constructor arguments ``fixed`` bound by the name."""
    key = name.lower()
    if key in _REGISTRY or key in _ALIASES:
        raise ValueError(f"pairwise loss name {name!r} is already registered")
    _REGISTRY[key] = LossSpec(key, cls, dict(fixed), tuple(a.lower() for a in aliases))
    for a in aliases:
        _ALIASES[a.lower()] = key
    return cls


def _spec(name: str) -> LossSpec:
    if not isinstance(name, str):
        raise ValueError(f"pairwise loss name must be a string, got {name!r}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _REGISTRY:
        raise ValueError(f"unknown pairwise loss {name!r}; available: {', '.join(available())}")
    return _REGISTRY[key]


def create(name: str, **params) -> PairwiseLoss:
    """Build the loss registered as ``name``; unknown or missing parameters raise a ``ValueError``."""
    spec = _spec(name)
    valid = spec.parameters()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for pairwise loss {spec.name!r}; "
            f"accepted: {', '.join(valid) or '(none)'}"
        )
    missing = [k for k, v in valid.items() if v is inspect.Parameter.empty and k not in params]
    if missing:
        raise ValueError(f"pairwise loss {spec.name!r} requires parameter(s) {', '.join(missing)}")
    return spec.cls(**spec.fixed, **params)


def available() -> list[str]:
    """The registered pairwise loss names (canonical names, sorted)."""
    return sorted(_REGISTRY)


def aliases() -> dict[str, str]:
    """Alias -> canonical name."""
    return dict(_ALIASES)


def describe(name: str) -> dict:
    """Name, parameters with defaults (``None`` when required), reference and the first docstring line of a loss."""
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
