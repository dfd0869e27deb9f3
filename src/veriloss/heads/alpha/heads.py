"""The α-divergence heads (docs/losses.md): alpha, qmargin (margin in q), a3m (margin in the logits), a3m-i.

Koutsianos, Mosner, Panagakis, Stafylakis (2025), "Alpha Divergence Losses for Biometric Verification"
(arXiv 2511.13621); the loss itself is Roulet et al. (2025). The published text available to us does not give the
parametrization of κ nor the re-initialization schedule: the choices here are ours and are documented per class.

Each head is a cosine-margin head (:class:`veriloss.heads.angular.CosineMarginHead`: logits ``s·cos θ_j``, the
target through the ``target`` hook) whose link is the α loss instead of the cross-entropy. Where W lives is a
construction option: dense (default), streamed in chunks (``chunk_size``, :mod:`.streaming`) or split over the
processes of torch.distributed (``sharded``, :mod:`.sharded`); all three are the same loss on the same solver.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._checks import check_bool, check_embeddings, check_int, check_labels, check_positive
from ...functional.alpha import alpha_loss_per_sample, check_alpha, outside_graph
from ...functional.margins import check_overflow_policy
from ...functional.normalize import l2_norm, l2_normalize
from ..angular import ArcFace, CosineMarginHead
from ..base import cosine
from ..registry import register
from . import collectives
from .logits import AlphaLogits
from .sharded import sharded_alpha_loss
from .shards import Shard
from .streaming import streaming_alpha_loss

__all__ = ["A3MHead", "A3MIHead", "AlphaHead", "QMarginHead", "normalized_class_means", "qmargin_kappa"]

_REF = "Koutsianos et al. 2025 (arXiv 2511.13621); Roulet et al. 2025"


def qmargin_kappa(alpha: float, s: float, m: float) -> float:
    """The κ whose zero-loss separation ``κ^{1−α}/(α−1)`` equals ``s·m`` logits: ``κ = ((α−1)·s·m)^{−1/(α−1)}``.

    At α = 1 the limit is CosFace's ``κ = e^{−s·m}``.

    >>> qmargin_kappa(1.5, 16.0, 0.35) == (0.5 * 16.0 * 0.35) ** -2
    True
    """
    if alpha == 1.0:
        return math.exp(-s * m)
    return ((alpha - 1.0) * s * m) ** (-1.0 / (alpha - 1.0))


class AlphaHead(CosineMarginHead):
    """Plain α-divergence loss on cosine logits ``z_j = s·cos θ_j`` with the unit reference measure.

    The loss is zero once the target leads every other logit by ``1/(α−1)``, i.e. an effective cosine margin of
    ``1/((α−1)s)``: a larger s means a smaller margin. Defaults (α = 1.5, s = 8) are the best of our Omniglot
    baseline (docs/results/omniglot.md).

    Layout options of every α head (α > 1 only): ``chunk_size`` streams W in chunks of that many prototypes (no
    B×K or K×d temporary, a sparse COO gradient for W: train it with lazy-sgd); ``sharded=True`` splits W over the
    processes of torch.distributed (build it after ``init_process_group``; the loss and its ``reduction`` are over
    the global batch, every rank's rows in rank order, the same on every rank). See docs/alpha-heads.md.

    >>> head = AlphaHead(16, 10, alpha=1.5, s=8.0)
    >>> head(torch.randn(4, 16), torch.tensor([0, 1, 2, 3])).shape
    torch.Size([])
    """

    reference = _REF
    #: the reference weight of the target (None: the unit measure); Q-Margin sets it
    kappa: float | None = None
    #: this process's classes when sharded (None: every class)
    shard: Shard | None = None

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        alpha: float = 1.5,
        s: float = 8.0,
        *,
        chunk_size: int | None = None,
        sharded: bool = False,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(embedding_dim, num_classes, s, init_std=init_std, reduction=reduction)
        self.alpha = check_alpha(alpha)
        sharded = check_bool(sharded, "sharded")
        self.chunk_size = None
        if chunk_size is not None:
            what = "a positive integer (prototypes per chunk) or None"
            self.chunk_size = check_int(chunk_size, "chunk_size", 1, what=what)
        for option, used in (("chunk_size (streaming)", self.chunk_size is not None), ("sharded", sharded)):
            if used and self.alpha == 1.0:
                raise ValueError(
                    f"{option} needs a sparse α-softargmax, i.e. alpha > 1; got alpha={alpha!r} (α = 1 is the dense"
                    f" softmax, whose normalizer spans every class): leave {option.split()[0]} unset"
                )
        if sharded:
            self.shard = Shard.of(num_classes, collectives.world(), collectives.rank())
            self.weight = nn.Parameter(self.weight.detach()[self.shard.start : self.shard.end].clone())

    # --- layout capabilities -----------------------------------------------------------------------------------
    @property
    def sharded(self) -> bool:
        return self.shard is not None

    @property
    def shard_start(self) -> int:
        return 0 if self.shard is None else self.shard.start

    @property
    def sparse_gradients(self) -> bool:
        return self.chunk_size is not None

    # --- the loss ----------------------------------------------------------------------------------------------
    def alpha_logits(self) -> AlphaLogits:
        """The α link as it stands (the margin warm-up may change the margin between steps)."""
        return AlphaLogits(self.alpha, self.s, self.target, self.kappa)

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        link = self.alpha_logits()
        if self.shard is not None:
            if collectives.world() != self.shard.world_size:
                raise ValueError(
                    f"this sharded head was built for {self.shard.world_size} process(es) but torch.distributed now"
                    f" has {collectives.world()}: build the head after init_process_group, in every process"
                )
            per, stats = outside_graph(sharded_alpha_loss)(x, self.weight, y, link, self.shard, self.chunk_size)
        elif self.chunk_size is not None:
            per, stats = outside_graph(streaming_alpha_loss)(x, self.weight, y, link, self.chunk_size)
        else:
            cos = cosine(x, self.weight.to(x.dtype))
            self._record_accuracy(cos, y)
            z = self.margin_logits(cos, y)
            per, stats = outside_graph(alpha_loss_per_sample)(z, y, self.alpha, None, link.target_q(y))
        self._record(**stats)
        return per

    def _check_magnitudes(self, values: dict[str, float], dtype: torch.dtype) -> None:
        """Parameters only (no host read): the logits are within ``s·(1 + π)`` of 0 whatever the margin, so the
        loss is below ``2s(1 + π)`` plus, for a target weight κ, ``κ^{1−α}/(α(α−1))`` (−log κ at α = 1)."""
        terms = [math.log(2.0 * self.s * (1.0 + math.pi))]
        if self.kappa is not None:
            if self.alpha > 1.0:
                terms.append((1.0 - self.alpha) * math.log(self.kappa) - math.log(self.alpha * (self.alpha - 1.0)))
            else:
                terms.append(math.log(-math.log(self.kappa)) if self.kappa < 1.0 else -math.inf)
        top = max(terms)
        log_bound = top + math.log(sum(math.exp(t - top) for t in terms))
        if log_bound > math.log(torch.finfo(dtype).max):
            raise ValueError(
                f"{type(self).__name__}: with s={self.s:g}, alpha={self.alpha:g}"
                + ("" if self.kappa is None else f", kappa={self.kappa:.3g}")
                + f" the loss may reach 10^{log_bound / math.log(10):.1f}, beyond what {dtype} holds; use a smaller s"
                " or margin, or compute in float64"
            )

    def extra_repr(self) -> str:
        out = f"{super().extra_repr()}, alpha={self.alpha}, s={self.s}"
        if self.chunk_size is not None:
            out += f", chunk_size={self.chunk_size}"
        if self.shard is not None:
            out += f", sharded: classes [{self.shard.start}, {self.shard.end}) of world size {self.shard.world_size}"
        return out


class QMarginHead(AlphaHead):
    """Q-Margin: the α loss on ``s·cos θ_j`` with reference measure ``q_j = 1`` (j ≠ y) and ``q_y = κ < 1``.

    The zero-loss separation is ``z_y − max_{j≠y} z_j ≥ κ^{1−α}/(α−1)``. Give ``kappa`` directly, or a cosine margin
    ``m`` from which ``κ = ((α−1)·s·m)^{−1/(α−1)}`` makes that separation exactly ``s·m`` logits (our
    parametrization; at α = 1, κ = e^{−s·m} and the head is exactly CosFace). Default: m = 0.35. The margin warm-up
    ramps κ geometrically (``κ^f``; κ = 1 is no margin). Layout options as :class:`AlphaHead`.
    """

    margin_attributes = ("kappa",)

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        alpha: float = 1.5,
        s: float = 16.0,
        m: float | None = None,
        kappa: float | None = None,
        *,
        chunk_size: int | None = None,
        sharded: bool = False,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(
            embedding_dim,
            num_classes,
            alpha,
            s,
            chunk_size=chunk_size,
            sharded=sharded,
            init_std=init_std,
            reduction=reduction,
        )
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

    def ramp_margin(self, fraction: float) -> None:
        """κ ← κ_configured^fraction: the margin in the measure ramps geometrically (1 is no margin)."""
        self.kappa = self._configured_margins()["kappa"] ** fraction

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kappa={self.kappa:.6g}" + (f", m={self.m}" if self.m is not None else "")


class A3MHead(AlphaHead):
    """A3M: ArcFace's target ``s·cos(θ_y + m)`` (others ``s·cos θ_j``) with the α link (unit q).

    Known failure (logged as the ``py_zero`` statistic): with poorly aligned prototypes the target falls out of the
    support (p_y = 0) early in training. ``overflow`` is the θ + m > π policy of
    :func:`veriloss.functional.margins.arcface_margin` (default "fallback"). Default m = 0.2 (m in [0, π)): our
    Omniglot baseline saw the target out of the support for most samples at m = 0.5, s = 16. Layout options as
    :class:`AlphaHead`.
    """

    margin_attributes = ("m",)
    target = ArcFace.target  # the same hook as ArcFace: the α heads differ from it only by the link

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        alpha: float = 1.5,
        s: float = 16.0,
        m: float = 0.2,
        overflow: str = "fallback",
        *,
        chunk_size: int | None = None,
        sharded: bool = False,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__(
            embedding_dim,
            num_classes,
            alpha,
            s,
            chunk_size=chunk_size,
            sharded=sharded,
            init_std=init_std,
            reduction=reduction,
        )
        self.m = check_positive(m, "m", strict=False)
        if self.m >= math.pi:
            raise ValueError(f"m is an angle in radians and must be < π, got {m!r}")
        self.overflow = check_overflow_policy(overflow)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, m={self.m}, overflow={self.overflow!r}"


def normalized_class_means(embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per class, the mean of its L2-normalized embeddings (K×d); classes without samples get a zero row.

    >>> normalized_class_means(torch.tensor([[3.0, 4.0], [0.0, 2.0]]), torch.tensor([0, 0]), 2)
    tensor([[0.3000, 0.9000],
            [0.0000, 0.0000]])
    """
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

    can_reinitialize = True

    @torch.no_grad()
    def reinitialize_prototypes(self, class_means: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Set ``W_j = mean_j/‖mean_j‖`` for every class whose mean is non-zero; returns how many were set.

        ``class_means`` holds all K classes (K×d; a sharded head takes its own rows and counts over every process:
        a collective, call it on every rank). Classes with a zero mean (no samples seen) keep their prototype. With
        ``optimizer``, its state for W (momentum, Adam moments) is cleared so that old statistics do not pull the
        new prototypes back.
        """
        shape = (self.num_classes, self.embedding_dim)
        if not isinstance(class_means, torch.Tensor) or class_means.shape != shape:
            got = tuple(class_means.shape) if isinstance(class_means, torch.Tensor) else type(class_means)
            raise ValueError(f"class_means must have shape {shape} (K, d: all K classes, on every rank), got {got}")
        rows = class_means.detach()[self.shard_start : self.shard_start + self.weight.shape[0]]
        means = rows.to(self.weight.device, torch.float32)
        if not bool(torch.isfinite(means).all()):
            raise ValueError("class_means contains non-finite values; recompute the class means")
        norms = l2_norm(means, dim=1)
        keep = norms > 0
        self.weight[keep] = (means[keep] / norms[keep, None]).to(self.weight.dtype)
        if optimizer is not None and self.weight in optimizer.state:
            del optimizer.state[self.weight]
        if self.shard is None:
            return int(keep.sum())
        return int(collectives.all_reduce_sum(keep.sum().reshape(1)))


register("alpha", AlphaHead)
register("qmargin", QMarginHead)
register("a3m", A3MHead)
register("a3m-i", A3MIHead)
