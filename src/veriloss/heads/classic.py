"""Margin-free prototype heads (docs/losses.md): softmax, L2-softmax, NormFace, CoCo.

Each is softmax cross-entropy on its logits (per sample, reduced by the head's ``reduction``); the same logits give
the batch accuracy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_in_range, check_int, check_positive, exponent_limit
from ..functional.normalize import l2_norm, l2_normalize
from ..functional.precision import compute_dtype
from .base import Head, cosine
from .registry import register

__all__ = ["CoCo", "L2Softmax", "NormFace", "Softmax"]


class Softmax(Head):
    """Plain softmax cross-entropy on ``W x + b`` (DeepFace 2014, DeepID 2014).

    Range (our choice): a batch whose logits could leave the compute dtype (``‖x‖·√d·max|W| + max|b| > 2^124`` in
    float32) raises a ``ValueError`` (checked with the batch's validation) instead of returning inf or NaN.
    """

    reference = "Taigman et al. 2014 (DeepFace); Sun et al. 2014 (DeepID)"
    normalized_prototypes = False

    def __init__(self, embedding_dim: int, num_classes: int, *, init_std: float | None = None, reduction: str = "mean"):
        super().__init__(embedding_dim, num_classes, bias=True, init_std=init_std, reduction=reduction)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = compute_dtype(x)
        return F.linear(x, self.weight.to(x.dtype), self.bias.to(x.dtype))

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self.logits(x)
        self._record_accuracy(z, y)
        return F.cross_entropy(z, y, reduction="none")

    def _magnitudes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        w, b = self.weight.detach().to(x.dtype), self.bias.detach().to(x.dtype)
        return {
            "x_norm": l2_norm(x, dim=1).amax(),
            "w_norm": torch.maximum(w.amax(), -w.amin()) * math.sqrt(w.shape[1]),  # ≥ max ‖W_j‖
            "b_max": b.abs().amax(),
        }

    def _check_magnitudes(self, values: dict[str, float], dtype: torch.dtype) -> None:
        bound = values["x_norm"] * values["w_norm"] + values["b_max"]
        if not bound <= 2.0 ** (exponent_limit(dtype) - 3):
            raise ValueError(
                f"softmax: the logits W x + b of this batch may reach {bound:.3g}, beyond what {dtype} holds (the loss"
                f" would overflow); the embeddings' norm (up to {values['x_norm']:.3g}) is too large for an"
                " un-normalized head: rescale or L2-normalize the embeddings, or use a cosine head"
            )


class L2Softmax(Head):
    """L2-constrained softmax: CE on ``W (α x̂) + b`` (Ranjan et al. 2017).

    ``alpha`` is the radius the embeddings are projected to, fixed (default) or a learnable scalar
    (``learnable=True``, initialized at ``alpha``). The default α = 16 is our choice; Ranjan et al. give the
    lower bound ``α_low = log(p(K−2)/(1−p))`` for a target probability p (:meth:`alpha_lower_bound`), advise α
    near α_low for small datasets and larger values (10–100) for large ones. A learnable α is not constrained.
    """

    reference = "Ranjan et al. 2017, L2-constrained softmax loss for discriminative face verification"
    normalized_prototypes = False

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        alpha: float = 16.0,
        learnable: bool = False,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, bias=True, init_std=init_std, reduction=reduction)
        a = torch.tensor(check_positive(alpha, "alpha"))
        if learnable:
            self.alpha = torch.nn.Parameter(a)
        else:
            self.register_buffer("alpha", a)
        self.learnable = bool(learnable)

    @staticmethod
    def alpha_lower_bound(num_classes: int, p: float = 0.9) -> float:
        """``α_low = log(p(K−2)/(1−p))``: the smallest α at which class probability p is reachable (K ≥ 3)."""
        num_classes = check_int(num_classes, "num_classes", 3, what="an integer ≥ 3 for the α bound")
        p = check_in_range(p, "p", 0.0, 1.0)
        if p in (0.0, 1.0):
            raise ValueError(f"p must be strictly between 0 and 1, got {p!r}")
        return math.log(p * (num_classes - 2) / (1.0 - p))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = compute_dtype(x)
        xs = self.alpha.to(x.dtype) * l2_normalize(x, dim=1)
        return F.linear(xs, self.weight.to(x.dtype), self.bias.to(x.dtype))

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self.logits(x)
        self._record_accuracy(z, y)
        self._record(alpha=self.alpha)
        return F.cross_entropy(z, y, reduction="none")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={float(self.alpha.detach()):g}, learnable={self.learnable}"


class NormFace(Head):
    """NormFace: CE on ``s · cos θ_j``, no bias (Wang et al. 2017).

    ``s`` fixed (default) or a learnable scalar (``learnable=True``, initialized at ``s``). Default s = 16
    (our choice within the usual 16–30; a learned s is not constrained).
    """

    reference = "Wang et al. 2017, NormFace: L2 hypersphere embedding for face verification"

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float = 16.0,
        learnable: bool = False,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, init_std=init_std, reduction=reduction)
        scale = torch.tensor(check_positive(s, "s"))
        if learnable:
            self.scale = torch.nn.Parameter(scale)
        else:
            self.register_buffer("scale", scale)
        self.learnable = bool(learnable)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = compute_dtype(x)
        return self.scale.to(x.dtype) * cosine(x, self.weight.to(x.dtype))

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self.logits(x)
        self._record_accuracy(z, y)
        self._record(scale=self.scale)
        return F.cross_entropy(z, y, reduction="none")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, s={float(self.scale.detach()):g}, learnable={self.learnable}"


class CoCo(NormFace):
    """CoCo (congenerous cosine) loss: CE on ``α · ĉ_j·x̂``, learnable normalized centroids ĉ_j = W_j/‖W_j‖.

    Liu et al. 2017 show that a loss below ε is reachable only if ``α > ½ log((K−1)/(e^ε−1))``
    (:meth:`alpha_bound`). ``alpha=None`` (default, our choice) sets α to that bound for ``epsilon`` (default
    0.01); ``epsilon`` is unused when ``alpha`` is given. α is fixed.
    """

    reference = "Liu et al. 2017, Rethinking feature discrimination and polymerization for large-scale recognition"

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        alpha: float | None = None,
        epsilon: float = 0.01,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        eps = check_positive(epsilon, "epsilon")
        if alpha is None:
            value = self.alpha_bound(num_classes, eps)
            if value <= 0:
                raise ValueError(
                    f"epsilon={epsilon!r} is too large for num_classes={num_classes}: the α bound "
                    f"{value:.3g} is not positive; pass a smaller epsilon or an explicit alpha"
                )
        else:
            value = check_positive(alpha, "alpha")
        super().__init__(embedding_dim, num_classes, value, False, init_std=init_std, reduction=reduction)

    @staticmethod
    def alpha_bound(num_classes: int, epsilon: float) -> float:
        """``½ log((K−1)/(e^ε−1))``: at this α the best possible loss (x̂ = ĉ_y, other ĉ_j = −x̂) equals ε."""
        num_classes = check_int(num_classes, "num_classes", 2)
        eps = check_positive(epsilon, "epsilon")
        return 0.5 * math.log((num_classes - 1) / math.expm1(eps))

    def extra_repr(self) -> str:
        return f"{Head.extra_repr(self)}, alpha={float(self.scale.detach()):g}"


register("softmax", Softmax)
register("l2softmax", L2Softmax)
register("normface", NormFace)
register("coco", CoCo)
