"""The contract every image backbone keeps: B×C×H×W float input with H = W = ``input_size``, B×d output."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ImageBackbone", "positive_int"]


def positive_int(value: object, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` ≥ ``minimum`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return value


class ImageBackbone(nn.Module):
    """Base of the image backbones: holds ``in_channels``, ``input_size`` and ``embedding_dim`` and checks inputs.

    ``forward(x)`` takes a float tensor of shape ``(batch, in_channels, input_size, input_size)`` and returns
    un-normalized embeddings of shape ``(batch, embedding_dim)``; subclasses implement :meth:`embed`.
    """

    def __init__(self, in_channels: int, input_size: int, embedding_dim: int, min_input_size: int = 1):
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.input_size = positive_int(input_size, "input_size", min_input_size)
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one sample."""
        return (self.in_channels, self.input_size, self.input_size)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` naming the expected shape unless ``x`` is a float B×C×H×W batch of the right size."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if torch.jit.is_tracing():  # shapes are fixed by the example input during ONNX/TorchScript tracing
            return
        c, s = self.in_channels, self.input_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, s, s) or x.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (batch, {c}, {s}, {s}) with batch ≥ 1, "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"input must be a floating-point tensor, got dtype {x.dtype}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.embed(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
