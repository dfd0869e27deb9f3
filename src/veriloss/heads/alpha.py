"""The α-divergence heads of LOSSES.md §2: alpha, qmargin (margin in q), a3m (margin in the logits), a3m-i.

Koutsianos, Mosner, Panagakis, Stafylakis (2025), "Alpha Divergence Losses for Biometric Verification"
(arXiv 2511.13621); the loss itself is Roulet et al. (2025). The published text available to us does not give the
parametrization of κ nor the re-initialization schedule: the choices here are ours and are documented per class.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import check_embeddings, check_labels, check_positive
from ..functional.alpha import alpha_divergence_loss_with_stats
from ..functional.margins import OVERFLOW_POLICIES, arcface_margin
from ..functional.normalize import l2_norm, l2_normalize
from .base import Head, cosine
from .registry import register
from .streaming import check_chunk_size, streaming_alpha_loss

__all__ = ["A3MHead", "A3MIHead", "AlphaHead", "QMarginHead", "normalized_class_means", "qmargin_kappa"]

_REF = "Koutsianos et al. 2025 (arXiv 2511.13621); Roulet et al. 2025"


def _check_alpha(alpha: float) -> float:
    a = check_positive(alpha, "alpha")
    if a < 1.0:
        raise ValueError(f"alpha must be ≥ 1 (α = 1 is softmax cross-entropy), got {alpha!r}")
    return a


def qmargin_kappa(alpha: float, s: float, m: float) -> float:
    """The κ whose zero-loss separation ``κ^{1−α}/(α−1)`` equals ``s·m`` logits: ``κ = ((α−1)·s·m)^{−1/(α−1)}``.

    At α = 1 the limit is CosFace's ``κ = e^{−s·m}``.
    """
    if alpha == 1.0:
        return math.exp(-s * m)
    return ((alpha - 1.0) * s * m) ** (-1.0 / (alpha - 1.0))


class AlphaHead(Head):
    """Plain α-divergence loss on cosine logits ``z_j = s·cos θ_j`` with the unit reference measure.

    The loss is zero once the target leads every other logit by ``1/(α−1)``, i.e. an effective cosine margin of
    ``1/((α−1)s)``: a larger s means a smaller margin. Defaults (α = 1.5, s = 8) are the best of our Omniglot
    baseline (shared/docs/OMNIGLOT-BASELINES.md).

    ``chunk_size`` (every α head; α > 1 only): None computes the B×K logits (dense path); an integer streams W in
    chunks of that many prototypes (:mod:`veriloss.heads.streaming`): same loss and gradients, no B×K or K×d
    temporary, and a sparse COO gradient for W (train it with an optimizer that accepts sparse gradients, e.g.
    :class:`veriloss.train.sparse_optim.LazySGD`).
    """

    reference = _REF

    def __init__(
        self, embedding_dim: int, num_classes: int, alpha: float = 1.5, s: float = 8.0, chunk_size: int | None = None
    ):
        super().__init__(embedding_dim, num_classes)
        self.alpha = _check_alpha(alpha)
        self.s = check_positive(s, "s")
        self.chunk_size = check_chunk_size(chunk_size, self.alpha)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.s * super().logits(x)

    def _margin_logits(self, cos: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.s * cos

    def _target_q(self, y: torch.Tensor) -> torch.Tensor | None:
        return None

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.chunk_size is not None:
            return self._streaming_loss(x, y)
        cos = cosine(x, self.weight.to(x.dtype))
        z = self._margin_logits(cos, y)
        loss, stats = alpha_divergence_loss_with_stats(z, y, self.alpha, target_q=self._target_q(y))
        self._record_accuracy(cos, y)
        self._record(**stats)
        return loss

    def _target_logit(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The head's target margin as a map of target cosines (n,) to target logits (n,): ``_margin_logits``
        applied to each cosine as a one-class row whose target is that class (the streaming and sharded paths)."""

        def target_logit(cos_y: torch.Tensor) -> torch.Tensor:
            first = torch.zeros(cos_y.shape[0], dtype=torch.long, device=cos_y.device)
            return self._margin_logits(cos_y[:, None], first)[:, 0]

        return target_logit

    def _streaming_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The chunked path: the head's target margin is ``_margin_logits`` applied to the target cosine alone."""
        per, stats = streaming_alpha_loss(
            x, self.weight, y, self.alpha, self.s, self._target_logit(), self._target_q(y), self.chunk_size
        )
        self._record(**stats)
        return per.mean()

    def extra_repr(self) -> str:
        chunk = "" if self.chunk_size is None else f", chunk_size={self.chunk_size}"
        return f"{super().extra_repr()}, alpha={self.alpha}, s={self.s}{chunk}"


class QMarginHead(AlphaHead):
    """Q-Margin: the α loss on ``s·cos θ_j`` with reference measure ``q_j = 1`` (j ≠ y) and ``q_y = κ < 1``.

    The zero-loss separation is ``z_y − max_{j≠y} z_j ≥ κ^{1−α}/(α−1)``. Give ``kappa`` directly, or a cosine margin
    ``m`` from which ``κ = ((α−1)·s·m)^{−1/(α−1)}`` makes that separation exactly ``s·m`` logits (our
    parametrization; at α = 1, κ = e^{−s·m} and the head is exactly CosFace). Default: m = 0.35.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        alpha: float = 1.5,
        s: float = 16.0,
        m: float | None = None,
        kappa: float | None = None,
        chunk_size: int | None = None,
    ):
        super().__init__(embedding_dim, num_classes, alpha, s, chunk_size)
        if m is not None and kappa is not None:
            raise ValueError("give either m (a cosine margin, from which κ is derived) or kappa, not both")
        if kappa is None:
            self.m = check_positive(0.35 if m is None else m, "m")
            self.kappa = qmargin_kappa(self.alpha, self.s, self.m)
        else:
            self.kappa = check_positive(kappa, "kappa")
            if self.kappa > 1.0:
                raise ValueError(f"kappa must be in (0, 1] (κ > 1 is a negative margin), got {kappa!r}")
            self.m = None
        if not 0.0 < self.kappa <= 1.0:
            raise ValueError(
                f"the margin m={self.m} gives κ={self.kappa:.4g} outside (0, 1]: with α={self.alpha} and s={self.s} the"
                f" smallest useful margin is m > 1/((α−1)s) = {1 / ((self.alpha - 1) * self.s):.4g}"
                if self.alpha > 1
                else f"κ={self.kappa:.4g} must be in (0, 1]"
            )

    def _target_q(self, y: torch.Tensor) -> torch.Tensor:
        return torch.full(y.shape, self.kappa, dtype=torch.float64, device=y.device)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kappa={self.kappa:.6g}" + (f", m={self.m}" if self.m is not None else "")


class A3MHead(AlphaHead):
    """A3M: the α loss (unit q) on ArcFace logits: target ``s·cos(θ_y + m)``, others ``s·cos θ_j``.

    Known failure (logged as the ``py_zero`` statistic): with poorly aligned prototypes the target falls out of the
    support (p_y = 0) early in training. ``overflow`` is the θ + m > π policy of
    :func:`veriloss.functional.margins.arcface_margin` (default "fallback"). Default m = 0.2: our Omniglot baseline
    saw the target out of the support for most samples at m = 0.5, s = 16.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        alpha: float = 1.5,
        s: float = 16.0,
        m: float = 0.2,
        overflow: str = "fallback",
        chunk_size: int | None = None,
    ):
        super().__init__(embedding_dim, num_classes, alpha, s, chunk_size)
        self.m = check_positive(m, "m", strict=False)
        if self.m >= math.pi:
            raise ValueError(f"m is an angle in radians and must be < π, got {m!r}")
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, got {overflow!r}")
        self.overflow = overflow

    def _margin_logits(self, cos: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        target = arcface_margin(cos.gather(1, y[:, None]), self.m, self.overflow)
        return self.s * cos.scatter(1, y[:, None], target)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, m={self.m}, overflow={self.overflow!r}"


def normalized_class_means(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per class, the mean of its L2-normalized embeddings (K×d); classes without samples get a zero row."""
    check_embeddings(embeddings)
    check_labels(labels, embeddings.shape[0], num_classes)
    x = l2_normalize(embeddings.detach().float(), dim=1)
    sums = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, labels.long(), x)
    counts = torch.bincount(labels.long(), minlength=num_classes).clamp_min(1).to(x.dtype)
    return sums / counts[:, None]


class A3MIHead(A3MHead):
    """A3M-I: A3M plus prototype re-initialization.

    At a point the trainer chooses (e.g. a quarter of training), :meth:`reinitialize_prototypes` sets every prototype
    to the normalized mean of its class's normalized training embeddings and resets the optimizer state of W.
    """

    @torch.no_grad()
    def reinitialize_prototypes(self, class_means: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Set ``W_j = mean_j/‖mean_j‖`` for every class whose mean is non-zero; returns how many were set.

        Classes with a zero mean (no samples seen) keep their prototype. With ``optimizer``, its state for W
        (momentum, Adam moments) is cleared so that old statistics do not pull the new prototypes back.
        """
        if not isinstance(class_means, torch.Tensor) or class_means.shape != self.weight.shape:
            shape = tuple(class_means.shape) if isinstance(class_means, torch.Tensor) else type(class_means)
            raise ValueError(f"class_means must have shape {tuple(self.weight.shape)} (K, d), got {shape}")
        means = class_means.detach().to(self.weight.device, torch.float32)
        if not bool(torch.isfinite(means).all()):
            raise ValueError("class_means contains non-finite values; recompute the class means")
        norms = l2_norm(means, dim=1)
        keep = norms > 0
        self.weight[keep] = (means[keep] / norms[keep, None]).to(self.weight.dtype)
        if optimizer is not None and self.weight in optimizer.state:
            del optimizer.state[self.weight]
        return int(keep.sum())


register("alpha", AlphaHead)
register("qmargin", QMarginHead)
register("a3m", A3MHead)
register("a3m-i", A3MIHead)
