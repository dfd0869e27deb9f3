"""Pair, triplet and centre losses by name: ``create(name, **params)``, ``available()``, ``describe(name)``."""

from __future__ import annotations

from ..registry import Registry
from .base import PairwiseLoss

__all__ = ["OPTIONS", "aliases", "available", "check", "create", "describe", "register"]

_LOSSES = Registry("pairwise loss")
register = _LOSSES.register
available = _LOSSES.available
aliases = _LOSSES.aliases
describe = _LOSSES.describe
check = _LOSSES.check  # parameters checked without building (config loading)

#: construction options (how the loss is built, not what it computes), listed by ``describe`` with the parameters
OPTIONS = ("reduction",)


def create(name: str, **params) -> PairwiseLoss:
    """Build the loss registered as ``name``; unknown or missing parameters raise a ``ValueError``.

    >>> create("triplet", margin=0.3, reduction="none").reduction
    'none'
    """
    return _LOSSES.create(name, **params)
