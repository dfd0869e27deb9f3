"""Contrastive loss (Chopra et al. 2005; DeepID2, Sun et al. 2014)."""

from __future__ import annotations

import torch

from .._checks import check_bool, check_positive
from ..functional.normalize import l2_normalize
from .base import PairwiseLoss, check_norm_limit, masked_mean, max_row_norm, pair_distances, pair_masks
from .registry import register

__all__ = ["ContrastiveLoss"]


class ContrastiveLoss(PairwiseLoss):
    """Contrastive loss: ``½ y d² + ½ (1 − y) max(0, m − d)²`` averaged over every unordered pair in the batch.

    ``d = ‖x_i − x_j‖`` (Euclidean), ``y = 1`` for a pair of the same identity and 0 otherwise. The reduction is the
    plain mean over all ``B(B−1)/2`` unordered pairs (positive and negative pairs alike, no re-weighting); per sample
    (``reduction="none"``), the mean over the B−1 pairs the sample is in. With ``normalize`` (default) the embeddings
    are L2-normalized first, so ``d ∈ [0, 2]`` and the default ``margin`` of 1 corresponds to a cosine similarity of
    ½. Without ``normalize``, distances are computed without overflow and a batch whose norms could make ``d²``
    unrepresentable (‖x‖ > 2^62 in float32) raises a ``ValueError``.

    Statistics: ``positive_distance`` and ``negative_distance`` (mean d), ``active_negative_fraction`` (negative pairs
    closer than the margin).

    Chopra, Hadsell, LeCun, "Learning a similarity metric discriminatively", CVPR 2005; Sun et al., DeepID2, 2014.

    >>> loss = ContrastiveLoss(margin=1.0)
    >>> loss(torch.eye(4), torch.tensor([0, 0, 1, 1])).shape
    torch.Size([])
    """

    reference = "Chopra et al. 2005; Sun et al. (DeepID2) 2014"

    def __init__(self, margin: float = 1.0, normalize: bool = True, *, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = check_positive(margin, "margin")
        self.normalize = check_bool(normalize, "normalize")

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = l2_normalize(x, dim=1)
        d2, d = pair_distances(x)
        pos, neg = pair_masks(y)
        hinge = (self.margin - d).clamp_min(0.0)
        pair_loss = 0.5 * torch.where(pos, d2, hinge * hinge).masked_fill(~(pos | neg), 0.0)
        with torch.no_grad():
            self._record(
                positive_distance=masked_mean(d, pos),
                negative_distance=masked_mean(d, neg),
                active_negative_fraction=masked_mean((hinge > 0).to(d.dtype), neg),
            )
        return pair_loss.sum(dim=1) / (x.shape[0] - 1)

    def _magnitudes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {} if self.normalize else {"x_norm": max_row_norm(x)}

    def _check_magnitudes(self, values: dict[str, float], dtype: torch.dtype) -> None:
        if not self.normalize:
            fix = "rescale the embeddings or use normalize=True"
            check_norm_limit("contrastive", "embedding norms", values["x_norm"], 2, dtype, fix)

    def extra_repr(self) -> str:
        return self._with_reduction(f"margin={self.margin}, normalize={self.normalize}")


register("contrastive", ContrastiveLoss)
