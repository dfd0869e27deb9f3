"""One factory for every training loss: a prototype head or a pair loss, plus weighted auxiliary pair losses.

``from_config(loss_section, embedding_dim, num_classes)`` builds what a training config's ``loss`` section names;
the trainer, the bench and ``veriloss losses`` use it. :func:`main_head` finds the head inside a weighted sum.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import heads, pairwise
from .heads import sharded

__all__ = ["from_config", "init_prototypes", "main_head"]


def _fill(cls_params: dict, params: dict, embedding_dim: int, num_classes: int) -> dict:
    """Add embedding_dim / num_classes to ``params`` when the loss takes them and they are not given."""
    out = dict(params)
    for key, value in (("embedding_dim", embedding_dim), ("num_classes", num_classes)):
        if key in cls_params and key not in out:
            out[key] = value
    return out


def from_config(loss_cfg: dict, embedding_dim: int, num_classes: int) -> nn.Module:
    """The loss of a config's ``loss`` section: ``name`` (a head of :mod:`veriloss.heads` or a loss of
    :mod:`veriloss.pairwise`) with ``params``, prototypes redrawn by ``init_std``, plus ``aux`` terms
    (``[{name, weight, params}]``, pair losses added by weight as a :class:`veriloss.pairwise.WeightedSum`).

    >>> loss = from_config({"name": "arcface", "params": {"s": 16.0}, "init_std": 0.01}, 128, 10)
    >>> type(loss).__name__, tuple(loss.weight.shape)
    ('ArcFace', (10, 128))
    """
    name = loss_cfg["name"]
    params = dict(loss_cfg.get("params") or {})
    shard = params.pop("sharded", False)  # α heads: prototypes split over the processes (veriloss.heads.sharded)
    if not isinstance(shard, bool):
        raise ValueError(f"loss.params.sharded must be true or false, got {shard!r}")
    if shard:
        main = sharded.create(name, embedding_dim, num_classes, **params)
    elif name.lower() in heads.available() or name.lower() in heads.aliases():
        main = heads.create(name, embedding_dim, num_classes, **params)
    elif name.lower() in pairwise.available() or name.lower() in pairwise.aliases():
        spec = pairwise.describe(name)["parameters"]
        main = pairwise.create(name, **_fill(spec, params, embedding_dim, num_classes))
    else:
        valid = ", ".join(heads.available() + pairwise.available())
        raise ValueError(f"loss.name: unknown loss {name!r}; available: {valid}")
    init_prototypes(main, loss_cfg.get("init_std"))
    aux = loss_cfg.get("aux") or []
    if not aux:
        return main
    terms = {}
    for i, term in enumerate(aux):
        if not isinstance(term, dict) or "name" not in term or "weight" not in term:
            raise ValueError(f"loss.aux[{i}] must be a mapping with 'name', 'weight' and optional 'params'")
        spec = pairwise.describe(term["name"])["parameters"]
        module = pairwise.create(term["name"], **_fill(spec, term.get("params") or {}, embedding_dim, num_classes))
        terms[term["name"]] = (float(term["weight"]), module)
    return pairwise.WeightedSum(main, terms)


def init_prototypes(head: nn.Module, init_std: float | None) -> None:
    """Redraw the prototypes W (K×d) from N(0, init_std²), e.g. 0.01 as insightface does (None: leave them).

    For cosine heads only the direction of a prototype enters the logits, but its norm sets the effective learning
    rate of that direction (the gradient of ``W/‖W‖`` scales as ``1/‖W‖``): rows of norm 0.01·√d learn far faster
    than rows of norm ≈ 1. A sharded head draws the whole K×d matrix and keeps its slice, so every world size
    starts from the same prototypes.
    """
    if init_std is None:
        return
    std = float(init_std)
    if not math.isfinite(std) or std <= 0:
        raise ValueError(f"loss.init_std must be a positive number or null, got {init_std!r}")
    weight = getattr(head, "weight", None)
    if not isinstance(weight, nn.Parameter) or weight.ndim != 2:
        raise ValueError(f"loss.init_std applies to heads with prototypes (W), not to {type(head).__name__}")
    start = int(getattr(head, "shard_start", 0))
    rows = int(getattr(head, "num_classes", weight.shape[0]))
    full = torch.empty(rows, weight.shape[1], dtype=weight.dtype).normal_(0.0, std)
    with torch.no_grad():
        weight.copy_(full[start : start + weight.shape[0]])


def main_head(loss: nn.Module) -> nn.Module:
    """The head inside a loss (the loss itself, or the main term of a WeightedSum)."""
    return loss.main if isinstance(loss, pairwise.WeightedSum) else loss
