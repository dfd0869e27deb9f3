"""The embedding neck shared by the image backbones: BN → Dropout → flatten → Linear → BN1d."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_in_range
from .base import positive_int

__all__ = ["EmbeddingNeck"]


class EmbeddingNeck(nn.Module):
    """Maps the last feature map (or a flat feature vector) to a ``embedding_dim``-d embedding.

    Structure, as in insightface's IResNet (Deng et al. 2019, ArcFace; arcface_torch ``backbones/iresnet.py``)::

        bn       BatchNorm2d(C)   when in_features = (C, H, W)   (BatchNorm1d(F) when in_features = F)
        dropout  Dropout(p)                                        (identity at p = 0 and in eval mode)
        flatten  B×C×H×W → B×(C·H·W)
        fc       Linear(C·H·W → embedding_dim, bias=True)
        features BatchNorm1d(embedding_dim)

    With ``fixed_scale`` (the default, as in insightface) the scale γ of ``features`` is fixed at 1 and not trained
    (``requires_grad=False``; it is still a parameter, so it is counted and saved); its shift β is trained. The
    output is not L2-normalized: the heads normalize when their formula needs it.
    """

    def __init__(
        self,
        in_features: int | tuple[int, int, int],
        embedding_dim: int,
        dropout: float = 0.0,
        fixed_scale: bool = True,
    ):
        super().__init__()
        if isinstance(in_features, (tuple, list)):
            if len(in_features) != 3:
                raise ValueError(f"in_features must be an int or a (C, H, W) tuple, got {in_features!r}")
            c, h, w = (positive_int(v, "in_features") for v in in_features)
            self.in_features: int | tuple[int, int, int] = (c, h, w)
            self.bn: nn.Module = nn.BatchNorm2d(c)
            flat = c * h * w
        else:
            flat = positive_int(in_features, "in_features")
            self.in_features = flat
            self.bn = nn.BatchNorm1d(flat)
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim")
        p = check_in_range(dropout, "dropout", 0.0, 1.0)
        if p >= 1.0:
            raise ValueError(f"dropout must be < 1, got {dropout!r}")
        self.dropout = nn.Dropout(p)
        self.fc = nn.Linear(flat, self.embedding_dim)
        self.features = nn.BatchNorm1d(self.embedding_dim)
        if fixed_scale:
            nn.init.constant_(self.features.weight, 1.0)
            self.features.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.bn(x))
        return self.features(self.fc(torch.flatten(x, 1)))
