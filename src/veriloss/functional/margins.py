"""Margin transforms of the target cosine: additive cosine (CosFace), additive angular (ArcFace), combined.

All take ``cos θ_y`` (any shape) and return the margin-penalized target cosine; callers multiply by the scale s.
"""

from __future__ import annotations

import math

import torch

__all__ = ["OVERFLOW_POLICIES", "cosface_margin", "arcface_margin", "combined_margin", "angle"]

#: What ``cos(θ + m)`` does where ``θ + m > π`` (it stops decreasing there, so the margin would reward moving away).
#: - ``"fallback"`` (default, insightface's choice): beyond ``θ > π − m`` use the CosFace-like ``cos θ − m·sin m``.
#: - ``"easy"``: apply the margin only where ``cos θ > 0`` ("easy margin" of the ArcFace reference code).
#: - ``"clamp"``: ``cos(min(θ + m, π))``: the value saturates at −1 and the gradient is zero beyond π − m.
#: - ``"none"``: plain ``cos(θ + m)``, non-monotone beyond π − m (pytorch-metric-learning's ArcFaceLoss).
OVERFLOW_POLICIES = ("fallback", "easy", "clamp", "none")

# acos has an infinite derivative at ±1; keep θ a hair inside (0, π) so gradients stay finite in float32.
_EPS = 1e-7


def angle(cos: torch.Tensor) -> torch.Tensor:
    """θ = arccos(cos θ), with the argument clamped to [−1 + ε, 1 − ε] so the gradient is finite."""
    eps = _EPS if cos.dtype != torch.float64 else 1e-12
    return torch.acos(cos.clamp(-1.0 + eps, 1.0 - eps))


def cosface_margin(cos: torch.Tensor, m: float | torch.Tensor) -> torch.Tensor:
    """CosFace / AM-Softmax target: ``cos θ − m`` (Wang et al. 2018)."""
    return cos - m


def _check_policy(overflow: str) -> None:
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, got {overflow!r}")


def arcface_margin(cos: torch.Tensor, m: float | torch.Tensor, overflow: str = "fallback") -> torch.Tensor:
    """ArcFace target ``cos(θ + m)`` (Deng et al. 2019) with the ``θ + m > π`` behaviour set by ``overflow``.

    ``m`` may be a scalar or a tensor broadcastable to ``cos`` (per-sample margins, as in ElasticFace).
    """
    return combined_margin(cos, 1.0, m, 0.0, overflow)


def combined_margin(
    cos: torch.Tensor,
    m1: float = 1.0,
    m2: float | torch.Tensor = 0.0,
    m3: float | torch.Tensor = 0.0,
    overflow: str = "fallback",
) -> torch.Tensor:
    """insightface's combined margin ``cos(m1·θ + m2) − m3``; ArcFace is (1, m, 0), CosFace (1, 0, m).

    ``overflow`` acts where ``m1·θ + m2 > π`` exactly as in :func:`arcface_margin`; the fallback there is
    ``cos θ − m2·sin m2 − m3`` (insightface's). With m1 = 1 and m2 = 0 no policy ever triggers: it is CosFace.
    """
    _check_policy(overflow)
    theta = angle(cos)
    m2t = torch.as_tensor(m2, dtype=cos.dtype, device=cos.device)
    if m1 == 1.0 and not bool((m2t != 0).any()):
        return cos - m3
    arc = m1 * theta + m2t
    if overflow == "none":
        return torch.cos(arc) - m3
    if overflow == "clamp":
        return torch.cos(arc.clamp(max=math.pi)) - m3
    target = torch.cos(arc) - m3
    if overflow == "easy":
        return torch.where(cos > 0, target, cos - m3)
    # fallback: past the point where the angle reaches π, a CosFace-like penalty keeps the logit decreasing in θ
    return torch.where(arc <= math.pi, target, cos - m2t * torch.sin(m2t) - m3)
