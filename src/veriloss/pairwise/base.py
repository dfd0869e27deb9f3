"""The base of every pair, triplet and centre loss, and the in-batch pair geometry they share."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .._checks import check_batch, check_batch_structure, exponent_limit, validating
from ..functional.normalize import l2_norm, mul_pow2, pow2_scale
from ..functional.precision import compute_dtype
from ..functional.reduction import check_reduction, reduce_loss

__all__ = [
    "PairwiseLoss",
    "check_norm_limit",
    "check_pair_batch",
    "masked_mean",
    "max_row_norm",
    "pair_distances",
    "pair_masks",
    "safe_sqrt",
    "squared_distances",
    "triplet_mask",
]

_SAMPLER_HINT = (
    "pair and triplet losses need at least two identities and at least one identity with two or more samples "
    "per batch: build batches with veriloss.data.PKSampler (P identities × K samples each)"
)


def _pair_composition(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Device flags: the batch holds two identities; some identity has two samples (read with the batch check)."""
    ordered = labels.detach().sort().values
    same = ordered[1:] == ordered[:-1]
    return {"_two_identities": (~same).any(), "_positive_pair": same.any()}


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


def _scaled_squared_distances(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(D_s, k)`` with ``‖x_i − x_j‖² = D_s[i, j] · 4^-k``: the Gram-matrix distances of ``x·2^k``, k (0-d int, no
    gradient) putting the max-abs of x in [½, 1) (exact scaling: no overflow or underflow in the squares)."""
    xs, k = pow2_scale(x, dim=None)
    sq = (xs * xs).sum(dim=1)
    d = (sq[:, None] + sq[None, :] - 2.0 * (xs @ xs.t())).clamp_min(0.0)
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    return d.masked_fill(eye, 0.0), k


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """``D_ij = ‖x_i − x_j‖²`` for all rows (B×B), via the Gram matrix, clamped at 0, with an exact zero diagonal.

    Computed on ``x`` scaled by an exact power of two (bitwise the plain Gram formula in the normal range): a value
    over- or underflows only if the squared distance itself is out of the dtype's range."""
    d, k = _scaled_squared_distances(x)
    return mul_pow2(d, -2 * k)


def pair_distances(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(D², D)``: :func:`squared_distances` and the distances ``√D²`` (gradient 0 at zero distance), the latter
    from the scaled squares, so exact also where ``D²`` itself under- or overflows."""
    d, k = _scaled_squared_distances(x)
    return mul_pow2(d, -2 * k), mul_pow2(safe_sqrt(d), -k)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` where ``mask`` is set (NaN where it is empty), as a device scalar (no host read)."""
    return values.masked_fill(~mask, 0.0).sum() / mask.sum()


def max_row_norm(x: torch.Tensor) -> torch.Tensor:
    """The largest ``‖x_i‖`` (a device scalar, computed without overflow)."""
    return l2_norm(x.detach(), dim=1).amax()


def check_norm_limit(loss: str, what: str, value: float, octaves: int, dtype: torch.dtype, fix: str) -> None:
    """Raise unless ``value`` (a norm) ≤ ``2^((E − 3) / octaves)``, E the dtype's largest exponent (127): the bound
    under which a loss that grows as the norm to the power ``octaves`` (2: squared distances) stays representable."""
    limit = 2.0 ** ((exponent_limit(dtype) - 3) // octaves)
    if not value <= limit:
        raise ValueError(
            f"{loss}: {what} up to {value:.3g} exceed {limit:.3g}, beyond which the loss (power {octaves} of the"
            f" norm) cannot be represented in {dtype}; {fix}"
        )


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
    """A loss on a batch without prototypes: ``loss(embeddings B×d, labels B)`` → the loss, reduced by
    ``reduction`` ("mean" default, "sum", or "none": the per-sample losses, shape (B,), whose mean is the loss).

    Subclasses implement :meth:`compute_loss` (validated embeddings in float32, float64 kept for reference checks;
    int64 labels) returning each sample's share of the loss. Pair and triplet losses (``requires_pairs = True``)
    reject batches without two identities and a positive pair. After each forward, :meth:`statistics` returns what
    the subclass recorded with :meth:`_record` (device tensors until then).
    """

    #: short citation shown by ``veriloss losses``
    reference: str = ""
    #: whether the batch must hold two identities and a positive pair
    requires_pairs: bool = True
    #: set by subclasses that know them (validated in :meth:`forward`)
    embedding_dim: int | None = None
    num_classes: int | None = None

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self._stats: dict[str, torch.Tensor] = {}

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        device = embeddings.device.type if isinstance(embeddings, torch.Tensor) else "cpu"
        with torch.autocast(device_type=device, enabled=False):
            checked = validating()
            if checked:
                values = check_batch(
                    embeddings,
                    labels,
                    self.num_classes,
                    self.embedding_dim,
                    lambda: self._values(compute_dtype(embeddings), labels),
                )
            else:
                check_batch_structure(embeddings, labels, self.embedding_dim)
            x = compute_dtype(embeddings)
            if checked:
                if self.requires_pairs and not (values.pop("_two_identities") and values.pop("_positive_pair")):
                    check_pair_batch(labels)  # raises, with the counts
                self._check_magnitudes(values, x.dtype)
            per_sample = self.compute_loss(x, labels.long())
        return reduce_loss(per_sample, self.reduction)

    def _values(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        out = dict(self._magnitudes(x))
        if self.requires_pairs:
            out.update(_pair_composition(labels))
        return out

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Each sample's share of the loss (B,), their mean being the loss."""
        raise NotImplementedError

    def _magnitudes(self, x: torch.Tensor) -> Mapping[str, torch.Tensor]:
        """Device scalars fetched with the batch check (same host synchronization) for :meth:`_check_magnitudes`:
        none for losses on normalized embeddings (finite for any finite input)."""
        return {}

    def _check_magnitudes(self, values: Mapping[str, float], dtype: torch.dtype) -> None:
        """Raise a ``ValueError`` when inputs of these magnitudes make the loss unrepresentable in ``dtype``."""

    def _record(self, **stats: torch.Tensor | float) -> None:
        self._stats.update({k: torch.as_tensor(v).detach() for k, v in stats.items()})

    def statistics(self, as_tensors: bool = False) -> dict[str, float] | dict[str, torch.Tensor]:
        """The statistics of the last batch as plain floats (e.g. ``active_fraction`` of the triplets).
        ``as_tensors``: the detached 0-dim tensors where they were computed (no host synchronization)."""
        if as_tensors:
            return dict(self._stats)
        return {k: float(v) for k, v in self._stats.items()}

    def extra_repr(self) -> str:
        return self._with_reduction("")

    def _with_reduction(self, text: str) -> str:
        """``text`` (the subclass's settings) and the reduction when it is not the default."""
        if self.reduction == "mean":
            return text
        return f"{text}, reduction={self.reduction!r}" if text else f"reduction={self.reduction!r}"
