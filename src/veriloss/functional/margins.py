"""Margin transforms of the target cosine: additive cosine (CosFace), additive angular (ArcFace), combined.

All take ``cos θ_y`` (any shape) and return the margin-penalized target cosine; callers multiply by the
scale s. Also here: the L-Softmax / A-Softmax target ψ(θ) with its λ schedule, and ElasticFace's random
per-sample margins.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_int

__all__ = [
    "OVERFLOW_POLICIES",
    "angle",
    "arcface_margin",
    "check_overflow_policy",
    "combined_margin",
    "cosface_margin",
    "elastic_margins",
    "lsoftmax_psi",
    "sphereface_lambda",
]

#: What ``cos(θ + m)`` does where ``θ + m > π`` (it stops decreasing, so the margin would reward moving away).
#: - ``"fallback"`` (default; insightface's and pytorch-metric-learning's choice): beyond ``θ > π − m`` use
#:   the CosFace-like ``cos θ − m·sin m``.
#: - ``"easy"``: apply the margin only where ``cos θ > 0`` ("easy margin" of the ArcFace reference code).
#: - ``"clamp"``: ``cos(min(θ + m, π))``: the value saturates at −1 and the gradient is zero beyond π − m.
#: - ``"none"``: plain ``cos(θ + m)``, non-monotone beyond π − m.
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


def check_overflow_policy(overflow: str) -> str:
    """``overflow`` must be one of :data:`OVERFLOW_POLICIES`."""
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, got {overflow!r}")
    return overflow


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
    ``cos θ − m2·sin m2 − m3`` (insightface's). With m1 = 1 and m2 = 0 no policy ever triggers: it is CosFace
    (exactly ``cos θ − m3``, also per sample where a tensor m2 is 0).
    """
    check_overflow_policy(overflow)
    plain = m1 == 1.0
    if plain and not isinstance(m2, torch.Tensor) and m2 == 0:
        return cos - m3
    # a Python m2 stays a number: a tensor made from it here would be a host-to-device copy, on a GPU a stream
    # synchronization at every step
    m2t = m2.to(device=cos.device, dtype=cos.dtype) if isinstance(m2, torch.Tensor) else float(m2)
    arc = m1 * angle(cos) + m2t
    if overflow == "none":
        target = torch.cos(arc) - m3
    elif overflow == "clamp":
        target = torch.cos(arc.clamp(max=math.pi)) - m3
    elif overflow == "easy":
        target = torch.where(cos > 0, torch.cos(arc) - m3, cos - m3)
    else:  # fallback: past the point where the angle reaches π, a CosFace-like penalty keeps the logit decreasing
        sin_m2 = torch.sin(m2t) if isinstance(m2t, torch.Tensor) else math.sin(m2t)
        target = torch.where(arc <= math.pi, torch.cos(arc) - m3, cos - m2t * sin_m2 - m3)
    if plain and isinstance(m2, torch.Tensor):  # per-sample m2 = 0 is CosFace, decided per element (no host read)
        target = torch.where(m2t == 0, cos - m3, target)
    return target


def lsoftmax_psi(cos: torch.Tensor, m: int) -> torch.Tensor:
    """L-Softmax / A-Softmax target function (Liu et al. 2016, 2017).

    ``ψ(θ) = (−1)^k cos(mθ) − 2k`` for ``θ ∈ [kπ/m, (k+1)π/m]``, ``k ∈ {0, …, m−1}``: continuous and
    monotonically decreasing on [0, π], from 1 at θ = 0 to ``1 − 2m`` at θ = π. ``cos(mθ)`` is evaluated as
    the Chebyshev polynomial ``T_m(cos θ)`` (no ``acos`` in the differentiated path, so the gradient is finite
    at θ = 0 and π); only the piece index k uses the angle, without gradient.
    """
    m = check_int(m, "m", 1, what="a positive integer")
    with torch.no_grad():
        k = torch.floor(angle(cos) * (m / math.pi)).clamp_(0, m - 1)
    t_prev, t = torch.ones_like(cos), cos
    for _ in range(m - 1):
        t_prev, t = t, 2 * cos * t - t_prev
    sign = 1.0 - 2.0 * torch.remainder(k, 2)
    return sign * t - 2.0 * k


def sphereface_lambda(
    iteration: int | torch.Tensor,
    lambda_base: float = 1000.0,
    lambda_min: float = 5.0,
    gamma: float = 0.12,
    power: float = 1.0,
) -> float | torch.Tensor:
    """SphereFace's annealing of the relaxed target ``(λ cos θ + ψ(θ)) / (1 + λ)``.

    ``λ = max(λ_min, λ_base · (1 + γ·it)^(−power))`` (the defaults are those of the SphereFace release:
    base 1000, γ = 0.12, power 1, floor 5). A tensor ``iteration`` gives a float64 tensor on its device (no host
    read), a Python integer a float.
    """
    if isinstance(iteration, torch.Tensor):
        lam = float(lambda_base) * (1.0 + float(gamma) * iteration.double()) ** (-float(power))
        return lam.clamp_min(float(lambda_min))
    return max(float(lambda_min), float(lambda_base) * (1.0 + float(gamma) * int(iteration)) ** (-float(power)))


def elastic_margins(
    target_cos: torch.Tensor,
    m: float,
    sigma: float,
    sort: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """ElasticFace per-sample margins (Boutros et al. 2022): ``m_i = m + σ·ε_i``, ``ε_i ~ N(0, 1)``.

    ``target_cos`` (B,) holds ``cos θ_{y_i}``; one margin is drawn per sample with ``torch.randn`` on
    ``generator``, by default the global generator of ``target_cos``'s device (seed it with
    ``torch.manual_seed`` for repeatable draws). With ``sort=True`` (the "+" variants) the drawn margins are
    assigned by rank: the sample with the lowest target cosine (hardest) gets the largest margin, the one with
    the highest the smallest. Note: the official ElasticFace code indexes the sorted margins with the sort
    permutation itself (``margin[argsort(cos)]``), which is the inverse of the by-rank assignment whenever the
    permutation is not an involution; we implement the by-rank assignment that the paper describes. The
    margins carry no gradient.
    """
    b = target_cos.shape[0]
    eps = torch.randn(b, generator=generator, device=target_cos.device, dtype=target_cos.dtype)
    margins = m + sigma * eps
    if not sort:
        return margins
    order = torch.argsort(target_cos.detach(), descending=True, stable=True)  # easiest (highest cos) first
    out = torch.empty_like(margins)
    out[order] = torch.sort(margins).values  # ascending: easiest gets the smallest margin
    return out
