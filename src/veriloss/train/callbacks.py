"""Training callbacks that change a loss over time: margin warm-up (A3M-I re-initialization is in the trainer)."""

from __future__ import annotations

from torch import nn

from ..heads.alpha import QMarginHead

__all__ = ["MarginWarmup"]

_MARGIN_ATTRIBUTES = ("m", "m2", "m3")


class MarginWarmup:
    """Ramp a head's margin linearly from 0 to its configured value over ``steps`` steps.

    Additive margins (``m``; ``m2``, ``m3`` of the combined margin) are scaled by f = min(1, (step + 1)/steps).
    Q-Margin's margin lives in the reference measure: κ is ramped geometrically, ``κ(f) = κ^f`` (κ = 1 is no
    margin). Heads without a margin, and ``steps`` = 0, are left alone.
    """

    def __init__(self, head: nn.Module, steps: int):
        if steps < 0:
            raise ValueError(f"loss.margin_warmup_steps must be ≥ 0, got {steps}")
        self.head, self.steps = head, steps
        self.base = {}
        if steps:
            if isinstance(head, QMarginHead):
                self.base["kappa"] = head.kappa
            else:
                self.base = {
                    a: getattr(head, a) for a in _MARGIN_ATTRIBUTES if isinstance(getattr(head, a, None), float)
                }
            if not self.base:
                raise ValueError(f"loss.margin_warmup_steps is set but the {type(head).__name__} head has no margin")

    def __call__(self, step: int) -> None:
        if not self.steps:
            return
        f = min(1.0, (step + 1) / self.steps)
        for attr, value in self.base.items():
            setattr(self.head, attr, value**f if attr == "kappa" else value * f)
