"""Marginal loss (Deng, Zhou, Zafeiriou 2017)."""

from __future__ import annotations

import torch

from .._checks import check_positive
from ..functional.normalize import l2_normalize
from .base import PairwiseLoss, pair_masks, squared_distances
from .registry import register

__all__ = ["MarginalLoss"]


class MarginalLoss(PairwiseLoss):
    """Marginal loss: ``1/(n²−n) Σ_{i≠j} max(0, ξ − y_ij (θ − ‖x̂_i − x̂_j‖²))``, ``y_ij = ±1``.

    ``x̂`` are the L2-normalized embeddings, so ``‖x̂_i − x̂_j‖² ∈ [0, 4]``; ``y_ij = +1`` for the same identity and
    −1 otherwise. A positive pair is penalized unless its squared distance is below ``θ − ξ``, a negative pair unless
    it is above ``θ + ξ``. The mean runs over all ``n² − n`` ordered pairs of the batch (as in the paper).

    Statistics: ``active_fraction`` (pairs with a non-zero hinge).

    Deng, Zhou, Zafeiriou, "Marginal loss for deep face recognition", CVPR Workshops 2017.
    """

    reference = "Deng et al. 2017"

    def __init__(self, threshold: float = 1.2, xi: float = 0.3):
        super().__init__()
        self.threshold = check_positive(threshold, "threshold")
        self.xi = check_positive(xi, "xi", strict=False)

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d2 = squared_distances(l2_normalize(x, dim=1))
        pos, neg = pair_masks(y)
        sign = pos.float() - neg.float()  # +1, −1, and 0 on the diagonal (excluded below)
        hinge = (self.xi - sign * (self.threshold - d2)).clamp_min(0.0)
        off = pos | neg
        losses = hinge[off]
        with torch.no_grad():
            self._record(active_fraction=(losses > 0).float().mean())
        return losses.mean()

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, xi={self.xi}"


register("marginal", MarginalLoss)
