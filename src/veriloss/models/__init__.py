"""Backbones (``create(name, **params)``, ``available()``), trained ones from checkpoints (``load_backbone``) and
ONNX export.

Image backbones take B×C×H×W float input with H = W = ``model.input_size`` and return un-normalized
B×``model.embedding_dim`` embeddings: ``small-cnn`` (28–64 px, CPU-friendly) and ``iresnet18/34/50/100``
(insightface, 112×112 faces), all ending in :class:`EmbeddingNeck` (BN → Dropout → FC → BN1d).
"""

from . import iresnet, small_cnn  # noqa: F401  (registers the models)
from .base import ImageBackbone
from .export import check_onnx, export_onnx
from .iresnet import IBasicBlock, IResNet
from .neck import EmbeddingNeck
from .pretrained import load_backbone
from .registry import aliases, available, create, describe, register
from .small_cnn import SmallCNN
from .speaker import ECAPATDNN, ResNetSpeaker  # registers ecapa-tdnn, resnet34-speaker

__all__ = [
    "ECAPATDNN",
    "EmbeddingNeck",
    "IBasicBlock",
    "IResNet",
    "ImageBackbone",
    "ResNetSpeaker",
    "SmallCNN",
    "aliases",
    "available",
    "check_onnx",
    "create",
    "describe",
    "export_onnx",
    "load_backbone",
    "register",
]
