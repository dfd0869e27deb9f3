"""A small 4-block CNN for 28–64 px grey-scale or colour images (Omniglot-style); trains fast on CPU."""

from __future__ import annotations

import torch
from torch import nn

from .base import ImageBackbone, positive_int
from .neck import EmbeddingNeck
from .registry import register

__all__ = ["SmallCNN"]


class SmallCNN(ImageBackbone):
    """Four conv blocks then the BN → Dropout → FC → BN1d neck (the Omniglot few-shot CNN of Vinyals et al. 2016).

    Structure for an ``input_size`` s (w = ``width``)::

        block k = 1..3   Conv2d(3×3, w, padding 1, no bias) → BatchNorm2d(w) → ReLU → MaxPool2d(2)   (floor)
        block 4          Conv2d(3×3, w, padding 1, no bias) → BatchNorm2d(w) → ReLU                   (no pool)
        map              m×m with m = ⌊s/8⌋; when m > 4 an AdaptiveAvgPool2d(4) brings it to 4×4, so the
                         flattened size stays ≤ 16·w (28–39 px: m = 3 or 4; 40–64 px and beyond: 4×4)
        neck             :class:`EmbeddingNeck` ((w, m', m') → embedding_dim): BN2d → Dropout → FC → BN1d

    At 28 px with w = 64 and 128-d embeddings the map is 3×3 (576 features) and the model has 185,920 parameters
    (185,792 of the measured Omniglot baseline plus the 128 of the neck's BatchNorm2d). Conv layers have no bias
    because a BatchNorm follows each.
    """

    reference = "Vinyals et al. 2016 (Matching Networks), Omniglot CNN; neck as in Deng et al. 2019 (ArcFace)"

    #: largest side of the last feature map before the neck; larger maps are average-pooled down to it
    max_map_size = 4

    def __init__(
        self,
        in_channels: int = 1,
        embedding_dim: int = 128,
        width: int = 64,
        input_size: int = 28,
        dropout: float = 0.0,
    ):
        super().__init__(in_channels, input_size, embedding_dim, min_input_size=8)
        self.width = positive_int(width, "width")
        blocks: list[nn.Module] = []
        c = self.in_channels
        for k in range(4):
            blocks += [
                nn.Conv2d(c, self.width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(self.width),
                nn.ReLU(inplace=True),
            ]
            if k < 3:
                blocks.append(nn.MaxPool2d(2))
            c = self.width
        self.body = nn.Sequential(*blocks)
        m = self.input_size // 8
        if m > self.max_map_size:
            self.pool: nn.Module = nn.AdaptiveAvgPool2d(self.max_map_size)
            m = self.max_map_size
        else:
            self.pool = nn.Identity()
        self.map_size = m
        self.neck = EmbeddingNeck((self.width, m, m), self.embedding_dim, dropout)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.pool(self.body(x)))


register("small-cnn", SmallCNN)
