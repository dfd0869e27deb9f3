"""The base of every prototype head: owns W (K×d), validates the batch, computes in float32, keeps statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from .._checks import check_batch, check_int
from ..functional.normalize import cosine_matrix

__all__ = ["Head", "compute_dtype", "cosine"]


def compute_dtype(x: torch.Tensor) -> torch.Tensor:
    """float64 stays float64 (reference checks, gradcheck); anything else computes in float32."""
    return x if x.dtype == torch.float64 else x.float()


def cosine(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``cos θ_j = x̂·Ŵ_j`` for every row of ``x`` and every prototype, clamped to [−1, 1]: scale-invariant for any
    finite rows (:func:`veriloss.functional.cosine_matrix`); a zero row gives cosines 0."""
    return cosine_matrix(x, weight)


class Head(nn.Module):
    """A prototype loss: ``head(embeddings B×d, labels B) -> scalar``.

    Subclasses implement :meth:`compute_loss` (validated inputs in float32, or float64 when the embeddings are float64
    for reference checks; cast W with ``self.weight.to(x.dtype)``) and :meth:`logits` (the margin-free
    scores used for the batch accuracy and for inference). After each forward, :meth:`statistics` returns what a
    user logs: ``accuracy`` always, and whatever the subclass records with :meth:`_record`.
    """

    #: short citation shown by ``veriloss losses``
    reference: str = ""

    def __init__(self, embedding_dim: int, num_classes: int, bias: bool = False):
        super().__init__()
        embedding_dim = check_int(embedding_dim, "embedding_dim", 1, what="a positive integer")
        num_classes = check_int(num_classes, "num_classes", 2)
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        # Xavier-style init: rows of W have norm ≈ 1 regardless of d, so un-normalized heads start with sane logits.
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(embedding_dim))
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None
        self._stats: dict[str, torch.Tensor] = {}

    @property
    def prototypes(self) -> torch.Tensor:
        """W (K×d), detached, for analysis."""
        return self.weight.detach()

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        device = embeddings.device.type if isinstance(embeddings, torch.Tensor) else "cpu"
        with torch.autocast(device_type=device, enabled=False):  # float32 even under autocast
            bounds = check_batch(
                embeddings,
                labels,
                self.num_classes,
                self.embedding_dim,
                lambda: self._magnitudes(compute_dtype(embeddings)),
            )
            x = compute_dtype(embeddings)
            self._check_magnitudes(bounds, x.dtype)
            loss = self.compute_loss(x, labels)
        return loss

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _magnitudes(self, x: torch.Tensor) -> Mapping[str, torch.Tensor]:
        """Device scalars fetched with the batch check (same host synchronization) for :meth:`_check_magnitudes`:
        none for heads whose loss is finite for any finite input (the cosine heads)."""
        return {}

    def _check_magnitudes(self, values: Mapping[str, float], dtype: torch.dtype) -> None:
        """Raise a ``ValueError`` when inputs of these magnitudes make the loss unrepresentable in ``dtype``."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Margin-free class scores (B×K) used for the batch accuracy; subclasses override."""
        x = compute_dtype(x)
        return cosine(x, self.weight.to(x.dtype))

    # --- statistics -------------------------------------------------------------------------------------------
    def _record(self, **stats: torch.Tensor | float) -> None:
        self._stats.update({k: torch.as_tensor(v).detach() for k, v in stats.items()})

    def _record_accuracy(self, scores: torch.Tensor, y: torch.Tensor) -> None:
        self._record(accuracy=(scores.detach().argmax(dim=1) == y).float().mean())

    def statistics(self) -> dict[str, float]:
        """The statistics of the last batch as plain floats (``accuracy``, and e.g. ``support_size`` for α heads)."""
        return {k: float(v) for k, v in self._stats.items()}

    def extra_repr(self) -> str:
        return f"embedding_dim={self.embedding_dim}, num_classes={self.num_classes}"
