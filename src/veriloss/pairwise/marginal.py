"""Marginal loss (Deng, Zhou, Zafeiriou 2017)."""

from __future__ import annotations

import torch

from .._checks import check_positive
from ..functional.normalize import l2_normalize
from .base import PairwiseLoss, masked_mean, pair_masks, squared_distances
from .registry import register

__all__ = ["MarginalLoss"]


class MarginalLoss(PairwiseLoss):
    """Marginal loss: ``1/(n²−n) Σ_{i≠j} max(0, ξ − y_ij (θ − ‖x̂_i − x̂_j‖²))``, ``y_ij = ±1``.

    ``x̂`` are the L2-normalized embeddings, so ``‖x̂_i − x̂_j‖² ∈ [0, 4]``; ``y_ij = +1`` for the same identity and
    −1 otherwise. A positive pair is penalized unless its squared distance is below ``θ − ξ``, a negative pair unless
    it is above ``θ + ξ``. The mean runs over all ``n² − n`` ordered pairs of the batch (as in the paper); per sample
    (``reduction="none"``), the mean over the n − 1 pairs it starts.

    Statistics: ``active_fraction`` (pairs with a non-zero hinge).

    Deng, Zhou, Zafeiriou, "Marginal loss for deep face recognition", CVPR Workshops 2017.

    >>> MarginalLoss(reduction="none")(torch.eye(4), torch.tensor([0, 0, 1, 1])).shape
    torch.Size([4])
    """

    reference = "Deng et al. 2017"

    def __init__(self, threshold: float = 1.2, xi: float = 0.3, *, reduction: str = "mean"):
        super().__init__(reduction)
        self.threshold = check_positive(threshold, "threshold")
        self.xi = check_positive(xi, "xi", strict=False)

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d2 = squared_distances(l2_normalize(x, dim=1))
        pos, neg = pair_masks(y)
        sign = pos.to(d2.dtype) - neg.to(d2.dtype)  # +1, −1, and 0 on the diagonal (excluded below)
        off = pos | neg
        hinge = (self.xi - sign * (self.threshold - d2)).clamp_min(0.0).masked_fill(~off, 0.0)
        with torch.no_grad():
            self._record(active_fraction=masked_mean((hinge > 0).to(d2.dtype), off))
        return hinge.sum(dim=1) / (x.shape[0] - 1)

    def extra_repr(self) -> str:
        return self._with_reduction(f"threshold={self.threshold}, xi={self.xi}")


register("marginal", MarginalLoss)
