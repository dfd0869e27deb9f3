"""Pairwise distances between embeddings (B×d) and prototypes (K×d), for the harmonic loss (LOSSES.md §1).

Every function returns the B×K matrix ``d(x_i, W_j)``. The Lp family (euclidean, manhattan, minkowski,
chebyshev, bray-curtis, mahalanobis) goes through :func:`torch.cdist`, which never materializes the B×K×d
differences and has finite (sub)gradients at zero distance; canberra needs the B×K×d differences (memory
``B·K·d`` floats).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "DISTANCES",
    "bray_curtis_distance",
    "canberra_distance",
    "chebyshev_distance",
    "cosine_distance",
    "euclidean_distance",
    "mahalanobis_distance",
    "manhattan_distance",
    "minkowski_distance",
    "pairwise_distance",
]

#: names accepted by :func:`pairwise_distance` (and the harmonic head's ``distance``)
DISTANCES = (
    "euclidean",
    "cosine",
    "manhattan",
    "minkowski",
    "chebyshev",
    "canberra",
    "bray-curtis",
    "mahalanobis",
)

# a denominator that is exactly zero (bray-curtis with x = −w) is replaced by this, giving a huge but finite
# distance
_TINY = 1e-12


def euclidean_distance(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``‖x − w‖₂``."""
    return torch.cdist(x, w, p=2.0)


def cosine_distance(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``1 − cos θ = 1 − x̂·ŵ`` ∈ [0, 2]."""
    return 1.0 - (F.normalize(x, dim=1) @ F.normalize(w, dim=1).t()).clamp(-1.0, 1.0)


def manhattan_distance(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``Σ_i |x_i − w_i|``."""
    return torch.cdist(x, w, p=1.0)


def minkowski_distance(x: torch.Tensor, w: torch.Tensor, p: float) -> torch.Tensor:
    """``(Σ_i |x_i − w_i|^p)^(1/p)``, p ≥ 1."""
    return torch.cdist(x, w, p=float(p))


def chebyshev_distance(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``max_i |x_i − w_i|``."""
    return torch.cdist(x, w, p=float("inf"))


def canberra_distance(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``Σ_i |x_i − w_i| / (|x_i| + |w_i|)``, a term with ``x_i = w_i = 0`` counting 0 (scipy's
    convention)."""
    num = (x[:, None, :] - w[None, :, :]).abs()
    den = x.abs()[:, None, :] + w.abs()[None, :, :]
    zero = den == 0
    return torch.where(zero, torch.zeros_like(num), num / den.masked_fill(zero, 1.0)).sum(dim=2)


def bray_curtis_distance(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``Σ_i |x_i − w_i| / Σ_i |x_i + w_i|`` (scipy's ``braycurtis``); a zero denominator is replaced by
    1e-12."""
    return torch.cdist(x, w, p=1.0) / torch.cdist(x, -w, p=1.0).clamp_min(_TINY)


def mahalanobis_distance(x: torch.Tensor, w: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``sqrt((x − w)ᵀ M (x − w))`` with the precision ``M = L Lᵀ`` given by its factor ``L`` (d×d).

    Computed as the Euclidean distance between ``xᵀL`` and ``wᵀL``; M is positive semi-definite for any L.
    """
    return torch.cdist(x @ factor, w @ factor, p=2.0)


def pairwise_distance(
    x: torch.Tensor,
    w: torch.Tensor,
    distance: str = "euclidean",
    p: float = 3.0,
    factor: torch.Tensor | None = None,
) -> torch.Tensor:
    """The B×K distances ``d(x_i, w_j)`` named by ``distance`` (one of :data:`DISTANCES`).

    ``p`` is used by minkowski only; ``factor`` (the d×d factor L of the precision L Lᵀ) by mahalanobis only.
    """
    if distance == "euclidean":
        return euclidean_distance(x, w)
    if distance == "cosine":
        return cosine_distance(x, w)
    if distance == "manhattan":
        return manhattan_distance(x, w)
    if distance == "minkowski":
        return minkowski_distance(x, w, p)
    if distance == "chebyshev":
        return chebyshev_distance(x, w)
    if distance == "canberra":
        return canberra_distance(x, w)
    if distance == "bray-curtis":
        return bray_curtis_distance(x, w)
    if distance == "mahalanobis":
        if factor is None:
            raise ValueError("distance 'mahalanobis' needs factor (the d×d factor L of the precision L Lᵀ)")
        return mahalanobis_distance(x, w, factor)
    raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
