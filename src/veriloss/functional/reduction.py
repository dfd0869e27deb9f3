"""Loss reductions, as torch's losses name them: ``"mean"`` (default), ``"sum"``, ``"none"`` (per sample)."""

from __future__ import annotations

import torch

__all__ = ["REDUCTIONS", "check_reduction", "reduce_loss"]

#: the accepted values of every loss's ``reduction``
REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: object) -> str:
    """``reduction`` must be one of :data:`REDUCTIONS`."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def reduce_loss(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """The mean or the sum of the per-sample losses (B,), or the losses themselves for ``"none"``.

    >>> reduce_loss(torch.tensor([1.0, 3.0]), "sum")
    tensor(4.)
    """
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample
