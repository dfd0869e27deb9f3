"""Input validation shared by every loss: fail early with a message that names the argument and the fix."""

from __future__ import annotations

import math

import torch

__all__ = [
    "check_batch",
    "check_embeddings",
    "check_finite_tensor",
    "check_in_range",
    "check_labels",
    "check_positive",
]


def check_embeddings(x: torch.Tensor, name: str = "embeddings", dim: int | None = None) -> None:
    """``x`` must be a non-empty, finite, floating-point B×d tensor (d == ``dim`` when given)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (batch, dim), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)}); pass at least one sample")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} features per row, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    check_finite_tensor(x, name)


def check_finite_tensor(x: torch.Tensor, name: str) -> None:
    """Raise if ``x`` holds NaN or ±inf (one reduction over ``x``)."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf); check the inputs upstream")


def check_labels(y: torch.Tensor, batch: int, num_classes: int | None = None, name: str = "labels") -> None:
    """``y`` must be a 1-D integer tensor of length ``batch`` with values in [0, num_classes)."""
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() != 1:
        raise ValueError(f"{name} must be 1-D (batch,), got shape {tuple(y.shape)}")
    if y.shape[0] != batch:
        raise ValueError(f"{name} has {y.shape[0]} entries but the batch has {batch} rows")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor (class indices), got dtype {y.dtype}")
    if batch == 0:
        raise ValueError(f"{name} is empty; pass at least one sample")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0:
        raise ValueError(f"{name} must be non-negative class indices, got minimum {lo}")
    if num_classes is not None and hi >= num_classes:
        raise ValueError(f"{name} must be < num_classes={num_classes}, got maximum {hi}")


def check_batch(x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None, dim: int | None = None) -> None:
    """Validate a batch of embeddings (B×d) and labels (B,) together."""
    check_embeddings(x, "embeddings", dim)
    check_labels(y, x.shape[0], num_classes)


def check_positive(value: float, name: str, strict: bool = True) -> float:
    """A finite real > 0 (or ≥ 0 when ``strict`` is False)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v) or (v <= 0 if strict else v < 0):
        raise ValueError(f"{name} must be {'>' if strict else '≥'} 0 and finite, got {value!r}")
    return v


def check_in_range(value: float, name: str, lo: float, hi: float) -> float:
    """A finite real in the closed interval [lo, hi]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return v
