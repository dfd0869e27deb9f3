"""Training configuration: YAML file → defaults → ``--set key=value`` overrides, with unknown keys rejected.

Sections with free-form content are validated where they are used: ``data`` by :func:`veriloss.data.build_dataset`,
``model`` by :func:`veriloss.models.create`, ``loss.params`` by the head registry.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but ``1e-3`` (no dot, as people write FARs) is a float, not a string (YAML 1.1 quirk)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse(text: str):
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


__all__ = ["DEFAULTS", "FREE_FORM", "apply_override", "load_config", "merge"]

#: Every key the trainer reads, with its default. ``None`` means "not set".
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda
    "data": {"name": "synthetic"},  # free-form: see veriloss.data.build_dataset
    "model": {"name": "small-cnn"},  # free-form: name + parameters of veriloss.models.create
    "loss": {
        "name": "arcface",
        "params": {},  # parameters of the head (veriloss.heads.create)
        "aux": [],  # auxiliary losses: [{name, weight, params}] from veriloss.pairwise, added by weight
        "reinit": None,  # A3M-I prototype re-initialization: {at: fraction of training} | {epoch: N} | {step: N}
        "margin_warmup_steps": 0,  # ramp the margin from 0 to its value over this many steps
        "init_std": None,  # prototypes drawn from N(0, init_std²) (None: the head's own init, rows of norm ≈ 1)
    },
    "optim": {
        "name": "sgd",  # sgd | adamw | lazy-sgd (sparse prototype gradients of streaming α heads)
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": False,
        "betas": [0.9, 0.999],
        "weight_decay": 5e-4,
        "head_lr_scale": 1.0,  # the head's learning rate is lr × this
        "head_weight_decay": None,  # None: same as weight_decay
    },
    "schedule": {
        "kind": "cosine",  # cosine | step | constant
        "warmup_steps": 100,  # linear warm-up from 0
        "min_lr_scale": 0.0,  # cosine floor as a fraction of lr
        "milestones": [],  # step: fractions of training at which lr is multiplied by gamma
        "gamma": 0.1,
    },
    "epochs": 3,
    "max_steps": None,  # stop after this many steps (None: epochs × steps per epoch)
    "batch_size": 256,  # the global batch (split across processes under torch.distributed)
    "sampler": {"name": "random", "p": None, "k": None},  # random | pk | class-balanced
    "amp": "auto",  # auto (fp16 on CUDA; bf16 on CPUs with native bf16, else none) | bf16 | fp16 | none: backbone only
    "grad_clip": None,  # max global gradient norm
    "num_workers": 0,
    "validate": {"every_epochs": 1, "max_samples": 4000, "far": [1e-3, 1e-4], "batch_size": 512},
    "checkpoint": {"every_steps": 200},
    "log": {"every_steps": 20, "tensorboard": True, "progress": True},
    "skip_bad_batches": False,
}

#: sections whose keys are validated where they are used; merged shallowly
FREE_FORM = {"data", "model", "loss.params"}


def merge(base: dict, update: dict, path: str = "") -> dict:
    """Deep-merge ``update`` into a copy of ``base``; a key missing from ``base`` raises unless free-form."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        where = f"{path}.{key}" if path else key
        if path not in FREE_FORM and key not in out:
            raise ValueError(
                f"unknown config key {where!r}; valid keys{' in ' + path if path else ''}: {', '.join(out)}"
            )
        if where in FREE_FORM:
            if not isinstance(value, dict):
                raise ValueError(f"config section {where!r} must be a mapping, got {value!r}")
            out[key] = {**out.get(key, {}), **copy.deepcopy(value)}
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, where)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(config: dict, assignment: str) -> dict:
    """Apply one ``dotted.key=value`` (value parsed as YAML: numbers, lists, true/false, null)."""
    if "=" not in assignment:
        raise ValueError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"--set expects key=value, got {assignment!r}")
    try:
        value = _parse(raw)
    except yaml.YAMLError as err:
        raise ValueError(f"--set {key}: cannot parse value {raw!r}: {err}") from None
    update: dict = value
    for part in reversed(key.split(".")):
        update = {part: update}
    return merge(config, update)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Defaults, then the YAML file at ``path`` (if any), then each ``key=value`` override in order."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config file {str(path)!r} does not exist")
        try:
            loaded = _parse(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"config file {str(path)!r} is not valid YAML: {err}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"config file {str(path)!r} must hold a mapping at the top level")
        config = merge(config, loaded)
    for assignment in overrides:
        config = apply_override(config, assignment)
    return config
