"""The base of every prototype head: owns and initializes W (K×d), validates the batch once, computes per sample in
float32, reduces, keeps statistics, and says what it can do (capabilities the trainer reads instead of types)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from .._checks import check_batch, check_batch_structure, check_int, check_positive, validating
from ..functional.normalize import cosine_matrix
from ..functional.precision import compute_dtype
from ..functional.reduction import check_reduction, reduce_loss

__all__ = ["COSINE_INIT_STD", "Head", "cosine"]

#: the default prototype init of the normalized (cosine) heads: N(0, 0.01²), as insightface
COSINE_INIT_STD = 0.01


def cosine(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``cos θ_j = x̂·Ŵ_j`` for every row of ``x`` and every prototype, clamped to [−1, 1]: scale-invariant for any
    finite rows (:func:`veriloss.functional.cosine_matrix`); a zero row gives cosines 0."""
    return cosine_matrix(x, weight)


class Head(nn.Module):
    """A prototype loss: ``head(embeddings B×d, labels B)`` → the loss, reduced by ``reduction`` ("mean" default,
    "sum", or "none": the per-sample losses, shape (B,)).

    Subclasses implement :meth:`compute_loss` (validated inputs in float32, or float64 when the embeddings are float64
    for reference checks; per-sample losses (B,); cast W with ``self.weight.to(x.dtype)``) and :meth:`logits` (the
    margin-free scores used for the batch accuracy and for inference). After each forward, :meth:`statistics` returns
    what a user logs: ``accuracy`` always, and whatever the subclass records with :meth:`_record` (device tensors:
    no host synchronization until :meth:`statistics`).

    Initialization: W ~ N(0, init_std²). ``init_std=None`` is the head's default: 0.01 for heads whose logits see
    only the direction of each prototype (``normalized_prototypes``), as insightface: the gradient of ``W/‖W‖``
    scales as ``1/‖W‖``, so small rows learn their direction fast; ``1/√d`` (rows of norm ≈ 1, sane logits) for the
    others.
    """

    #: short citation shown by ``veriloss losses``
    reference: str = ""
    #: whether the logits see only the direction of each prototype (cosine heads): sets the default init
    normalized_prototypes: bool = True
    #: attributes holding additive margins, ramped by :meth:`ramp_margin` (empty: the head has no margin)
    margin_attributes: tuple[str, ...] = ()
    #: whether :meth:`reinitialize_prototypes` exists (A3M-I)
    can_reinitialize: bool = False
    #: whether W is split over torch.distributed processes: this process holds rows ``shard_start`` onwards, and
    #: ``shard`` (a :class:`veriloss.heads.alpha.Shard`) says how (the α heads, ``sharded=True``)
    sharded: bool = False
    shard_start: int = 0

    def __init__(
        self,
        embedding_dim: int,
        num_classes: int,
        bias: bool = False,
        *,
        init_std: float | None = None,
        reduction: str = "mean",
    ):
        super().__init__()
        embedding_dim = check_int(embedding_dim, "embedding_dim", 1, what="a positive integer")
        num_classes = check_int(num_classes, "num_classes", 2)
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.reduction = check_reduction(reduction)
        self.init_std = None if init_std is None else check_positive(init_std, "init_std")
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_dim))
        self.bias = nn.Parameter(torch.zeros(num_classes)) if bias else None
        self._stats: dict[str, torch.Tensor] = {}
        self.reset_parameters()

    @property
    def prototype_std(self) -> float:
        """The standard deviation W is drawn with: ``init_std``, or the head's default (see the class docstring)."""
        if self.init_std is not None:
            return self.init_std
        return COSINE_INIT_STD if self.normalized_prototypes else 1.0 / math.sqrt(self.embedding_dim)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draw W from N(0, prototype_std²): the whole K×d matrix from the global generator, of which a sharded head
        keeps its rows (so every world size starts from the same prototypes under the same seed)."""
        w = self.weight
        full = torch.empty(self.num_classes, self.embedding_dim, dtype=w.dtype, device=w.device)
        full.normal_(0.0, self.prototype_std)
        w.copy_(full[self.shard_start : self.shard_start + w.shape[0]])

    @property
    def prototypes(self) -> torch.Tensor:
        """W (K×d), detached, for analysis."""
        return self.weight.detach()

    @property
    def has_margin(self) -> bool:
        """Whether the head has a margin that :meth:`ramp_margin` can ramp (the trainer's margin warm-up)."""
        return bool(self.margin_attributes)

    @property
    def sparse_gradients(self) -> bool:
        """Whether W receives sparse (COO) gradients: train it with an optimizer that accepts them (lazy-sgd)."""
        return False

    def ramp_margin(self, fraction: float) -> None:
        """Set the margin to ``fraction`` of its value at the first call (its configured value): 0 is no margin,
        1 the margin as built. Additive margins scale linearly."""
        for name, value in self._configured_margins().items():
            setattr(self, name, value * fraction)

    def _configured_margins(self) -> dict[str, float]:
        if not self.has_margin:
            raise ValueError(f"the {type(self).__name__} head has no margin to ramp")
        if "_margins" not in self.__dict__:
            self._margins = {name: getattr(self, name) for name in self.margin_attributes}
        return self._margins

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        device = embeddings.device.type if isinstance(embeddings, torch.Tensor) else "cpu"
        with torch.autocast(device_type=device, enabled=False):  # float32 even under autocast
            checked = validating()
            if checked:
                bounds = check_batch(
                    embeddings,
                    labels,
                    self.num_classes,
                    self.embedding_dim,
                    lambda: self._magnitudes(compute_dtype(embeddings)),
                )
            else:
                check_batch_structure(embeddings, labels, self.embedding_dim)
            x = compute_dtype(embeddings)
            if checked:
                self._check_magnitudes(bounds, x.dtype)
            per_sample = self.compute_loss(x, labels.long())
        return reduce_loss(per_sample, self.reduction)

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The per-sample losses (B,) of a validated batch."""
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

    def statistics(self, as_tensors: bool = False) -> dict[str, float] | dict[str, torch.Tensor]:
        """The statistics of the last batch as plain floats (``accuracy``, and e.g. ``support_size`` for α heads).
        ``as_tensors``: the detached 0-dim tensors where they were computed (no host synchronization)."""
        if as_tensors:
            return dict(self._stats)
        return {k: float(v) for k, v in self._stats.items()}

    def extra_repr(self) -> str:
        extra = "" if self.reduction == "mean" else f", reduction={self.reduction!r}"
        return f"embedding_dim={self.embedding_dim}, num_classes={self.num_classes}{extra}"
