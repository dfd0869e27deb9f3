"""Training: config (YAML + overrides), the trainer, its callbacks, optimizers and schedules, torch.distributed."""

from ..checkpoint import load_checkpoint, save_atomic
from .callbacks import Callback
from .config import DEFAULTS, load_config
from .trainer import Trainer

__all__ = ["DEFAULTS", "Callback", "Trainer", "load_checkpoint", "load_config", "save_atomic"]
