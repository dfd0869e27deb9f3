"""What a whole config builds: the data, the backbone and the loss, checked step by step before the costly ones.

:func:`build_from_config` gives the keyword arguments of :class:`veriloss.train.Trainer` (its objects); the trainer's
``from_config`` uses it, so a config and a user's own objects run the same loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import Dataset

from .. import models
from ..data import build_dataset, verify_dataset
from ..data.audio import embedding_chunks
from ..losses import from_config as build_loss
from ..losses import main_head

__all__ = ["build_from_config", "check_sections", "evaluation_chunks", "evaluation_split"]


def check_sections(config: dict) -> None:
    """Check the sections the config schema leaves to their registries, before any data is read: the model's
    parameters (built on the meta device; for real where construction computes, as the speaker front-ends do) and
    the loss with its parameters and auxiliary terms (on 8 dimensions and 4 classes)."""
    model_cfg = dict(config["model"])
    name = model_cfg.pop("name", None)
    if not name:
        raise ValueError("model.name is required; available: " + ", ".join(models.available()))
    try:
        with torch.device("meta"):
            models.create(name, **model_cfg)
    except RuntimeError:  # pragma: no cover - depends on the model: one that computes while it is built
        models.create(name, **model_cfg)
    loss = main_head(build_loss(config["loss"], 8, 4))
    if getattr(loss, "sparse_gradients", False) and config["optim"]["name"] != "lazy-sgd":
        raise ValueError(
            "a streaming head (loss.params.chunk_size) gives sparse prototype gradients: use optim.name: lazy-sgd"
        )


def evaluation_chunks(data: dict, test_set: Dataset) -> tuple[int, int] | None:
    """The test-time chunks (samples) a config's ``data.chunk_seconds``/``chunk_hop`` ask for (None: whole items)."""
    if data.get("chunk_seconds") is None:
        return None
    return embedding_chunks(test_set.sample_rate, data["chunk_seconds"], data.get("chunk_hop"))


def evaluation_split(config: dict) -> str:
    """The split a config's evaluations score: ``validate.split`` ("test", or "validation": the identities the data
    section holds out of training); configs from before the key existed evaluate on "test"."""
    return str(config.get("validate", {}).get("split", "test"))


def build_from_config(config: dict, log: Callable[[str], None]) -> dict:
    """The trainer's objects for a validated config: ``model``, ``loss``, ``train_set``, ``test_set`` and what the
    loop needs to know of them (``reinit_set``, ``test_chunks``, ``names``, ``model_args``). The model and loss
    sections are built on toy sizes first, so a typo fails before any data is read; every sample's header is
    checked before training (with ``data.skip_corrupt``, unreadable ones are dropped and logged). ``test_set`` is the
    split ``validate.split`` names (:func:`evaluation_split`)."""
    check_sections(config)
    torch.manual_seed(int(config["seed"]))
    train_set = build_dataset(config["data"], "train")
    test_set = build_dataset(config["data"], evaluation_split(config))
    for dataset in (train_set, test_set):
        for message in verify_dataset(dataset):
            log(f"skipped: {message}")
    model_cfg = dict(config["model"])
    name = model_cfg.pop("name")
    model_cfg.setdefault("in_channels", train_set.channels)
    model_cfg.setdefault("input_size", train_set.image_size)
    backbone = models.create(name, **model_cfg)
    loss = build_loss(config["loss"], backbone.embedding_dim, train_set.num_classes)
    plain = {**config["data"], "augment": False}
    return {
        "model": backbone,
        "loss": loss,
        "train_set": train_set,
        "test_set": test_set,
        "reinit_set": lambda: build_dataset(plain, "train"),
        "test_chunks": evaluation_chunks(config["data"], test_set),
        "names": (config["loss"]["name"], config["data"]["name"]),
        "model_args": {"name": name, **model_cfg},
    }
