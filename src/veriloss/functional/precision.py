"""The compute dtype of every loss: float64 inputs stay float64 (reference checks, gradcheck), the rest is float32."""

from __future__ import annotations

import torch

__all__ = ["compute_dtype"]


def compute_dtype(x: torch.Tensor) -> torch.Tensor:
    """``x`` in its compute dtype: float64 stays float64; anything else (half precision, bfloat16) is float32.

    >>> compute_dtype(torch.ones(2, dtype=torch.bfloat16)).dtype
    torch.float32
    """
    return x if x.dtype == torch.float64 else x.float()
