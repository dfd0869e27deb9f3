"""This process's place in torch.distributed: one definition for the heads, the trainer and the metrics."""

from __future__ import annotations

import torch.distributed as dist

__all__ = ["is_distributed", "rank", "world_size"]


def is_distributed() -> bool:
    """Whether a process group of more than one process is initialized."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank in the default group (0 without one)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes of the default group (1 without one)."""
    return dist.get_world_size() if is_distributed() else 1
