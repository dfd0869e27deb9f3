"""A trained backbone from a training checkpoint (the file is read safely: see :mod:`veriloss.checkpoint`)."""

from __future__ import annotations

import os

from torch import nn

from ..checkpoint import load_checkpoint
from .registry import create

__all__ = ["load_backbone"]


def load_backbone(checkpoint: str | os.PathLike | dict, map_location: str = "cpu") -> nn.Module:
    """The backbone of a checkpoint (a ``checkpoint.pt``, its run folder, or a state loaded by
    :func:`veriloss.checkpoint.load_checkpoint`), rebuilt from its ``model_args`` with its weights, in eval mode.

    >>> backbone = load_backbone("runs/omniglot_arcface")  # doctest: +SKIP
    """
    state = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint, map_location=map_location)
    if state["model_args"] is None:
        raise ValueError(
            "the checkpoint's backbone is a model of the user's own (trained from objects, not a config): build it "
            "yourself and load load_checkpoint(path)['backbone'] into it"
        )
    backbone = create(**state["model_args"])
    # the trainer converts BatchNorm for torch.distributed; its state dict keys are those of plain BatchNorm
    try:
        backbone.load_state_dict(state["backbone"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"the checkpoint's weights do not fit its model {state['model_args']}: {first}") from None
    return backbone.eval()
