"""Triplet loss (FaceNet, Schroff et al. 2015) with in-batch mining: all, batch-hard, semi-hard."""

from __future__ import annotations

import torch

from .._checks import check_positive
from ..functional.normalize import l2_normalize
from .base import PairwiseLoss, masked_mean, pair_masks, squared_distances, triplet_mask
from .registry import register

__all__ = ["MINING", "TripletLoss", "mine_batch_hard", "mine_semi_hard"]

MINING = ("all", "batch-hard", "semi-hard")


def mine_batch_hard(d: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sample (B,): ``(anchor mask, d(a, hardest positive), d(a, hardest negative))``; the distances are
    meaningful where the mask is set (samples with a positive), −inf / +inf elsewhere.

    Hardest positive = the farthest sample of the same identity, hardest negative = the closest sample of another
    identity (Hermans, Beyer, Leibe 2017). ``d`` is a B×B distance matrix; every anchor must have a negative.
    """
    pos, neg = pair_masks(labels)
    anchors = pos.any(dim=1)
    hardest_pos = d.masked_fill(~pos, float("-inf")).amax(dim=1)
    hardest_neg = d.masked_fill(~neg, float("inf")).amin(dim=1)
    return anchors, hardest_pos, hardest_neg


def mine_semi_hard(d: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each positive pair ``(a, p)``: the distance ``d(a, n)`` of its semi-hard negative, and a fallback flag.

    FaceNet's choice as implemented by TensorFlow Addons' ``triplet_semihard_loss``: the closest negative that is
    still farther from the anchor than the positive (``d_an > d_ap``). If no negative is farther than the positive,
    the fallback is the farthest negative of the anchor (TF-Addons' ``negatives_inside``), which then yields a loss
    ``≥ α``. Returns B×B tensors ``(d_an chosen, used_fallback)``, meaningful where ``(a, p)`` is a positive pair.
    """
    _, neg = pair_masks(labels)
    dap = d[:, :, None]
    dan = d[:, None, :]
    outside = neg[:, None, :] & (dan > dap)  # [a, p, n]: negative farther than the positive
    semi = dan.expand_as(outside).masked_fill(~outside, float("inf")).amin(dim=2)
    has_semi = outside.any(dim=2)
    easiest = d.masked_fill(~neg, float("-inf")).amax(dim=1)  # farthest negative per anchor
    chosen = torch.where(has_semi, semi, easiest[:, None].expand_as(semi))
    return chosen, ~has_semi


class TripletLoss(PairwiseLoss):
    """Triplet loss ``max(0, ‖a−p‖² − ‖a−n‖² + α)`` on L2-normalized embeddings, with in-batch mining.

    ``mining``:

    - ``"all"``: every valid triplet ``(a, p, n)`` of the batch (``a ≠ p`` same identity, ``n`` another); the loss
      is the mean over *all* valid triplets, zero ones included (``active_fraction`` reports the share of non-zero
      ones).
    - ``"batch-hard"``: for each anchor that has a positive, its farthest positive and closest negative; mean over
      those anchors (Hermans, Beyer, Leibe 2017, with FaceNet's squared distance and hinge).
    - ``"semi-hard"`` (default, FaceNet's): for each positive pair ``(a, p)``, the closest negative with
      ``d_an > d_ap`` (the hardest semi-hard one when one lies within the margin; if the closest such negative is
      beyond the margin the pair's loss is 0). When no negative is farther than the positive, fall back to the
      farthest negative of the anchor, as TensorFlow Addons' ``triplet_semihard_loss`` does. Mean over all positive
      pairs.

    Per sample (``reduction="none"``): the sum of the losses of the triplets (pairs) anchored at the sample, times
    B/T with T the number of triplets (anchors, positive pairs) averaged over, so their mean is the loss.

    Distances are squared Euclidean on the unit sphere (``∈ [0, 4]``). ``"all"`` and ``"semi-hard"`` build B×B×B
    tensors (memory O(B³): about 0.5 GB per tensor at B = 512); ``"batch-hard"`` needs O(B²).

    Statistics: ``active_fraction``, ``num_triplets``, and ``positive_distance``/``negative_distance`` (mean over
    the triplets used) for the mined variants; ``fallback_fraction`` for semi-hard.

    Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015; Hermans et al., "In defense of the triplet loss", 2017.

    >>> TripletLoss(mining="batch-hard")(torch.eye(4), torch.tensor([0, 0, 1, 1])).shape
    torch.Size([])
    """

    reference = "Schroff et al. (FaceNet) 2015; Hermans et al. 2017"

    def __init__(self, margin: float = 0.2, mining: str = "semi-hard", *, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = check_positive(margin, "margin", strict=False)
        if mining not in MINING:
            raise ValueError(f"mining must be one of {', '.join(MINING)}, got {mining!r}")
        self.mining = mining

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = squared_distances(l2_normalize(x, dim=1))
        if self.mining == "all":
            used = triplet_mask(y)
            losses = (d[:, :, None] - d[:, None, :] + self.margin).clamp_min(0.0).masked_fill(~used, 0.0)
            stats = {}
        elif self.mining == "batch-hard":
            used, dap, dan = mine_batch_hard(d, y)
            losses = (dap - dan + self.margin).clamp_min(0.0).masked_fill(~used, 0.0)
            stats = {"positive_distance": masked_mean(dap, used), "negative_distance": masked_mean(dan, used)}
        else:
            used, _ = pair_masks(y)
            dan, fallback = mine_semi_hard(d, y)
            losses = (d - dan + self.margin).clamp_min(0.0).masked_fill(~used, 0.0)
            stats = {
                "positive_distance": masked_mean(d, used),
                "negative_distance": masked_mean(dan, used),
                "fallback_fraction": masked_mean(fallback.to(d.dtype), used),
            }
        count = used.sum()
        with torch.no_grad():
            self._record(active_fraction=(losses > 0).sum() / count, num_triplets=count, **stats)
        per_anchor = losses.reshape(x.shape[0], -1).sum(dim=1)
        return per_anchor * (x.shape[0] / count.to(x.dtype))

    def extra_repr(self) -> str:
        return self._with_reduction(f"margin={self.margin}, mining={self.mining!r}")


register("triplet", TripletLoss)
