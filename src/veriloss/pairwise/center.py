"""Center loss (Wen et al. 2016) and center-invariant loss (Wu et al. 2017)."""

from __future__ import annotations

import torch

from .._checks import check_positive
from .base import PairwiseLoss
from .registry import register

__all__ = ["CenterInvariantLoss", "CenterLoss"]


class CenterLoss(PairwiseLoss):
    """Center loss ``(1/B) · ½ Σ_i ‖x_i − c_{y_i}‖²`` with centres updated by Wen's rule, not by the optimizer.

    The paper writes the sum over the mini-batch; like common implementations we divide it by the batch size B, so
    the weight λ it is combined with (see :class:`veriloss.pairwise.WeightedSum`) does not depend on B.

    The centres ``c`` (K×d) are a buffer, initialized to zero, that receives no gradient; the embeddings do
    (``∂L/∂x_i = (x_i − c_{y_i}) / B``). In training mode every forward, after computing the loss with the current
    centres, updates the centres of the classes present in the batch (Wen et al., Eq. 4):
    ``Δc_j = Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j)``, ``c_j ← c_j − α Δc_j`` (``alpha``, default 0.5).
    In eval mode the centres are left as they are. Any batch is valid (no pair requirement).

    Statistics: ``center_distance`` (mean ‖x_i − c_{y_i}‖ of the batch).

    Wen, Zhang, Li, Qiao, "A discriminative feature learning approach for deep face recognition", ECCV 2016.
    """

    reference = "Wen et al. 2016"
    requires_pairs = False

    def __init__(self, embedding_dim: int, num_classes: int, alpha: float = 0.5):
        super().__init__()
        if not isinstance(embedding_dim, int) or isinstance(embedding_dim, bool) or embedding_dim < 1:
            raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        alpha = check_positive(alpha, "alpha")
        if alpha > 1:
            raise ValueError(f"alpha must be in (0, 1] (the centre update rate), got {alpha!r}")
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, embedding_dim))

    def center_term(self, x: torch.Tensor, y: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        diff = x - centers[y]
        sq = (diff * diff).sum(dim=1)
        with torch.no_grad():
            self._record(center_distance=sq.sqrt().mean())
        return 0.5 * sq.mean()

    def center_step(self, x: torch.Tensor, y: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """Wen's ``Δc`` (K×d; zero rows for the classes absent from the batch)."""
        counts = torch.bincount(y, minlength=self.num_classes).to(centers.dtype)
        sums = torch.zeros_like(centers).index_add_(0, y, x)
        return (counts[:, None] * centers - sums) / (1.0 + counts[:, None])

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        centers = self.centers.detach().float()
        loss = self.center_term(x, y, centers)
        if self.training:
            with torch.no_grad():
                step = self.center_step(x.detach(), y, centers)
                self.centers.sub_((self.alpha * step).to(self.centers.dtype))
        return loss

    def extra_repr(self) -> str:
        return f"embedding_dim={self.embedding_dim}, num_classes={self.num_classes}, alpha={self.alpha}"


class CenterInvariantLoss(CenterLoss):
    """Center-invariant loss: the center loss plus ``(1/B) · ¼ Σ_i (‖c_{y_i}‖² − R)²``, ``R = (1/K) Σ_j ‖c_j‖²``.

    The invariant term of Wu et al. (2017) penalizes the *squared* deviation of each batch sample's centre norm² from
    the mean over all K centres (LOSSES.md's row omits the square; without it the term is linear in the norms and
    unbounded below, and PyTorch Metric Learning's ``CenterInvariantRegularizer`` also squares). As for the center
    term, the sum over the batch is divided by B.

    What gets gradients: the invariant term depends only on the centres, which are a buffer outside autograd. It
    acts through the centre update: in training mode ``c ← c − α (Δc + ∂L_I/∂c)``, with Wen's ``Δc`` for the center
    term and the exact gradient of the invariant term (returned value's definition) w.r.t. every centre,
    ``∂L_I/∂c_j = (c_j / B) (Σ_{i: y_i=j} e_i − (1/K) Σ_i e_i)``, ``e_i = ‖c_{y_i}‖² − R``. This pulls the centre
    norms together, and the center term pulls the embeddings (the only tensors that receive autograd gradients,
    from the center term) toward those centres. The returned loss is the sum of both terms, both computed with the
    centres before the update.

    Statistics: ``center_distance``, ``center_term``, ``invariant_term``.

    Wu, Liu, Feng, Lew, "Deep face recognition with center invariant loss", ACM MM Workshops 2017.
    """

    reference = "Wu et al. 2017"

    def invariant_term(self, y: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        norms = (centers * centers).sum(dim=1)
        dev = norms[y] - norms.mean()
        return 0.25 * (dev * dev).mean()

    def invariant_gradient(self, y: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """``∂L_I/∂c`` (K×d) of :meth:`invariant_term`, in closed form."""
        norms = (centers * centers).sum(dim=1)
        dev = norms[y] - norms.mean()
        per_class = torch.zeros_like(norms).index_add_(0, y, dev)
        return centers * ((per_class - dev.sum() / self.num_classes) / y.shape[0])[:, None]

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        centers = self.centers.detach().float()
        center = self.center_term(x, y, centers)
        invariant = self.invariant_term(y, centers)
        if self.training:
            with torch.no_grad():
                step = self.center_step(x.detach(), y, centers) + self.invariant_gradient(y, centers)
                self.centers.sub_((self.alpha * step).to(self.centers.dtype))
        self._record(center_term=center, invariant_term=invariant)
        return center + invariant


register("center", CenterLoss)
register("center-invariant", CenterInvariantLoss)
