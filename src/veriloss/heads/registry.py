"""Heads by name: ``create(name, embedding_dim, num_classes, **params)``, ``available()``, ``describe(name)``."""

from __future__ import annotations

from ..registry import Registry
from .base import Head

__all__ = ["OPTIONS", "aliases", "available", "check", "create", "describe", "register"]

_HEADS = Registry("head", positional=("embedding_dim", "num_classes"))
register = _HEADS.register
available = _HEADS.available
aliases = _HEADS.aliases
describe = _HEADS.describe
check = _HEADS.check  # parameters checked without building (config loading)

#: construction options (how the head is built, not what it computes): every head takes init_std and reduction,
#: the α heads also chunk_size and sharded (``describe`` lists them with the parameters)
OPTIONS = ("init_std", "chunk_size", "sharded", "reduction")


def create(
    name: str,
    embedding_dim: int,
    num_classes: int,
    *,
    init_std: float | None = None,
    chunk_size: int | None = None,
    sharded: bool = False,
    reduction: str = "mean",
    **params,
) -> Head:
    """Build the head registered as ``name`` with its ``params``; unknown parameters raise a ``ValueError`` that lists
    the valid ones.

    Options: ``init_std`` (W ~ N(0, init_std²); None: the head's default, 0.01 for the cosine heads),
    ``chunk_size`` (stream W in chunks; α heads), ``sharded`` (W split over torch.distributed processes; α heads,
    built after ``init_process_group``), ``reduction`` ("mean", "sum" or "none": per-sample losses).

    >>> create("arcface", 128, 10, s=32.0).weight.shape
    torch.Size([10, 128])
    """
    accepted = describe(name)["parameters"]
    for option, value, default in (("chunk_size", chunk_size, None), ("sharded", sharded, False)):
        if option in accepted:
            params[option] = value
        elif value is not default:
            takers = [n for n in available() if option in describe(n)["parameters"]]
            raise ValueError(f"{option}: only the α heads ({', '.join(takers)}) take it, not {name!r}; remove {option}")
    return _HEADS.create(name, embedding_dim, num_classes, init_std=init_std, reduction=reduction, **params)
