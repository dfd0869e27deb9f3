"""Float64 oracles for the α-divergence family, written straight from LOSSES.md §2 (no code shared with veriloss).

- softargmax: bisection on τ over the full row (200 halvings: τ to machine precision);
- loss: ``Σ p z − D(p, q) + D(e_y, q) − z_y`` with ``D(p, q) = Σ q f_α(p/q)`` evaluated term by term.
"""

from __future__ import annotations

import math

import torch


def f_alpha(u: torch.Tensor, alpha: float) -> torch.Tensor:
    if alpha == 1.0:
        return torch.where(u > 0, u * torch.log(u.clamp_min(1e-300)), torch.zeros_like(u)) - u + 1
    return (u.pow(alpha) - 1 - alpha * (u - 1)) / (alpha * (alpha - 1))


def divergence(p: torch.Tensor, q: torch.Tensor, alpha: float) -> torch.Tensor:
    return (q * f_alpha(p / q, alpha)).sum(-1)


def softargmax(z: torch.Tensor, alpha: float, q: torch.Tensor | None = None) -> torch.Tensor:
    """Rows of z (…, K), float64; q broadcastable to z."""
    z = z.double()
    q = torch.ones_like(z) if q is None else torch.as_tensor(q, dtype=torch.float64).expand_as(z)
    if alpha == 1.0:
        return torch.softmax(z + q.log(), dim=-1)
    beta = 1.0 / (alpha - 1.0)

    def mass(tau):
        return (q * (1 + (alpha - 1) * (z - tau[..., None])).clamp_min(0).pow(beta)).sum(-1)

    # p_j = 1 for the j maximizing z_j − (q_j^{1−α} − 1)/(α − 1): the mass there is ≥ 1
    lo = (z - (q.pow(1 - alpha) - 1) / (alpha - 1)).amax(-1)
    hi = z.amax(-1) + 1 / (alpha - 1)  # every term is 0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        big = mass(mid) >= 1
        lo = torch.where(big, mid, lo)
        hi = torch.where(big, hi, mid)
    tau = 0.5 * (lo + hi)
    return q * (1 + (alpha - 1) * (z - tau[..., None])).clamp_min(0).pow(beta)


def loss(z: torch.Tensor, y: torch.Tensor, alpha: float, q: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample loss, float64."""
    z = z.double()
    q = torch.ones_like(z) if q is None else torch.as_tensor(q, dtype=torch.float64).expand_as(z)
    p = softargmax(z, alpha, q)
    e = torch.nn.functional.one_hot(y, z.shape[-1]).double()
    rows = torch.arange(z.shape[0])
    return (p * z).sum(-1) - divergence(p, q, alpha) + divergence(e, q, alpha) - z[rows, y]


def separation(kappa: float, alpha: float) -> float:
    """The zero-loss gap ``κ^{1−α}/(α−1)`` of LOSSES.md §2."""
    return math.pow(kappa, 1 - alpha) / (alpha - 1)
