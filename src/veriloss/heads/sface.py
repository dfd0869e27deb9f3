"""SFace: sigmoid-constrained hypersphere loss (Zhong et al. 2021), docs/losses.md."""

from __future__ import annotations

import math

import torch

from .._checks import check_in_range, check_positive
from ..functional.margins import angle
from ..functional.precision import compute_dtype
from .base import Head, cosine
from .registry import register

__all__ = ["SFace"]


class SFace(Head):
    """SFace: ``L = −w_y · s cos θ_y + Σ_{j≠y} w_j · s cos θ_j`` per sample, the weights held constant.

    ``w_y = σ(k(θ_y − a))`` stops pulling a sample already within angle a of its prototype and
    ``w_j = 1/(1 + e^{k(θ_j − b)})`` stops pushing classes already farther than b. The weights are computed
    without gradient, so they only re-scale the gradients of the cosines. Defaults s = 64, k = 80, a = 0.87,
    b = 1.2 (our choice within the paper's ranges a = 0.87–0.9, b = 1.2–1.25; a and b are angles in radians,
    in [0, π]). The loss is not a cross-entropy and can be negative. :meth:`logits` is ``s cos θ_j``.
    """

    reference = "Zhong et al. 2021, SFace: sigmoid-constrained hypersphere loss for robust face recognition"

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float = 64.0,
        k: float = 80.0,
        a: float = 0.87,
        b: float = 1.2,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, init_std=init_std, reduction=reduction)
        self.s = check_positive(s, "s")
        self.k = check_positive(k, "k")
        self.a = check_in_range(a, "a", 0.0, math.pi)
        self.b = check_in_range(b, "b", 0.0, math.pi)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = compute_dtype(x)
        return self.s * cosine(x, self.weight.to(x.dtype))

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cos = cosine(x, self.weight.to(x.dtype))
        self._record_accuracy(cos, y)
        target = torch.zeros_like(cos, dtype=torch.bool).scatter_(1, y[:, None], True)
        with torch.no_grad():
            theta = angle(cos)
            w_pos = torch.sigmoid(self.k * (theta - self.a))
            w_neg = torch.sigmoid(-self.k * (theta - self.b))
        intra = -(w_pos * cos).masked_fill(~target, 0.0).sum(dim=1)
        inter = (w_neg * cos).masked_fill(target, 0.0).sum(dim=1)
        self._record(intra=self.s * intra.mean(), inter=self.s * inter.mean())
        return self.s * (intra + inter)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, s={self.s:g}, k={self.k:g}, a={self.a:g}, b={self.b:g}"


register("sface", SFace)
