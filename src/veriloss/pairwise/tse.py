"""Triplet similarity and probabilistic embeddings, TSE and TPE (Sankaranarayanan et al. 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_bool, check_int, check_positive
from ..functional.normalize import l2_norm, l2_normalize
from .base import PairwiseLoss, check_norm_limit, max_row_norm, triplet_mask
from .registry import register

__all__ = ["TPELoss", "TSELoss", "TripletProjectionLoss"]


class TripletProjectionLoss(PairwiseLoss):
    """Shared part of TSE and TPE: a learned linear projection ``h' = T h`` (``embedding_dim → projection_dim``).

    With ``normalize`` (default) the embeddings are L2-normalized before the projection, as the paper does with its
    deep features; the projected vectors are not normalized. T has no bias and starts (semi-)orthogonal, so that
    initially ``‖h'‖ ≤ 1`` (the paper initializes it from PCA of the training features, which a loss cannot see).
    ``projection_dim`` defaults to ``embedding_dim``. Subclasses turn the B×B similarity matrix ``S = H' H'ᵀ`` into a
    loss over all valid triplets ``(a, p, n)`` of the batch (mean over them; memory O(B³)). Per sample
    (``reduction="none"``): the sum of the losses of the triplets anchored at the sample times B/T (T triplets), so
    their mean is the loss.

    Range (our choice): the similarities ``h'·h'`` are squared norms; a batch with ``‖T‖_F·‖h‖ > 2^62`` (float32;
    ``‖h‖ = 1`` with ``normalize``) raises a ``ValueError`` instead of returning inf or NaN.
    """

    #: whether the loss is a hinge (then ``active_fraction`` counts the triplets with a non-zero loss)
    hinge = False

    def __init__(
        self,
        embedding_dim: int,
        projection_dim: int | None = None,
        normalize: bool = True,
        *,
        reduction: str = "mean",
    ):
        super().__init__(reduction)
        embedding_dim = check_int(embedding_dim, "embedding_dim", 1, what="a positive integer")
        if projection_dim is None:
            projection_dim = embedding_dim
        projection_dim = check_int(projection_dim, "projection_dim", 1, what="a positive integer")
        self.embedding_dim = embedding_dim
        self.projection_dim = projection_dim
        self.normalize = check_bool(normalize, "normalize")
        self.projection = nn.Parameter(torch.empty(projection_dim, embedding_dim))
        nn.init.orthogonal_(self.projection)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``h' = T h`` (rows of ``x``), after L2-normalization when ``normalize``."""
        if self.normalize:
            x = l2_normalize(x, dim=1)
        return x @ self.projection.to(x.dtype).t()

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.project(x)
        s = h @ h.t()
        valid = triplet_mask(y)
        # gap[a, p, n] = h'_a·h'_n − h'_a·h'_p: a positive gap means the negative is more similar than the positive
        gap = s[:, None, :] - s[:, :, None]
        losses = self.triplet_losses(gap).masked_fill(~valid, 0.0)
        count = valid.sum()
        with torch.no_grad():
            stats = {"triplet_accuracy": ((gap < 0) & valid).sum() / count, "num_triplets": count}
            if self.hinge:
                stats["active_fraction"] = (losses > 0).sum() / count
            self._record(**stats)
        return losses.reshape(x.shape[0], -1).sum(dim=1) * (x.shape[0] / count.to(x.dtype))

    def triplet_losses(self, gap: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The loss of each triplet from its similarity gap (elementwise)."""
        raise NotImplementedError

    def _magnitudes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        t_norm = l2_norm(self.projection.detach().to(x.dtype).reshape(1, -1), dim=1)[0]  # ‖T‖_F ≥ ‖T‖₂
        return {"h_norm": t_norm if self.normalize else t_norm * max_row_norm(x)}

    def _check_magnitudes(self, values: dict[str, float], dtype: torch.dtype) -> None:
        fix = "rescale the embeddings (or use normalize=True) or reset the projection"
        check_norm_limit(type(self).__name__[:3].lower(), "projected norms ‖T h‖", values["h_norm"], 2, dtype, fix)

    def extra_repr(self) -> str:
        return self._with_reduction(
            f"embedding_dim={self.embedding_dim}, projection_dim={self.projection_dim}, normalize={self.normalize}"
        )


class TSELoss(TripletProjectionLoss):
    """Triplet similarity embedding: ``max(0, α + h'_a·h'_n − h'_a·h'_p)``, mean over all valid batch triplets.

    ``h' = T h`` is a learned projection (see :class:`TripletProjectionLoss`). The margin α is on a dot product
    (for unit vectors it is half the margin on the squared distance); α = 0.2 by default, our choice. Statistics:
    ``active_fraction``, ``triplet_accuracy`` (share of triplets with ``h'_a·h'_p > h'_a·h'_n``), ``num_triplets``.

    Sankaranarayanan, Alavi, Castillo, Chellappa, "Triplet probabilistic embedding for face verification and
    clustering", BTAS 2016.
    """

    reference = "Sankaranarayanan et al. 2016"
    hinge = True

    def __init__(
        self,
        embedding_dim: int,
        projection_dim: int | None = None,
        margin: float = 0.2,
        normalize: bool = True,
        *,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, projection_dim, normalize, reduction=reduction)
        self.margin = check_positive(margin, "margin", strict=False)

    def triplet_losses(self, gap: torch.Tensor) -> torch.Tensor:
        return (self.margin + gap).clamp_min(0.0)

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
