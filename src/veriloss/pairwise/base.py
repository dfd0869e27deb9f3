"""The base of every pair, triplet and centre loss, and the in-batch pair geometry they share."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_batch

__all__ = [
    "PairwiseLoss",
    "check_flag",
    "check_pair_batch",
    "pair_masks",
    "safe_sqrt",
    "squared_distances",
    "triplet_mask",
]

_SAMPLER_HINT = (
    "pair and triplet losses need at least two identities and at least one identity with two or more samples "
    "per batch: build batches with veriloss.data.PKSampler (P identities × K samples each)"
)


def check_flag(value: object, name: str) -> bool:
    """A strict boolean parameter (``True``/``False``, not a truthy value)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_pair_batch(labels: torch.Tensor) -> None:
    """Raise unless ``labels`` hold at least two identities and at least one positive pair (two samples of one id)."""
    counts = torch.unique(labels, return_counts=True)[1]
    if counts.numel() < 2:
        raise ValueError(
            f"labels hold a single identity ({int(counts[0])} samples of class {int(labels[0])}); {_SAMPLER_HINT}"
        )
    if int(counts.max()) < 2:
        raise ValueError(
            f"labels hold {counts.numel()} identities with one sample each, so there is no positive pair; "
            f"{_SAMPLER_HINT}"
        )


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """``D_ij = ‖x_i − x_j‖²`` for all rows (B×B), via the Gram matrix, clamped at 0, with an exact zero diagonal."""
    sq = (x * x).sum(dim=1)
    d = (sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())).clamp_min(0.0)
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    return d.masked_fill(eye, 0.0)


def safe_sqrt(d2: torch.Tensor) -> torch.Tensor:
    """``√d2`` with value 0 and gradient 0 (not NaN) where ``d2 == 0``."""
    positive = d2 > 0
    return torch.where(positive, d2.clamp_min(torch.finfo(d2.dtype).tiny).sqrt(), torch.zeros_like(d2))


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean B×B masks ``(positive, negative)``: same label and i ≠ j; different label."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def triplet_mask(labels: torch.Tensor) -> torch.Tensor:
    """Boolean B×B×B mask of the valid triplets ``[a, p, n]``: ``y_a = y_p``, ``a ≠ p``, ``y_n ≠ y_a``."""
    pos, neg = pair_masks(labels)
    return pos[:, :, None] & neg[:, None, :]


class PairwiseLoss(nn.Module):
    """A loss on a batch without prototypes: ``loss(embeddings B×d, labels B) -> scalar``.

    Subclasses implement :meth:`compute_loss` (float32 embeddings, validated labels). Pair and triplet losses
    (``requires_pairs = True``) reject batches without two identities and a positive pair. After each forward,
    :meth:`statistics` returns what the subclass recorded with :meth:`_record`.
    """

    #: short citation shown by ``veriloss losses``
    reference: str = ""
    #: whether the batch must hold two identities and a positive pair
    requires_pairs: bool = True
    #: set by subclasses that know them (validated in :meth:`forward`)
    embedding_dim: int | None = None
    num_classes: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self._stats: dict[str, torch.Tensor] = {}

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_batch(embeddings, labels, self.num_classes, self.embedding_dim)
        if self.requires_pairs:
            check_pair_batch(labels)
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return self.compute_loss(embeddings.float(), labels)

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _record(self, **stats: torch.Tensor | float) -> None:
        self._stats.update({k: torch.as_tensor(v).detach() for k, v in stats.items()})

    def statistics(self) -> dict[str, float]:
        """The statistics of the last batch as plain floats (e.g. ``active_fraction`` of the triplets)."""
        return {k: float(v) for k, v in self._stats.items()}
