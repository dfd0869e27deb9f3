"""Optimizers by name (the config's ``optim.name``): ``register_optimizer(name, build)`` adds one.

A builder takes the parameter groups (backbone; head with its own learning rate and weight decay) and the whole
``optim`` section, and returns a ``torch.optim.Optimizer``. Built in: ``sgd``, ``adamw`` and ``lazy-sgd`` (SGD for
the sparse prototype gradients of streaming α heads, :class:`veriloss.train.sparse_optim.LazySGD`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from ..registry import Registry
from .sparse_optim import LazySGD

__all__ = ["available", "build_optimizer", "param_groups", "register_optimizer"]

Builder = Callable[[list[dict], dict], torch.optim.Optimizer]
_OPTIMIZERS = Registry("optimizer")
available = _OPTIMIZERS.available


def register_optimizer(name: str, build: Builder, aliases: tuple[str, ...] = ()) -> Builder:
    """Make ``optim.name: <name>`` build ``build(groups, optim_section)``.

    >>> register_optimizer("my-sgd", lambda groups, cfg: torch.optim.SGD(groups, lr=cfg["lr"]))  # doctest: +ELLIPSIS
    <function <lambda> at ...>
    >>> _OPTIMIZERS.unregister("my-sgd")
    """
    return _OPTIMIZERS.register(name, build, aliases)


def param_groups(backbone: nn.Module, loss: nn.Module, cfg: dict) -> list[dict]:
    """The backbone's trainable parameters at ``lr`` and ``weight_decay``; the loss's (prototypes, centres) at
    ``lr × head_lr_scale`` and ``head_weight_decay`` (None: ``weight_decay``). Empty groups are left out."""
    lr, wd = float(cfg["lr"]), float(cfg["weight_decay"])
    head_wd = wd if cfg.get("head_weight_decay") is None else float(cfg["head_weight_decay"])

    def trainable(module: nn.Module) -> list[nn.Parameter]:
        return [p for p in module.parameters() if p.requires_grad]

    groups = [
        {"params": trainable(backbone), "lr": lr, "weight_decay": wd},
        {"params": trainable(loss), "lr": lr * float(cfg.get("head_lr_scale", 1.0)), "weight_decay": head_wd},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(backbone: nn.Module, loss: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    """The optimizer the ``optim`` section names, over :func:`param_groups`."""
    return _OPTIMIZERS.spec(cfg["name"]).cls(param_groups(backbone, loss, cfg), cfg)


def _sgd(groups: Iterable[dict], cfg: dict) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=float(cfg["lr"]), momentum=float(cfg["momentum"]), nesterov=cfg["nesterov"])


def _adamw(groups: Iterable[dict], cfg: dict) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=float(cfg["lr"]), betas=tuple(cfg["betas"]))


def _lazy_sgd(groups: Iterable[dict], cfg: dict) -> torch.optim.Optimizer:
    return LazySGD(groups, lr=float(cfg["lr"]), momentum=float(cfg["momentum"]), nesterov=cfg["nesterov"])


register_optimizer("sgd", _sgd)
register_optimizer("adamw", _adamw)
register_optimizer("lazy-sgd", _lazy_sgd)
