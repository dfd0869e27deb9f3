"""Pair, triplet and centre losses by name: ``create(name, **params)``, ``available()``, ``describe(name)``."""

from __future__ import annotations

from ..registry import Registry
from .base import PairwiseLoss

__all__ = ["aliases", "available", "check", "create", "describe", "register"]

_LOSSES = Registry("pairwise loss")
register = _LOSSES.register
available = _LOSSES.available
aliases = _LOSSES.aliases
describe = _LOSSES.describe
check = _LOSSES.check  # parameters checked without building (config loading)


def create(name: str, **params) -> PairwiseLoss:
    """Build the loss registered as ``name``; unknown or missing parameters raise a ``ValueError``."""
    return _LOSSES.create(name, **params)
