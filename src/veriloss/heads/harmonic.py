"""Harmonic loss (Baek et al. 2025) with the distance layers of the 2026 study, docs/losses.md."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_positive
from ..functional.distances import DISTANCES, pairwise_distance, scaled_pairwise_distance
from ..functional.precision import compute_dtype
from .base import Head
from .registry import register

__all__ = ["Harmonic"]


class Harmonic(Head):
    """Harmonic loss: ``p_j ∝ d(x, W_j)^(−n)``, i.e. cross-entropy on the logits ``−n · log d_j``.

    The logits are computed in log space as ``−n · log(d_j + eps)`` with ``eps = 1e-6`` (:attr:`eps`), so a
    sample sitting on a prototype gives a large finite logit instead of ``inf``. ``distance`` is one of
    :data:`~veriloss.functional.distances.DISTANCES` (euclidean, cosine = ``1 − cos θ``, manhattan, minkowski
    with exponent ``p`` (≥ 1, default 3), chebyshev, canberra, bray-curtis, mahalanobis). Mahalanobis learns
    its precision ``M = L Lᵀ`` through the d×d factor ``L`` (parameter ``precision_factor``, initialized to
    the identity, i.e. the Euclidean distance). ``n=None`` (default, our choice) uses ``n = √d``; the 2026
    study found cosine the best trade-off on vision tasks. Embeddings and prototypes are used un-normalized
    (except by the cosine distance, whose prototypes start as the cosine heads' do, N(0, 0.01²)).

    Range (our choice): finite for any finite inputs, no raise. The distances are computed on inputs scaled by an
    exact power of two (``d = d_s·2^-k``, :func:`~veriloss.functional.distances.scaled_pairwise_distance`) and the
    logits in log space, ``log(d + eps) = logaddexp(log d_s − k·ln 2, log eps)``, so a distance beyond the float
    range still has its exact logit. Minkowski with a very large ``p`` (≫ 30) can still underflow its powers.
    """

    reference = "Baek et al. 2025, Harmonic loss trains interpretable AI models; harmonic distance layers 2026"
    eps = 1e-6

    @property
    def normalized_prototypes(self) -> bool:
        """Only the cosine distance sees nothing but the direction of each prototype."""
        return self.distance == "cosine"

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        distance: str = "euclidean",
        n: float | None = None,
        p: float = 3.0,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
        self.distance = distance  # before the base's init: it sets the default init (normalized_prototypes)
        super().__init__(embedding_dim, num_classes, init_std=init_std, reduction=reduction)
        self.n = math.sqrt(embedding_dim) if n is None else check_positive(n, "n")
        self.p = check_positive(p, "p")
        if self.p < 1:
            raise ValueError(f"p must be ≥ 1 (minkowski is a metric only then), got {p!r}")
        if distance == "mahalanobis":
            self.precision_factor = torch.nn.Parameter(torch.eye(embedding_dim))
        else:
            self.precision_factor = None

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """The B×K distances ``d(x_i, W_j)``."""
        x = compute_dtype(x)
        factor = None if self.precision_factor is None else self.precision_factor.to(x.dtype)
        return pairwise_distance(x, self.weight.to(x.dtype), self.distance, self.p, factor)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = compute_dtype(x)
        factor = None if self.precision_factor is None else self.precision_factor.to(x.dtype)
        d_s, k = scaled_pairwise_distance(x, self.weight.to(x.dtype), self.distance, self.p, factor)
        positive = d_s > 0
        log_d = torch.log(torch.where(positive, d_s, 1.0)) - k.to(x.dtype) * math.log(2.0)
        log_d = torch.where(positive, log_d, -math.inf)  # a sample on its prototype: log(0 + eps) = log eps
        return -self.n * torch.logaddexp(log_d, log_d.new_full((), math.log(self.eps)))  # filled on the device

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self.logits(x)
        self._record_accuracy(z, y)
        return F.cross_entropy(z, y, reduction="none")

    def extra_repr(self) -> str:
        extra = f", p={self.p:g}" if self.distance == "minkowski" else ""
        return f"{super().extra_repr()}, distance={self.distance!r}, n={self.n:g}{extra}"


register("harmonic", Harmonic)
