"""Angular-margin heads (docs/losses.md): L-Softmax, SphereFace, CosFace, ArcFace, combined, ElasticFace.

Every head is softmax cross-entropy (per sample, reduced by the head's ``reduction``) on logits whose target column
carries a margin. The margin is applied whenever labels are given (a forward is a loss, in training and in eval
mode); :meth:`logits` gives the margin-free scores used for the batch accuracy and for inference. The cosine heads
share one hook, :meth:`CosineMarginHead.target` (the margin-penalized target cosine), which the α heads reuse.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._checks import check_in_range, check_int, check_positive, exponent_limit
from ..functional.margins import (
    arcface_margin,
    check_overflow_policy,
    combined_margin,
    cosface_margin,
    elastic_margins,
    lsoftmax_psi,
    sphereface_lambda,
)
from ..functional.normalize import l2_norm, l2_normalize
from ..functional.precision import compute_dtype
from .base import Head, cosine
from .registry import register

__all__ = [
    "ArcFace",
    "CombinedMargin",
    "CosFace",
    "CosineMarginHead",
    "ElasticArcFace",
    "ElasticCosFace",
    "LSoftmax",
    "SphereFace",
]


def _with_target(scores: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``scores`` (B×K) with column ``y_i`` of row i replaced by ``target_i`` (differentiable in both)."""
    return scores.scatter(1, y[:, None], target[:, None])


def _target(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return scores.gather(1, y[:, None]).squeeze(1)


class LSoftmax(Head):
    """L-Softmax (Liu et al. 2016): target logit ``‖W_y‖‖x‖ ψ(θ_y)``, others ``‖W_j‖‖x‖ cos θ_j``, no bias.

    ``ψ`` is :func:`~veriloss.functional.margins.lsoftmax_psi` with the integer margin ``m``. Training uses
    the relaxed target ``(λ cos θ_y + ψ(θ_y)) / (1 + λ)`` with SphereFace's schedule
    ``λ = max(λ_min, λ_base (1 + γ·it)^(−power))`` (:func:`~veriloss.functional.margins.sphereface_lambda`).
    ``it`` is the buffer ``iteration`` (saved in the state dict): a forward uses the current value, then a
    forward in training mode advances it by one (the first training batch sees ``λ = λ_base``); eval-mode
    forwards do not advance it. ``lambda_base = lambda_min = 0`` gives the plain ψ target. Defaults: m = 4 and
    SphereFace's released schedule (base 1000, floor 5, γ = 0.12, power 1).

    Range (our choice): norms are computed without overflow, so the loss is exact for any embedding scale at which
    the logits ``‖W_j‖‖x‖ψ`` fit the compute dtype; beyond (‖x‖‖W_j‖(2m−1) > 2^124 in float32, checked with the
    batch's validation) it raises a ``ValueError`` instead of returning inf or NaN.
    """

    reference = "Liu et al. 2016, Large-margin softmax loss for convolutional neural networks"
    #: SphereFace normalizes the prototypes (‖W_j‖ = 1)
    normalize_weight = False
    normalized_prototypes = False

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        m: int = 4,
        lambda_base: float = 1000.0,
        lambda_min: float = 5.0,
        gamma: float = 0.12,
        power: float = 1.0,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, init_std=init_std, reduction=reduction)
        self.m = check_int(m, "m", 1, 10, what="an integer in [1, 10] (typically 2–4)")
        self.lambda_base = check_positive(lambda_base, "lambda_base", strict=False)
        self.lambda_min = check_positive(lambda_min, "lambda_min", strict=False)
        self.gamma = check_positive(gamma, "gamma", strict=False)
        self.power = check_positive(power, "power", strict=False)
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    @property
    def current_lambda(self) -> float:
        """λ at the current iteration."""
        return float(self._lambda())

    def _lambda(self) -> torch.Tensor:
        """λ at the current iteration, a float64 device scalar (no host read of ``iteration``)."""
        return sphereface_lambda(self.iteration, self.lambda_base, self.lambda_min, self.gamma, self.power)

    def _weight(self, dtype: torch.dtype) -> torch.Tensor:
        w = self.weight.to(dtype)
        return l2_normalize(w, dim=1) if self.normalize_weight else w

    def _scores(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos θ, ‖W_j‖‖x‖) as B×K matrices."""
        w = self._weight(x.dtype)
        return cosine(x, w), l2_norm(x, dim=1, keepdim=True) * l2_norm(w, dim=1)[None, :]

    def _magnitudes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"x_norm": l2_norm(x, dim=1).amax()}
        if not self.normalize_weight:  # max ‖W_j‖ ≤ √d · max |W|: two reductions, no K×d temporary
            w = self.weight.detach().to(x.dtype)
            out["w_norm"] = torch.maximum(w.amax(), -w.amin()) * math.sqrt(w.shape[1])
        return out

    def _check_magnitudes(self, values: dict[str, float], dtype: torch.dtype) -> None:
        bound = values["x_norm"] * values.get("w_norm", 1.0) * (2 * self.m - 1)
        if not bound <= 2.0 ** (exponent_limit(dtype) - 3):
            raise ValueError(
                f"{type(self).__name__.lower()}: the logits ‖W_j‖‖x‖ψ(θ) of this batch may reach {bound:.3g}, beyond"
                f" what {dtype} holds (the loss would overflow); the embeddings' norm (up to {values['x_norm']:.3g})"
                " is too large for an un-normalized head: rescale or L2-normalize the embeddings, or use a cosine"
                " head (e.g. cosface, arcface)"
            )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        cos, mag = self._scores(compute_dtype(x))
        return mag * cos

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cos, mag = self._scores(x)
        lam = self._lambda()  # float64 device scalar: rounds as the Python float it replaces
        cos_y = _target(cos, y)
        target = (lam * cos_y + lsoftmax_psi(cos_y, self.m)) / (1.0 + lam) * _target(mag, y)
        plain = mag * cos
        self._record_accuracy(plain, y)
        self._record(**{"lambda": lam})
        if self.training:  # a new tensor, not an in-place add: AOTAutograd (torch.compile) may keep the buffer itself
            self.iteration = self.iteration + 1  # for the backward's λ, which must not see it advanced
        return F.cross_entropy(_with_target(plain, y, target), y, reduction="none")

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, m={self.m}, lambda_base={self.lambda_base:g}, "
            f"lambda_min={self.lambda_min:g}, gamma={self.gamma:g}, power={self.power:g}"
        )


class SphereFace(LSoftmax):
    """SphereFace / A-Softmax (Liu et al. 2017): L-Softmax with normalized prototypes (‖W_j‖ = 1), no bias.

    Target logit ``‖x‖ (λ cos θ_y + ψ(θ_y)) / (1 + λ)``, others ``‖x‖ cos θ_j``; same ψ, λ schedule and
    defaults as :class:`LSoftmax` (m = 4).
    """

    reference = "Liu et al. 2017, SphereFace: deep hypersphere embedding for face recognition"
    normalize_weight = True
    normalized_prototypes = True


class CosineMarginHead(Head):
    """Cosine logits ``s · cos θ_j`` whose target column is ``s · target(cos θ_y)``, and softmax cross-entropy on them.

    :meth:`target` is the hook every margin head sets (None: no margin on the target); the α heads keep the hook
    and replace the cross-entropy by the α loss (A3M is ArcFace's target with the α link).
    """

    #: the hook: maps the target cosines (B,) to the margin-penalized target cosines (B,); None: no target margin
    target: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __init__(
        self, embedding_dim: int, num_classes: int, s: float, *, init_std: float | None, reduction: str
    ) -> None:
        super().__init__(embedding_dim, num_classes, init_std=init_std, reduction=reduction)
        self.s = check_positive(s, "s")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = compute_dtype(x)
        return self.s * cosine(x, self.weight.to(x.dtype))

    def margin_logits(self, cos: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The logits of the loss (B×K) from the cosines: ``s·cos``, the target column ``s·target(cos θ_y)``."""
        if self.target is None:
            return self.s * cos
        return self.s * _with_target(cos, y, self.target(_target(cos, y)))

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cos = cosine(x, self.weight.to(x.dtype))
        self._record_accuracy(cos, y)
        return F.cross_entropy(self.margin_logits(cos, y), y, reduction="none")


class CosFace(CosineMarginHead):
    """CosFace / AM-Softmax (Wang et al. 2018): target ``s (cos θ_y − m)``, others ``s cos θ_j``.

    Defaults s = 64, m = 0.35; m must lie in [0, 1].
    """

    reference = "Wang et al. 2018, CosFace: large margin cosine loss; Wang et al. 2018, AM-Softmax"
    margin_attributes = ("m",)

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float = 64.0,
        m: float = 0.35,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, s, init_std=init_std, reduction=reduction)
        self.m = check_in_range(m, "m", 0.0, 1.0)

    def target(self, cos_y: torch.Tensor) -> torch.Tensor:
        return cosface_margin(cos_y, self.m)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, s={self.s:g}, m={self.m:g}"


class ArcFace(CosineMarginHead):
    """ArcFace (Deng et al. 2019): target ``s cos(θ_y + m)``, others ``s cos θ_j``.

    Defaults s = 64, m = 0.5 (m in [0, π/2]). ``overflow`` sets what happens where ``θ_y + m > π`` (see
    :data:`~veriloss.functional.margins.OVERFLOW_POLICIES`); the default ``"fallback"`` uses
    ``cos θ − m sin m`` there (insightface, pytorch-metric-learning).
    """

    reference = "Deng et al. 2019, ArcFace: additive angular margin loss for deep face recognition"
    margin_attributes = ("m",)

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float = 64.0,
        m: float = 0.5,
        overflow: str = "fallback",
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, s, init_std=init_std, reduction=reduction)
        self.m = check_in_range(m, "m", 0.0, math.pi / 2)
        self.overflow = check_overflow_policy(overflow)

    def target(self, cos_y: torch.Tensor) -> torch.Tensor:
        return arcface_margin(cos_y, self.m, self.overflow)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, s={self.s:g}, m={self.m:g}, overflow={self.overflow!r}"


class CombinedMargin(CosineMarginHead):
    """insightface's combined margin: target ``s (cos(m1 θ_y + m2) − m3)``, others ``s cos θ_j``.

    Defaults s = 64, m1 = 1, m2 = 0.3, m3 = 0.2 (m1 > 0, m2 ∈ [0, π/2], m3 ∈ [0, 1]). (1, m, 0) is ArcFace and
    (1, 0, m) CosFace. ``overflow`` acts where ``m1 θ_y + m2 > π`` as in :class:`ArcFace`.
    """

    reference = "Deng et al. 2019 (insightface combined margin)"
    margin_attributes = ("m2", "m3")

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float = 64.0,
        m1: float = 1.0,
        m2: float = 0.3,
        m3: float = 0.2,
        overflow: str = "fallback",
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, s, init_std=init_std, reduction=reduction)
        self.m1 = check_positive(m1, "m1")
        self.m2 = check_in_range(m2, "m2", 0.0, math.pi / 2)
        self.m3 = check_in_range(m3, "m3", 0.0, 1.0)
        self.overflow = check_overflow_policy(overflow)

    def target(self, cos_y: torch.Tensor) -> torch.Tensor:
        return combined_margin(cos_y, self.m1, self.m2, self.m3, self.overflow)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, s={self.s:g}, m1={self.m1:g}, m2={self.m2:g}, m3={self.m3:g}, "
            f"overflow={self.overflow!r}"
        )


class _ElasticFace(CosineMarginHead):
    """Per-sample margins ``m_i ~ N(m, σ)`` redrawn at every forward (global RNG, see ``elastic_margins``)."""

    _m_range: tuple[float, float] = (0.0, 1.0)
    margin_attributes = ("m",)

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float,
        m: float,
        sigma: float,
        sort: bool,
        *,
        init_std: float | None,
        reduction: str,
    ):
        super().__init__(embedding_dim, num_classes, s, init_std=init_std, reduction=reduction)
        self.m = check_in_range(m, "m", *self._m_range)
        self.sigma = check_positive(sigma, "sigma", strict=False)
        self.sort = bool(sort)

    def margins(self, cos_y: torch.Tensor) -> torch.Tensor:
        margins = elastic_margins(cos_y, self.m, self.sigma, self.sort)
        self._record(margin_mean=margins.mean())
        return margins

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, s={self.s:g}, m={self.m:g}, sigma={self.sigma:g}, sort={self.sort}"


class ElasticArcFace(_ElasticFace):
    """ElasticFace-Arc (Boutros et al. 2022): ArcFace with a per-sample margin ``m_i ~ N(m, σ)`` drawn each
    step.

    Margins are drawn with ``torch.randn`` from the global generator of the embeddings' device (seed it for
    repeatable runs). ``sort=True`` (name ``elasticface-arc+``) gives the largest drawn margin to the sample
    with the lowest target cosine, by rank (see :func:`~veriloss.functional.margins.elastic_margins`).
    Defaults s = 64, m = 0.5, σ = 0.05; ``overflow`` as in :class:`ArcFace` (applied per sample). σ = 0 is
    ArcFace.
    """

    reference = "Boutros et al. 2022, ElasticFace: elastic margin loss for deep face recognition"
    _m_range = (0.0, math.pi / 2)

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float = 64.0,
        m: float = 0.5,
        sigma: float = 0.05,
        overflow: str = "fallback",
        sort: bool = False,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, s, m, sigma, sort, init_std=init_std, reduction=reduction)
        self.overflow = check_overflow_policy(overflow)

    def target(self, cos_y: torch.Tensor) -> torch.Tensor:
        return arcface_margin(cos_y, self.margins(cos_y), self.overflow)


class ElasticCosFace(_ElasticFace):
    """ElasticFace-Cos (Boutros et al. 2022): CosFace with a per-sample margin ``m_i ~ N(m, σ)`` drawn each
    step.

    Same drawing and ``sort`` (name ``elasticface-cos+``) as :class:`ElasticArcFace`. Defaults s = 64,
    m = 0.35, σ = 0.025. σ = 0 is CosFace.
    """

    reference = "Boutros et al. 2022, ElasticFace: elastic margin loss for deep face recognition"

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        s: float = 64.0,
        m: float = 0.35,
        sigma: float = 0.025,
        sort: bool = False,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, s, m, sigma, sort, init_std=init_std, reduction=reduction)

    def target(self, cos_y: torch.Tensor) -> torch.Tensor:
        return cosface_margin(cos_y, self.margins(cos_y))


register("lsoftmax", LSoftmax)
register("sphereface", SphereFace, aliases=("a-softmax",))
register("cosface", CosFace, aliases=("amsoftmax",))
register("arcface", ArcFace)
register("combined", CombinedMargin)
register("elasticface-arc", ElasticArcFace, sort=False)
register("elasticface-cos", ElasticCosFace, sort=False)
register("elasticface-arc+", ElasticArcFace, sort=True)
register("elasticface-cos+", ElasticCosFace, sort=True)
