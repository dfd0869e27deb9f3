"""Training: config (YAML + overrides), the trainer, checkpoints, callbacks, torch.distributed helpers."""

from ..checkpoint import load_checkpoint, save_atomic
from .config import DEFAULTS, load_config
from .trainer import Trainer, build_loss, embed, main_head

__all__ = ["DEFAULTS", "Trainer", "build_loss", "embed", "load_checkpoint", "load_config", "main_head", "save_atomic"]
