"""Triplet similarity and probabilistic embeddings, TSE and TPE (Sankaranarayanan et al. 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive
from .base import PairwiseLoss, check_flag, triplet_mask
from .registry import register

__all__ = ["TPELoss", "TSELoss", "TripletProjectionLoss"]


class TripletProjectionLoss(PairwiseLoss):
    """Shared part of TSE and TPE: a learned linear projection ``h' = T h`` (``embedding_dim → projection_dim``).

    With ``normalize`` (default) the embeddings are L2-normalized before the projection, as the paper does with its
    deep features; the projected vectors are not normalized. T has no bias and starts (semi-)orthogonal, so that
    initially ``‖h'‖ ≤ 1`` (the paper initializes it from PCA of the training features, which a loss cannot see).
    ``projection_dim`` defaults to ``embedding_dim``. Subclasses turn the B×B similarity matrix ``S = H' H'ᵀ`` into a
    loss over all valid triplets ``(a, p, n)`` of the batch (mean over them; memory O(B³)).
    """

    def __init__(self, embedding_dim: int, projection_dim: int | None = None, normalize: bool = True):
        super().__init__()
        if not isinstance(embedding_dim, int) or isinstance(embedding_dim, bool) or embedding_dim < 1:
            raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
        if projection_dim is None:
            projection_dim = embedding_dim
        if not isinstance(projection_dim, int) or isinstance(projection_dim, bool) or projection_dim < 1:
            raise ValueError(f"projection_dim must be a positive integer, got {projection_dim!r}")
        self.embedding_dim = embedding_dim
        self.projection_dim = projection_dim
        self.normalize = check_flag(normalize, "normalize")
        self.projection = nn.Parameter(torch.empty(projection_dim, embedding_dim))
        nn.init.orthogonal_(self.projection)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``h' = T h`` (rows of ``x``), after L2-normalization when ``normalize``."""
        if self.normalize:
            x = F.normalize(x, dim=1)
        return x @ self.projection.float().t()

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.project(x)
        s = h @ h.t()
        valid = triplet_mask(y)
        # gap[a, p, n] = h'_a·h'_n − h'_a·h'_p: a positive gap means the negative is more similar than the positive
        gap = (s[:, None, :] - s[:, :, None])[valid]
        losses = self.triplet_losses(gap)
        with torch.no_grad():
            self._record(triplet_accuracy=(gap < 0).float().mean(), num_triplets=gap.numel())
        return losses.mean()

    def triplet_losses(self, gap: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"embedding_dim={self.embedding_dim}, projection_dim={self.projection_dim}, normalize={self.normalize}"


class TSELoss(TripletProjectionLoss):
    """Triplet similarity embedding: ``max(0, α + h'_a·h'_n − h'_a·h'_p)``, mean over all valid batch triplets.

    ``h' = T h`` is a learned projection (see :class:`TripletProjectionLoss`). The margin α is on a dot product
    (for unit vectors it is half the margin on the squared distance); α = 0.2 by default, our choice. Statistics:
    ``active_fraction``, ``triplet_accuracy`` (share of triplets with ``h'_a·h'_p > h'_a·h'_n``), ``num_triplets``.

    Sankaranarayanan, Alavi, Castillo, Chellappa, "Triplet probabilistic embedding for face verification and
    clustering", BTAS 2016.
    """

    reference = "Sankaranarayanan et al. 2016"

    def __init__(
        self, embedding_dim: int, projection_dim: int | None = None, margin: float = 0.2, normalize: bool = True
    ):
        super().__init__(embedding_dim, projection_dim, normalize)
        self.margin = check_positive(margin, "margin", strict=False)

    def triplet_losses(self, gap: torch.Tensor) -> torch.Tensor:
        losses = (self.margin + gap).clamp_min(0.0)
        self._record(active_fraction=(losses > 0).float().mean())
        return losses

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}"


class TPELoss(TripletProjectionLoss):
    """Triplet probabilistic embedding: ``−log(e^{h'_a·h'_p} / (e^{h'_a·h'_p} + e^{h'_a·h'_n}))``, mean over triplets.

    Computed as ``softplus(h'_a·h'_n − h'_a·h'_p)`` (equal, and stable for large similarities). ``h' = T h`` is a
    learned projection (see :class:`TripletProjectionLoss`). Statistics: ``triplet_accuracy``, ``num_triplets``.

    Sankaranarayanan, Alavi, Castillo, Chellappa, "Triplet probabilistic embedding for face verification and
    clustering", BTAS 2016.
    """

    reference = "Sankaranarayanan et al. 2016"

    def triplet_losses(self, gap: torch.Tensor) -> torch.Tensor:
        return F.softplus(gap)


register("tse", TSELoss)
register("tpe", TPELoss)
