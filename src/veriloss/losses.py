"""One factory for every training loss: a prototype head or a pair loss, plus weighted auxiliary pair losses.

``from_config(loss_section, embedding_dim, num_classes)`` builds what a training config's ``loss`` section names
(the trainer and the bench use it); :func:`catalogue` describes every loss of both families (``veriloss losses``);
:func:`main_head` finds the head inside a weighted sum.
"""

from __future__ import annotations

from torch import nn

from . import heads, pairwise

__all__ = ["catalogue", "from_config", "main_head"]


def _fill(cls_params: dict, params: dict, embedding_dim: int, num_classes: int) -> dict:
    """Add embedding_dim / num_classes to ``params`` when the loss takes them and they are not given."""
    out = dict(params)
    for key, value in (("embedding_dim", embedding_dim), ("num_classes", num_classes)):
        if key in cls_params and key not in out:
            out[key] = value
    return out


def _is(registry, name: str) -> bool:
    return name.lower() in registry.available() or name.lower() in registry.aliases()


def from_config(loss_cfg: dict, embedding_dim: int, num_classes: int) -> nn.Module:
    """The loss of a config's ``loss`` section: ``name`` (a head of :mod:`veriloss.heads` or a loss of
    :mod:`veriloss.pairwise`) with ``params`` (for the α heads also ``chunk_size`` and ``sharded``), prototypes
    drawn with ``init_std`` (null: the head's default), plus ``aux`` terms (``[{name, weight, params}]``, pair
    losses added by weight as a :class:`veriloss.pairwise.WeightedSum`). Training takes the mean loss.

    >>> loss = from_config({"name": "arcface", "params": {"s": 16.0}, "init_std": 0.01}, 128, 10)
    >>> type(loss).__name__, tuple(loss.weight.shape)
    ('ArcFace', (10, 128))
    """
    name = loss_cfg["name"]
    params = dict(loss_cfg.get("params") or {})
    for key, fix in (("init_std", "set it as loss.init_std"), ("reduction", "training takes the mean loss")):
        if key in params:
            raise ValueError(f"loss.params.{key} is not a loss parameter here: {fix}; remove it")
    init_std = loss_cfg.get("init_std")
    if _is(heads, name):
        main = heads.create(name, embedding_dim, num_classes, init_std=init_std, **params)
    elif _is(pairwise, name):
        if init_std is not None:
            raise ValueError(f"loss.init_std applies to heads with prototypes (W), not to the pair loss {name!r}")
        spec = pairwise.describe(name)["parameters"]
        main = pairwise.create(name, **_fill(spec, params, embedding_dim, num_classes))
    else:
        valid = ", ".join(heads.available() + pairwise.available())
        raise ValueError(f"loss.name: unknown loss {name!r}; available: {valid}")
    aux = loss_cfg.get("aux") or []
    if not aux:
        return main
    terms = {}
    for i, term in enumerate(aux):
        if not isinstance(term, dict) or "name" not in term or "weight" not in term:
            raise ValueError(f"loss.aux[{i}] must be a mapping with 'name', 'weight' and optional 'params'")
        aux_params = term.get("params") or {}
        if "reduction" in aux_params:
            raise ValueError(f"loss.aux[{i}].params.reduction: training takes the mean loss; remove it")
        spec = pairwise.describe(term["name"])["parameters"]
        module = pairwise.create(term["name"], **_fill(spec, aux_params, embedding_dim, num_classes))
        terms[term["name"]] = (float(term["weight"]), module)
    return pairwise.WeightedSum(main, terms)


def catalogue() -> list[dict]:
    """Every registered loss as a dict: family ("head" or "pairwise"), name, aliases, parameters, options (how it is
    built: init_std, reduction, ...), fixed, reference, summary, usage.

    >>> [e["options"] for e in catalogue() if e["name"] == "triplet"]
    [{'reduction': 'mean'}]
    """
    out = []
    for family, registry, usage in (
        ("head", heads, "veriloss.heads.create({!r}, embedding_dim, num_classes, **params, **options)"),
        ("pairwise", pairwise, "veriloss.pairwise.create({!r}, **params, **options)"),
    ):
        for name in registry.available():
            entry = registry.describe(name)
            entry["options"] = {k: entry["parameters"].pop(k) for k in registry.OPTIONS if k in entry["parameters"]}
            entry.update(family=family, usage=usage.format(name))
            out.append(entry)
    return out


def main_head(loss: nn.Module) -> nn.Module:
    """The head inside a loss (the loss itself, or the main term of a WeightedSum)."""
    return loss.main if isinstance(loss, pairwise.WeightedSum) else loss
