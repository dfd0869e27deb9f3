"""Center loss (Wen et al. 2016) and center-invariant loss (Wu et al. 2017)."""

from __future__ import annotations

import math

import torch

from .._checks import check_int, check_positive, exponent_limit
from ..functional.normalize import l2_norm
from .base import PairwiseLoss, check_norm_limit, max_row_norm
from .registry import register

__all__ = ["CenterInvariantLoss", "CenterLoss"]


class CenterLoss(PairwiseLoss):
    """Center loss ``(1/B) · ½ Σ_i ‖x_i − c_{y_i}‖²`` with centres updated by Wen's rule, not by the optimizer.

    The paper writes the sum over the mini-batch; like common implementations we divide it by the batch size B, so
    the weight λ it is combined with (see :class:`veriloss.pairwise.WeightedSum`) does not depend on B. Per sample
    (``reduction="none"``): ``½‖x_i − c_{y_i}‖²``.

    The centres ``c`` (K×d) are a buffer, initialized to zero, that receives no gradient; the embeddings do
    (``∂L/∂x_i = (x_i − c_{y_i}) / B``). In training mode every forward, after computing the loss with the current
    centres, updates the centres of the classes present in the batch (Wen et al., Eq. 4):
    ``Δc_j = Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j)``, ``c_j ← c_j − α Δc_j`` (``alpha``, default 0.5).
    In eval mode the centres are left as they are. Any batch is valid (no pair requirement).

    Robustness (our choice): no batch can poison the centres. (1) A batch whose embedding norms (or centre norms) are
    above ``2^62`` (float32), where ``½‖x − c‖²`` may not be representable, raises a ``ValueError`` before any centre
    moves. (2) The update is a trust region: one step moves centre j by at most ``2·max(‖c_j‖, ρ)``, ρ the largest
    centre norm (no bound while every centre is 0: the first batch sets the scale), so one outlier batch can at most
    triple the centres' scale, and the next normal batches pull them back at Wen's rate. In normal training the step
    is far inside the bound and the update is exactly Wen's. (3) Centres stay within the admissible norm (``2^62``).

    Statistics: ``center_distance`` (mean ‖x_i − c_{y_i}‖ of the batch).

    Wen, Zhang, Li, Qiao, "A discriminative feature learning approach for deep face recognition", ECCV 2016.
    """

    reference = "Wen et al. 2016"
    requires_pairs = False
    #: the loss grows as this power of the centre norms (center term: squared distances)
    _power = 2

    def __init__(self, embedding_dim: int, num_classes: int, alpha: float = 0.5, *, reduction: str = "mean"):
        super().__init__(reduction)
        embedding_dim = check_int(embedding_dim, "embedding_dim", 1, what="a positive integer")
        num_classes = check_int(num_classes, "num_classes", 1, what="a positive integer")
        alpha = check_positive(alpha, "alpha")
        if alpha > 1:
            raise ValueError(f"alpha must be in (0, 1] (the centre update rate), got {alpha!r}")
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, embedding_dim))

    def center_term(self, x: torch.Tensor, y: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """``½‖x_i − c_{y_i}‖²`` per sample (B,)."""
        diff = x - centers[y]
        sq = (diff * diff).sum(dim=1)
        with torch.no_grad():
            self._record(center_distance=sq.sqrt().mean())
        return 0.5 * sq

    def center_step(self, x: torch.Tensor, y: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """Wen's ``Δc`` (K×d; zero rows for the classes absent from the batch)."""
        # counted by index_add_: bincount reads the largest label from a GPU (a synchronization)
        counts = centers.new_zeros(self.num_classes).index_add_(0, y, centers.new_ones(y.shape[0]))
        sums = torch.zeros_like(centers).index_add_(0, y, x)
        return (counts[:, None] * centers - sums) / (1.0 + counts[:, None])

    def _magnitudes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"x_norm": max_row_norm(x), "c_norm": max_row_norm(self.centers.to(x.dtype))}

    def _check_magnitudes(self, values: dict[str, float], dtype: torch.dtype) -> None:
        name = "center-invariant" if self._power == 4 else "center"
        fix = "rescale or L2-normalize the embeddings (the centres were not updated)"
        check_norm_limit(name, "embedding norms", values["x_norm"], 2, dtype, fix)
        check_norm_limit(name, "centre norms", values["c_norm"], self._power, dtype, "reset the centres")

    def _apply_step(self, centers: torch.Tensor, step: torch.Tensor) -> None:
        """``c ← c − step`` within the trust region and the admissible ball of the class docstring."""
        norms = l2_norm(centers, dim=1)
        rho = norms.amax()
        radius = torch.where(rho > 0, 2.0 * torch.maximum(norms, rho), math.inf)
        new = centers - step * (radius / l2_norm(step, dim=1)).clamp(max=1.0)[:, None]  # 1 unless the step is huge
        limit = 2.0 ** ((exponent_limit(self.centers.dtype) - 3) // self._power)  # the buffer holds them
        new = new * (limit / l2_norm(new, dim=1)).clamp(max=1.0)[:, None]
        self.centers.copy_(new.to(self.centers.dtype))

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        centers = self.centers.detach().to(x.dtype)
        loss = self.center_term(x, y, centers)
        if self.training:
            with torch.no_grad():
                self._apply_step(centers, self.alpha * self.center_step(x.detach(), y, centers))
        return loss

    def extra_repr(self) -> str:
        return self._with_reduction(
            f"embedding_dim={self.embedding_dim}, num_classes={self.num_classes}, alpha={self.alpha}"
        )


class CenterInvariantLoss(CenterLoss):
    """Center-invariant loss: the center loss plus ``(1/B) · ¼ Σ_i (‖c_{y_i}‖² − R)²``, ``R = (1/K) Σ_j ‖c_j‖²``.

    The invariant term of Wu et al. (2017) penalizes the *squared* deviation of each batch sample's centre norm² from
    the mean over all K centres (the usual statement omits the square; without it the term is linear in the norms and
    unbounded below, and PyTorch Metric Learning's ``CenterInvariantRegularizer`` also squares). As for the center
    term, the sum over the batch is divided by B.

    What gets gradients: the invariant term depends only on the centres, which are a buffer outside autograd. It
    acts through the centre update: in training mode ``c ← c − α (Δc + ∂L_I/∂c)``, with Wen's ``Δc`` for the center
    term and the exact gradient of the invariant term (returned value's definition) w.r.t. every centre,
    ``∂L_I/∂c_j = (c_j / B) (Σ_{i: y_i=j} e_i − (1/K) Σ_i e_i)``, ``e_i = ‖c_{y_i}‖² − R``. This pulls the centre
    norms together, and the center term pulls the embeddings (the only tensors that receive autograd gradients,
    from the center term) toward those centres. The returned loss is the sum of both terms, both computed with the
    centres before the update.

    Stability (our choice): the invariant step is a radial rescaling ``c_j ← (1 − α G_j) c_j`` with
    ``∂L_I/∂c_j = G_j c_j``; G grows with the squared norms, so a fixed α overshoots and diverges once centre norms
    are large (e.g. after one batch of embeddings ×10). The factor is bounded to [0, 2] (``α G_j`` clipped to
    [−1, 1]): exactly Wu's step whenever ``|α G_j| ≤ 1``, never a flipped or exploding centre. The quartic term
    needs centre norms ≤ ``2^31`` in float32: that is this loss's admissible ball (centres loaded beyond it raise a
    ``ValueError``); otherwise as :class:`CenterLoss` (embedding norms ≤ ``2^62``, trust region).

    Statistics: ``center_distance``, ``center_term``, ``invariant_term``.

    Wu, Liu, Feng, Lew, "Deep face recognition with center invariant loss", ACM MM Workshops 2017.
    """

    reference = "Wu et al. 2017"
    _power = 4

    def invariant_term(self, y: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """``¼(‖c_{y_i}‖² − R)²`` per sample (B,)."""
        norms = (centers * centers).sum(dim=1)
        dev = norms[y] - norms.mean()
        return 0.25 * (dev * dev)

    def invariant_factor(self, y: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """``G`` (K,) with ``∂L_I/∂c_j = G_j c_j``: ``G_j = (Σ_{i: y_i=j} e_i − (1/K) Σ_i e_i) / B``."""
        norms = (centers * centers).sum(dim=1)
        dev = norms[y] - norms.mean()
        per_class = torch.zeros_like(norms).index_add_(0, y, dev)
        return (per_class - dev.sum() / self.num_classes) / y.shape[0]

    def invariant_gradient(self, y: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """``∂L_I/∂c`` (K×d) of :meth:`invariant_term`, in closed form."""
        return centers * self.invariant_factor(y, centers)[:, None]

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        centers = self.centers.detach().to(x.dtype)
        center = self.center_term(x, y, centers)
        invariant = self.invariant_term(y, centers)
        if self.training:
            with torch.no_grad():
                radial = (self.alpha * self.invariant_factor(y, centers)).clamp(-1.0, 1.0)
                step = self.alpha * self.center_step(x.detach(), y, centers) + centers * radial[:, None]
                self._apply_step(centers, step)
        self._record(center_term=center.mean(), invariant_term=invariant.mean())
        return center + invariant


register("center", CenterLoss)
register("center-invariant", CenterInvariantLoss)
