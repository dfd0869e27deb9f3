"""Backbones by name: ``create(name, **params)``, ``available()``, ``describe(name)``."""

from __future__ import annotations

from torch import nn

from ..registry import Registry

__all__ = ["aliases", "available", "check", "create", "describe", "register"]

_MODELS = Registry("model")
register = _MODELS.register
available = _MODELS.available
aliases = _MODELS.aliases
describe = _MODELS.describe
check = _MODELS.check  # parameters checked without building (config loading)


def create(name: str, **params) -> nn.Module:
    """Build the backbone registered as ``name``; unknown names or parameters raise a ``ValueError``."""
    return _MODELS.create(name, **params)
