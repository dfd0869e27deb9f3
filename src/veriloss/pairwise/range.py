"""Range loss (Zhang et al. 2017)."""

from __future__ import annotations

import torch

from .._checks import check_bool, check_int, check_positive
from ..functional.normalize import l2_normalize
from .base import PairwiseLoss, check_norm_limit, max_row_norm, squared_distances
from .registry import register

__all__ = ["RangeLoss"]

_FLOOR = 1e-12  # squared distances below this count as this in the harmonic mean (finite values and gradients)


class RangeLoss(PairwiseLoss):
    """Range loss ``intra_weight · L_intra + inter_weight · L_inter`` on the classes present in the batch.

    - ``L_intra``: for each class with at least two samples in the batch, the harmonic mean ``r / Σ_{j≤r} 1/D_j`` of
      its ``r = min(k, #pairs)`` largest intra-class squared Euclidean distances ``D_j``; averaged over those classes
      (the paper sums over classes; we divide by their number so the term does not grow with P).
    - ``L_inter = max(0, m − min_{i<j} ‖c_i − c_j‖²)``, with ``c`` the batch means of the classes present (a class with
      one sample in the batch is its own centre).

    With ``normalize`` (default) the embeddings are L2-normalized first, so squared distances lie in [0, 4] and the
    default ``margin`` m = 1 is a squared distance between class centres. A zero distance among the r largest
    makes the harmonic mean (nearly) 0: distances are floored at 1e-12 there, which keeps values and gradients
    finite. ``k = 2``, both weights 1 by default (our choice). Without ``normalize``, a batch whose norms could make
    the squared distances unrepresentable (‖x‖ > 2^62 in float32) raises a ``ValueError``.

    Per sample (``reduction="none"``): its class's intra term shared equally by the class's samples (times B over
    the number of classes with pairs), plus the inter term (a batch quantity, the same for every sample); their mean
    is the loss.

    Statistics: ``intra``, ``inter``, ``min_center_distance`` (the min squared distance between centres).

    Zhang, Fang, Wen, Li, Qiao, "Range loss for deep face recognition with long-tailed training data", ICCV 2017.
    """

    reference = "Zhang et al. 2017"

    def __init__(
        self,
        k: int = 2,
        margin: float = 1.0,
        intra_weight: float = 1.0,
        inter_weight: float = 1.0,
        normalize: bool = True,
        *,
        reduction: str = "mean",
    ):
        super().__init__(reduction)
        self.k = check_int(k, "k", 1, what="a positive integer")
        self.margin = check_positive(margin, "margin", strict=False)
        self.intra_weight = check_positive(intra_weight, "intra_weight", strict=False)
        self.inter_weight = check_positive(inter_weight, "inter_weight", strict=False)
        self.normalize = check_bool(normalize, "normalize")

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = l2_normalize(x, dim=1)
        B = x.shape[0]
        classes, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
        member = inverse[None, :] == torch.arange(classes.numel(), device=y.device)[:, None]  # C×B

        # intra: the (up to) k largest within-class pair distances of each class (i < j), as a C×k matrix
        d2 = squared_distances(x)
        upper = torch.ones_like(d2, dtype=torch.bool).triu(diagonal=1)
        pairs = member[:, :, None] & member[:, None, :] & upper  # C×B×B
        flat = d2[None].expand(pairs.shape).masked_fill(~pairs, float("-inf")).flatten(1)
        top = flat.topk(min(self.k, flat.shape[1]), dim=1).values  # −inf where a class has fewer pairs
        valid = torch.isfinite(top)
        safe = torch.where(valid, top, torch.ones_like(top)).clamp_min(_FLOOR)
        inv = torch.where(valid, 1.0 / safe, torch.zeros_like(top))
        has_pairs = counts >= 2
        inv_sum = torch.where(has_pairs, inv.sum(dim=1), torch.ones_like(top[:, 0]))  # no 0/0 in the gradient
        harmonic = torch.where(has_pairs, valid.sum(dim=1) / inv_sum, torch.zeros_like(inv_sum))  # C
        n_with_pairs = has_pairs.sum().to(x.dtype)
        intra = harmonic.sum() / n_with_pairs

        # inter: the closest two batch class centres
        centers = (member.to(x.dtype) @ x) / counts[:, None].to(x.dtype)
        cd2 = squared_distances(centers)
        closest = cd2.masked_fill(~upper[: classes.numel(), : classes.numel()], float("inf")).amin()
        inter = (self.margin - closest).clamp_min(0.0)

        with torch.no_grad():
            self._record(intra=intra, inter=inter, min_center_distance=closest)
        share = (harmonic / counts.to(x.dtype))[inverse] * (B / n_with_pairs)  # Σ_i share_i = B · intra
        return self.intra_weight * share + self.inter_weight * inter

    def _magnitudes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {} if self.normalize else {"x_norm": max_row_norm(x)}

    def _check_magnitudes(self, values: dict[str, float], dtype: torch.dtype) -> None:
        if not self.normalize:
            fix = "rescale the embeddings or use normalize=True"
            check_norm_limit("range", "embedding norms", values["x_norm"], 2, dtype, fix)

    def extra_repr(self) -> str:
        return self._with_reduction(
            f"k={self.k}, margin={self.margin}, intra_weight={self.intra_weight}, "
            f"inter_weight={self.inter_weight}, normalize={self.normalize}"
        )


register("range", RangeLoss)
