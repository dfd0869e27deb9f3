"""The parameter object every α kernel (dense, streaming, sharded) takes: what the head feeds the α loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["AlphaLogits"]


@dataclass(frozen=True)
class AlphaLogits:
    """The α link of a head: logits ``z_j = s·cos θ_j`` (j ≠ y) and ``z_y = s·target(cos θ_y)`` (``target`` None: no
    margin on the target), reference measure ``q_j = 1`` (j ≠ y) and ``q_y = kappa`` (None: the unit measure).

    >>> AlphaLogits(alpha=1.5, s=8.0).target_logit(torch.tensor([0.5]))
    tensor([4.])
    """

    alpha: float
    s: float
    target: Callable[[torch.Tensor], torch.Tensor] | None = None
    kappa: float | None = None

    def target_logit(self, cos_y: torch.Tensor) -> torch.Tensor:
        """The target logits (n,) of the target cosines (n,), differentiably (the head's margin hook)."""
        return self.s * (cos_y if self.target is None else self.target(cos_y))

    def target_q(self, y: torch.Tensor) -> torch.Tensor | None:
        """The reference weight of each row's target (B,), float64, or None for the unit measure."""
        if self.kappa is None:
            return None
        return torch.full(y.shape, self.kappa, dtype=torch.float64, device=y.device)
