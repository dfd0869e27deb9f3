"""Which prototypes each process owns (:func:`shard_range`), and what DDP and checkpoints need of the sharded heads
inside a module: their parameters (kept out of DDP's averaging) and their state gathered to, or cut from, the
whole-K layout of a dense head (a checkpoint independent of the world size)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..._checks import check_int
from ..base import Head
from .collectives import gather_rows_to_first, rank

__all__ = [
    "Shard",
    "full_state_dicts",
    "local_state_dicts",
    "shard_range",
    "sharded_parameter_names",
    "sharded_parameters",
]


def shard_range(num_classes: int, world_size: int, rank: int) -> tuple[int, int]:
    """The classes ``[start, end)`` of ``rank``: the first ``K mod W`` ranks own ``⌈K/W⌉`` classes, the others
    ``⌊K/W⌋``, in rank order (a balanced contiguous split). Needs ``1 ≤ W ≤ K``.

    >>> [shard_range(10, 3, r) for r in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    num_classes = check_int(num_classes, "num_classes", 1)
    world_size = check_int(world_size, "world_size", 1, what="a positive integer")
    rank = check_int(rank, "rank", 0, world_size - 1, what=f"an integer in [0, {world_size})")
    if world_size > num_classes:
        raise ValueError(
            f"a sharded head needs at least one class per process: num_classes={num_classes} is smaller than the"
            f" world size {world_size}; use fewer processes or the dense head"
        )
    base, extra = divmod(num_classes, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + int(rank < extra)


@dataclass(frozen=True)
class Shard:
    """This process's classes ``[start, end)`` of ``num_classes``, split over ``world_size`` processes."""

    start: int
    end: int
    num_classes: int
    world_size: int

    @classmethod
    def of(cls, num_classes: int, world_size: int, rank: int) -> Shard:
        return cls(*shard_range(num_classes, world_size, rank), num_classes, world_size)

    def sizes(self) -> list[int]:
        """The number of classes of every rank, in rank order."""
        ranges = (shard_range(self.num_classes, self.world_size, r) for r in range(self.world_size))
        return [b - a for a, b in ranges]


def _sharded_heads(module: nn.Module) -> list[tuple[str, Head]]:
    return [(name, m) for name, m in module.named_modules() if isinstance(m, Head) and m.sharded]


def sharded_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of every sharded head inside ``module`` (a different slice on each rank)."""
    return [p for _, m in _sharded_heads(module) for p in m.parameters()]


def sharded_parameter_names(module: nn.Module) -> list[str]:
    """Fully qualified names of the parameters of every sharded head inside ``module``: the names to keep out of
    DistributedDataParallel (``_set_params_and_buffers_to_ignore_for_model``)."""
    return [f"{name}.{p}" if name else p for name, m in _sharded_heads(module) for p, _ in m.named_parameters()]


def _param_index(optimizer: torch.optim.Optimizer) -> dict[int, int]:
    """id(parameter) → its index in ``optimizer.state_dict()`` (torch numbers parameters group by group)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return {id(p): i for i, p in enumerate(params)}


def _is_row_state(value: object, rows: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == rows


def full_state_dicts(module: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> tuple[dict, dict | None]:
    """``module.state_dict()`` and ``optimizer.state_dict()`` with every sharded head's prototypes, and the per-row
    optimizer state of those prototypes (tensors whose first dimension is the slice's rows: momentum, Adam moments,
    LazySGD's row clocks), gathered in the whole-K layout of the dense head. A collective: call it on every rank;
    rank 0 gets the whole state, the others their local state. Without sharded heads: the plain state dicts."""
    module_state = module.state_dict()
    optim_state = optimizer.state_dict() if optimizer is not None else None
    index = _param_index(optimizer) if optimizer is not None else {}
    for name, head in _sharded_heads(module):
        sizes = head.shard.sizes()
        key = f"{name}.weight" if name else "weight"
        module_state[key] = gather_rows_to_first(module_state[key], sizes)
        i = index.get(id(head.weight))
        if optim_state is not None and i in optim_state["state"]:
            entry = dict(optim_state["state"][i])  # a copy: the optimizer's live state is not touched
            for k in sorted(entry):
                if _is_row_state(entry[k], head.weight.shape[0]):
                    entry[k] = gather_rows_to_first(entry[k], sizes)
            optim_state["state"][i] = entry
    if rank() != 0:
        return module.state_dict(), optimizer.state_dict() if optimizer is not None else None
    return module_state, optim_state


def local_state_dicts(
    module: nn.Module, optimizer: torch.optim.Optimizer | None, module_state: dict, optim_state: dict | None
) -> tuple[dict, dict | None]:
    """From whole-K state dicts (a checkpoint of a sharded run of any world size, or of a dense run), the state
    dicts to load on this rank: each sharded head's rows ``[start, end)`` of its prototypes and of their per-row
    optimizer state. No communication; without sharded heads the states are returned as given."""
    module_state = dict(module_state)
    if optim_state is not None:
        optim_state = {**optim_state, "state": dict(optim_state["state"])}
    index = _param_index(optimizer) if optimizer is not None else {}
    for name, head in _sharded_heads(module):
        key = f"{name}.weight" if name else "weight"
        full = module_state.get(key)
        if not isinstance(full, torch.Tensor) or full.shape != (head.num_classes, head.embedding_dim):
            got = tuple(full.shape) if isinstance(full, torch.Tensor) else None
            raise ValueError(
                f"the state's {key!r} must hold all {head.num_classes} prototypes of dimension {head.embedding_dim},"
                f" got shape {got}"
            )
        a, b = head.shard.start, head.shard.end
        module_state[key] = full[a:b].clone()
        i = index.get(id(head.weight))
        if optim_state is not None and i in optim_state["state"]:
            entry = optim_state["state"][i]
            optim_state["state"][i] = {
                k: v[a:b].clone() if _is_row_state(v, head.num_classes) else v for k, v in entry.items()
            }
    return module_state, optim_state
