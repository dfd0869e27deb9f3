"""Prototype heads (LOSSES.md §1–2): ``create(name, embedding_dim, num_classes, **params)``, ``available()``."""

from . import (  # noqa: F401
    alpha,
    angular,
    classic,
    harmonic,
    sface,
)
from .base import Head, cosine
from .registry import aliases, available, create, describe, register

__all__ = ["Head", "aliases", "available", "cosine", "create", "describe", "register"]
