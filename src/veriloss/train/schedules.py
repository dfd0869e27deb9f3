"""Learning-rate schedules by name (the config's ``schedule.kind``): ``register_schedule(name, factor)`` adds one.

Every schedule is a multiplier of the base learning rate per step, after a linear warm-up from 0 over
``warmup_steps``. A factor builder takes the ``schedule`` section and the number of steps after warm-up and returns
``f(t) -> float`` for t = 0, 1, … Built in: ``cosine`` (to ``min_lr_scale``), ``step`` (× ``gamma`` at each
milestone, fractions of the whole run) and ``constant``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..registry import Registry

__all__ = ["available", "build_schedule", "lr_factor", "register_schedule"]

Factor = Callable[[int], float]
_SCHEDULES = Registry("schedule")
available = _SCHEDULES.available


def register_schedule(name: str, build: Callable[[dict, int, int], Factor]) -> Callable:
    """Make ``schedule.kind: <name>`` use ``build(section, total_steps, warmup_steps) -> f(step) -> factor``."""
    return _SCHEDULES.register(name, build)


def lr_factor(schedule: dict, total_steps: int) -> Factor:
    """The multiplier of the learning rate at each step: linear warm-up, then the named schedule."""
    warmup = int(schedule.get("warmup_steps") or 0)
    after = _SCHEDULES.spec(schedule.get("kind", "cosine")).cls(schedule, total_steps, warmup)

    def factor(step: int) -> float:
        return (step + 1) / warmup if step < warmup else after(step)

    return factor


def build_schedule(optimizer: torch.optim.Optimizer, schedule: dict, total_steps: int):
    """A ``LambdaLR`` over ``optimizer`` following :func:`lr_factor` (stepped once per training step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(schedule, total_steps))


def _cosine(schedule: dict, total_steps: int, warmup: int) -> Factor:
    floor = float(schedule.get("min_lr_scale") or 0.0)

    def f(step: int) -> float:
        t = (step - warmup) / max(1, total_steps - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


def _step(schedule: dict, total_steps: int, warmup: int) -> Factor:
    milestones = [round(f * total_steps) for f in schedule.get("milestones") or []]
    gamma = float(schedule.get("gamma", 0.1))
    return lambda step: gamma ** sum(step >= m for m in milestones)


register_schedule("cosine", _cosine)
register_schedule("step", _step)
register_schedule("constant", lambda schedule, total, warmup: lambda step: 1.0)
