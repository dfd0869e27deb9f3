"""Pairwise distances between embeddings (B×d) and prototypes (K×d), for the harmonic loss (docs/losses.md).

Every function returns the B×K matrix ``d(x_i, W_j)``. The Lp family (euclidean, manhattan, minkowski,
chebyshev, bray-curtis, mahalanobis) goes through :func:`torch.cdist`, which never materializes the B×K×d
differences and has finite (sub)gradients at zero distance; canberra needs the B×K×d differences (memory
``B·K·d`` floats).

Range: :func:`scaled_pairwise_distance` first multiplies x and W by one exact power of two that brings their largest
magnitude into [¼, ½) (so ``|x_i − w_i| < 1`` and no power in the Lp sums overflows), and returns the distances of
the scaled inputs with the exponent: ``d = d_s · 2^-k``. The Lp distances are 1-homogeneous (k undoes the scaling);
cosine, canberra and bray-curtis are scale-invariant (k = 0). :func:`pairwise_distance` applies the exponent, so it
is inf only where a distance itself exceeds the dtype's range; the harmonic head works with ``log d`` directly.
"""

from __future__ import annotations

import torch

from .normalize import cosine_matrix, mul_pow2, pow2, scale_exponent

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
    "scaled_pairwise_distance",
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
    """``1 − cos θ = 1 − x̂·ŵ`` ∈ [0, 2] (scale-invariant for any finite rows)."""
    return 1.0 - cosine_matrix(x, w)


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


_SCALE_FREE = ("cosine", "canberra", "bray-curtis")


def _common_scale(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x·2^k and w·2^k with one k (a 0-d int tensor) that puts the larger max-abs of the two in [¼, ½)."""
    k = torch.minimum(scale_exponent(x, None, 1), scale_exponent(w, None, 1))
    f = pow2(k, x.dtype)
    return x * f, w * f, k


def _distance(x, w, distance, p, factor) -> torch.Tensor:
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
    return mahalanobis_distance(x, w, factor)


def _check_distance(distance: str, factor: torch.Tensor | None) -> None:
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
    if distance == "mahalanobis" and factor is None:
        raise ValueError("distance 'mahalanobis' needs factor (the d×d factor L of the precision L Lᵀ)")


def scaled_pairwise_distance(
    x: torch.Tensor,
    w: torch.Tensor,
    distance: str = "euclidean",
    p: float = 3.0,
    factor: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(d_s, k)`` with ``d(x_i, w_j) = d_s[i, j] · 2^-k`` (k a 0-d integer tensor, no gradient): the distances of
    the power-of-two-scaled inputs (see the module docstring), finite for any finite inputs. Arguments as
    :func:`pairwise_distance`."""
    _check_distance(distance, factor)
    zero = torch.zeros((), dtype=torch.int32, device=x.device)
    if distance == "cosine":
        return cosine_distance(x, w), zero
    xs, ws, k = _common_scale(x, w)
    if distance == "mahalanobis":  # project the scaled inputs, then rescale the projections (L may be large too)
        xs, ws, k2 = _common_scale(xs @ factor, ws @ factor)
        return euclidean_distance(xs, ws), k + k2
    return _distance(xs, ws, distance, p, factor), zero if distance in _SCALE_FREE else k


def pairwise_distance(
    x: torch.Tensor,
    w: torch.Tensor,
    distance: str = "euclidean",
    p: float = 3.0,
    factor: torch.Tensor | None = None,
) -> torch.Tensor:
    """The B×K distances ``d(x_i, w_j)`` named by ``distance`` (one of :data:`DISTANCES`).

    ``p`` is used by minkowski only; ``factor`` (the d×d factor L of the precision L Lᵀ) by mahalanobis only.
    Computed on power-of-two-scaled inputs: no overflow in the sums, inf only where the distance itself exceeds
    the dtype's range.
    """
    d_s, k = scaled_pairwise_distance(x, w, distance, p, factor)
    return mul_pow2(d_s, -k)
