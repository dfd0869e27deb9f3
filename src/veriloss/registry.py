"""Name → class (or builder function) registries (heads, pairwise losses, models, datasets, samplers): create by name
with checked parameters, list, describe."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

__all__ = ["Registry", "Spec"]


@dataclass
class Spec:
    name: str
    cls: type  # a class, or a builder function (its parameters are read from its own signature)
    fixed: dict = field(default_factory=dict)  # constructor arguments bound by the name (e.g. elasticface variants)
    aliases: tuple[str, ...] = ()
    positional: tuple[str, ...] = ()  # arguments passed positionally by create() (e.g. embedding_dim, num_classes)

    def parameters(self) -> dict[str, object]:
        """User-settable parameters and their defaults (``inspect.Parameter.empty`` when required)."""
        out = {}
        is_class = inspect.isclass(self.cls)
        params = list(inspect.signature(self.cls.__init__ if is_class else self.cls).parameters.values())
        for p in params[1:] if is_class else params:  # a class: without self
            if p.name in self.positional or p.name in self.fixed or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[p.name] = p.default
        return out


class Registry:
    """Classes by lower-case name, with aliases; ``kind`` names the family in error messages."""

    def __init__(self, kind: str, positional: tuple[str, ...] = ()):
        self.kind = kind
        self.positional = positional
        self._specs: dict[str, Spec] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, cls: type, aliases: tuple[str, ...] = (), **fixed) -> type:
        """Register ``cls`` under ``name`` (lower case), with constructor arguments ``fixed`` bound by the name."""
        key = name.lower()
        if key in self._specs or key in self._aliases:
            raise ValueError(f"{self.kind} name {name!r} is already registered")
        self._specs[key] = Spec(key, cls, dict(fixed), tuple(a.lower() for a in aliases), self.positional)
        for a in aliases:
            self._aliases[a.lower()] = key
        return cls

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (plugins and tests that register temporary entries)."""
        spec = self.spec(name)
        del self._specs[spec.name]
        for a in spec.aliases:
            self._aliases.pop(a, None)

    def spec(self, name: str) -> Spec:
        if not isinstance(name, str):
            raise ValueError(f"{self.kind} name must be a string, got {name!r}")
        key = self._aliases.get(name.lower(), name.lower())
        if key not in self._specs:
            raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(self.available())}")
        return self._specs[key]

    def create(self, name: str, *args, **params):
        """Build ``name``; unknown or missing parameters raise a ``ValueError`` that lists the valid ones."""
        spec = self.spec(name)
        valid = spec.parameters()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for {self.kind} {spec.name!r}; "
                f"accepted: {', '.join(valid) or '(none)'}"
            )
        missing = [k for k, v in valid.items() if v is inspect.Parameter.empty and k not in params]
        if missing:
            raise ValueError(f"{self.kind} {spec.name!r} requires parameter(s) {', '.join(missing)}")
        return spec.cls(*args, **spec.fixed, **params)

    def check(self, name: str, params: dict, where: str, named: bool = False) -> list[str]:
        """The problems of ``params`` for ``name`` without building it: unknown keys (with a did-you-mean),
        missing required ones, values whose type the constructor's annotations do not allow (bools are not
        numbers). One line each, keys named ``<where>.<key>``; an unknown ``name`` is a ``ValueError``."""
        from ._params import hints, keyword_problems

        spec = self.spec(name)
        fixed = {**spec.fixed, **{k: None for k in spec.positional}}
        values = {k: v for k, v in params.items() if k not in fixed or k in spec.parameters()}
        return keyword_problems(values, spec.parameters(), hints(spec.cls), where, f"{self.kind} {spec.name!r}", named)

    def available(self) -> list[str]:
        """The registered canonical names, sorted (see :meth:`aliases` for the other spellings)."""
        return sorted(self._specs)

    def names(self) -> list[str]:
        """The registered canonical names in registration order (listings that keep a catalogue's order)."""
        return list(self._specs)

    def aliases(self) -> dict[str, str]:
        """Alias → canonical name."""
        return dict(self._aliases)

    def describe(self, name: str) -> dict:
        """Name, aliases, parameters with defaults (and which are required), fixed arguments, reference, summary."""
        spec = self.spec(name)
        params = spec.parameters()
        doc = inspect.getdoc(spec.cls) or ""
        summary = " ".join(doc.split("\n\n")[0].split())
        return {
            "name": spec.name,
            "aliases": list(spec.aliases),
            "parameters": {k: (None if v is inspect.Parameter.empty else v) for k, v in params.items()},
            "required": [k for k, v in params.items() if v is inspect.Parameter.empty],
            "fixed": dict(spec.fixed),
            "reference": getattr(spec.cls, "reference", ""),
            "summary": summary,
        }
