"""IResNet-18/34/50/100: insightface's improved ResNet for 112×112 face crops (ArcFace)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import ImageBackbone, positive_int
from .neck import EmbeddingNeck
from .registry import register

__all__ = ["IBasicBlock", "IResNet", "feature_map_size"]

#: blocks per stage of the registered depths (insightface arcface_torch ``backbones/iresnet.py``)
LAYERS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}
WIDTHS = (64, 128, 256, 512)


def feature_map_size(input_size: int, stages: int = 4) -> int:
    """Side of the last feature map: each stride-2 3×3 conv (padding 1) maps s to ⌈s/2⌉; 112 → 56 → 28 → 14 → 7."""
    s = input_size
    for _ in range(stages):
        s = (s + 1) // 2
    return s


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation-style residual block of IResNet (Duta et al. 2020; insightface).

    ``out = BN3(conv3×3_stride(PReLU(BN2(conv3×3(BN1(x)))))) + shortcut(x)`` where the shortcut is the identity, or
    ``BN(conv1×1_stride(x))`` when the stride or the width changes. There is no activation after the addition.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(ImageBackbone):
    """IResNet backbone with the BN → Dropout → FC → BN1d neck (Deng et al. 2019, ArcFace; Duta et al. 2020).

    Structure (facts from insightface ``recognition/arcface_torch/backbones/iresnet.py``)::

        stem     Conv2d(3×3, 64, stride 1, no bias) → BatchNorm2d(64) → PReLU(64)
        stage k  ``layers[k]`` :class:`IBasicBlock` of width 64, 128, 256, 512; the first block of every stage has
                 stride 2 and a Conv1×1(stride 2) + BN shortcut
        neck     :class:`EmbeddingNeck` (512·m·m → embedding_dim): BN2d(512) → Dropout → flatten → FC → BN1d,
                 the BN1d scale fixed at 1 (not trained), its shift trained

    ``input_size`` 112 gives the 7×7 map (m = ⌈s/16⌉ in general, see :func:`feature_map_size`), so other sizes work
    (the FC input grows or shrinks with m²). Initialization: conv weights He-normal (fan-out, ReLU gain; He et al.
    2015, as torchvision's ResNet), BatchNorm γ = 1, β = 0, PReLU slope 0.25, Linear with PyTorch's default. This
    departs from insightface's N(0, 0.1²) conv init on purpose: with it, an untrained model in eval mode (running
    statistics still 0/1) amplifies its input by ~10⁷ (iresnet18) up to float32 overflow and NaN (iresnet100); with
    He-normal the outputs stay finite. Training is unaffected in kind: a BatchNorm follows every conv, so the conv
    scale only sets the early effective learning rate. ``zero_init_residual`` zeroes γ of each block's ``bn2`` as
    insightface does (torchvision zeroes the last BN instead); either makes every residual branch output 0 at the
    start, so each block starts as its shortcut. Module names (``conv1``, ``bn1``, ``prelu``, ``layer1..4``)
    follow insightface; its ``bn2``, ``fc``, ``features`` are ``neck.bn``, ``neck.fc``, ``neck.features`` here.
    """

    reference = "Deng et al. 2019 (ArcFace), insightface IResNet; Duta et al. 2020 (Improved Residual Networks)"

    def __init__(
        self,
        layers: Sequence[int],
        in_channels: int = 3,
        embedding_dim: int = 512,
        input_size: int = 112,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
    ):
        super().__init__(in_channels, input_size, embedding_dim)
        if len(layers) != 4:
            raise ValueError(f"layers must give the number of blocks of the 4 stages, got {layers!r}")
        self.layers = tuple(positive_int(n, "layers") for n in layers)
        self.conv1 = _conv3x3(self.in_channels, WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.prelu = nn.PReLU(WIDTHS[0])
        inplanes = WIDTHS[0]
        for k, (planes, n) in enumerate(zip(WIDTHS, self.layers), start=1):
            blocks = [IBasicBlock(inplanes, planes, stride=2)]
            blocks += [IBasicBlock(planes, planes) for _ in range(n - 1)]
            self.add_module(f"layer{k}", nn.Sequential(*blocks))
            inplanes = planes
        self.map_size = feature_map_size(self.input_size)
        self.neck = EmbeddingNeck((WIDTHS[-1], self.map_size, self.map_size), self.embedding_dim, dropout)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, IBasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.neck(x)


for _name, _layers in LAYERS.items():
    register(_name, IResNet, layers=_layers)
