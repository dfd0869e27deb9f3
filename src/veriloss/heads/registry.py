"""Heads by name: ``create(name, embedding_dim, num_classes, **params)``, ``available()``, ``describe(name)``."""

from __future__ import annotations

from ..registry import Registry
from .base import Head

__all__ = ["aliases", "available", "check", "create", "describe", "register"]

_HEADS = Registry("head", positional=("embedding_dim", "num_classes"))
register = _HEADS.register
available = _HEADS.available
aliases = _HEADS.aliases
describe = _HEADS.describe
check = _HEADS.check  # parameters checked without building (config loading)


def create(name: str, embedding_dim: int, num_classes: int, **params) -> Head:
    """Build the head registered as ``name``; unknown parameters raise a ``ValueError`` that lists the valid ones."""
    return _HEADS.create(name, embedding_dim, num_classes, **params)
