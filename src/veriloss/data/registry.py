"""Datasets by name: a config's ``data`` section ``{name, key: value, …}`` → ``builder(split, **keys)``.

A builder is a function or a class whose first parameter is ``split`` ("train" or "test", and "validation" for
datasets with a ``validation_*`` key, :data:`VALIDATION_KEYS`) and whose keyword
parameters are the dataset's config keys, with their defaults (no default: required) and type annotations (checked
by :func:`check_dataset_config` before anything is built, see :mod:`veriloss.data._params`); it returns a dataset
as the package docstring describes (``labels``, ``num_classes``, ``channels``, ``image_size``). Range checks and
paths are the builder's (raising ``ValueError`` naming ``data.<key>``).

>>> from torch.utils.data import TensorDataset
>>> def tiny(split: str, *, size: int = 4) -> TensorDataset: ...
>>> register_dataset("tiny", tiny)  # doctest: +ELLIPSIS
<function tiny ...>
>>> check_dataset_config({"name": "tiny", "size": "4"})
Traceback (most recent call last):
ValueError: data.size must be an integer, got '4'
>>> unregister_dataset("tiny")
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

from torch.utils.data import Dataset

from .._params import closest, expected, hints, is_path, keyword_problems
from ..registry import Registry

__all__ = [
    "SPLITS",
    "VALIDATION_KEYS",
    "build_dataset",
    "check_dataset_config",
    "datasets_available",
    "describe_dataset",
    "register_dataset",
    "unregister_dataset",
    "validation_key",
    "with_data_root",
]

_DATASETS = Registry("dataset", positional=("split",))
DEFAULT_NAME = "synthetic"  # the dataset of a data section without a name

#: the splits :func:`build_dataset` builds
SPLITS = ("train", "test", "validation")

#: builder keys that hold identities out of the training split as a validation split (the first one a builder has
#: is its key; 0, the default, means no validation split): "validation" builds those identities, "train" the rest
VALIDATION_KEYS = ("validation_identities", "validation_alphabets", "validation_speakers")


def register_dataset(name: str, builder: Callable[..., Dataset], aliases: Sequence[str] = ()) -> Callable[..., Dataset]:
    """Make ``builder(split, **keys)`` the dataset ``name`` (case-insensitive; ``aliases`` other spellings) that a
    config's ``data: {name: …}`` selects; returns ``builder``. ``ValueError`` if the name is taken or the builder's
    signature cannot serve as config keys (no first parameter ``split``, a ``**kwargs``, a key called ``name``)."""
    if not callable(builder):
        raise ValueError(f"dataset {name!r}: builder must be a function or a class, got {type(builder).__name__}")
    params = list(inspect.signature(builder).parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].name != "split" or params[0].kind not in positional:
        raise ValueError(f"dataset {name!r}: the builder's first parameter must be split ('train' or 'test')")
    keys = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    bad = [p.name for p in params[1:] if p.kind not in keys or p.name == "name"]
    if bad:
        raise ValueError(
            f"dataset {name!r}: builder parameter(s) {', '.join(bad)} cannot be config keys; list every key as a "
            "keyword parameter with its default (no *args, **kwargs or positional-only parameters; 'name' is taken)"
        )
    return _DATASETS.register(name, builder, aliases=tuple(aliases))


def unregister_dataset(name: str) -> None:
    """Remove the dataset ``name`` and its aliases (plugins and tests that register temporary datasets)."""
    _DATASETS.unregister(name)


def datasets_available() -> list[str]:
    """The registered dataset names in registration order (the packaged image datasets, the audio ones, then
    those registered later)."""
    return _DATASETS.names()


def describe_dataset(name: str) -> dict[str, Any]:
    """Name, aliases, ``keys`` (config keys, ``name`` first), ``parameters`` (key → default; None when required),
    ``required``, ``types`` (key → what it accepts, in words), ``summary`` (the builder's first paragraph)."""
    info = _DATASETS.describe(name)
    types_ = hints(_DATASETS.spec(name).cls)
    info["keys"] = ["name", *info["parameters"]]
    info["types"] = {k: expected(types_[k]) if k in types_ else "any value" for k in info["parameters"]}
    return info


def _spec(config: dict[str, Any], where: str):
    name = config.get("name", DEFAULT_NAME)
    names = datasets_available()
    if not isinstance(name, str):
        raise ValueError(
            f"{where}.name must be a dataset name (a string), got {name!r}; valid names: {', '.join(names)}"
        )
    try:
        return _DATASETS.spec(name)
    except ValueError:
        hint = closest(name.lower(), names + list(_DATASETS.aliases()))
        raise ValueError(
            f"{where}.name {name!r} is unknown; valid names: {', '.join(names)}{hint}; "
            "a dataset of your own: veriloss.data.register_dataset"
        ) from None


def with_data_root(config: dict[str, Any], data_root: str | os.PathLike | None) -> dict[str, Any]:
    """``config`` (a ``data`` section) with every relative path key (those its builder annotates as a path: ``root``,
    ``train_root``, ``test_list``, …) taken from ``data_root`` (None: left as they are, relative to the current
    folder). ``~`` is expanded first; absolute paths are kept.

    >>> with_data_root({"name": "omniglot", "root": "omniglot"}, "/data")["root"]
    '/data/omniglot'
    """
    if data_root is None or not isinstance(config, dict):
        return config
    spec = _spec(config, "data")
    types_ = hints(spec.cls)
    out = dict(config)
    for key, value in config.items():
        if key in types_ and is_path(types_[key]) and isinstance(value, str | os.PathLike):
            path = os.path.expanduser(os.fspath(value))
            out[key] = path if os.path.isabs(path) else os.path.join(os.fspath(data_root), path)
    return out


def validation_key(config: dict[str, Any]) -> str | None:
    """The key of a ``data`` section's dataset that defines its validation split (``validation_alphabets`` for
    omniglot, ``validation_speakers`` for speechocean, ``validation_identities`` for synthetic), or None when the
    dataset has none.

    >>> validation_key({"name": "omniglot", "root": "x"})
    'validation_alphabets'
    """
    params = _spec(config, "data").parameters()
    return next((k for k in VALIDATION_KEYS if k in params), None)


def check_dataset_config(config: dict[str, Any], where: str = "data") -> None:
    """Check a ``data`` section without building anything or touching the disk: the name is registered (default
    "synthetic"), every key is one of its builder's, none it requires is missing, every value has the type its
    annotation allows (bools are not ints; ints are numbers). One ``ValueError`` with a line per problem, naming
    ``<where>.<key>``, the value, the expected type and the valid choices.

    >>> check_dataset_config({"name": "omniglot", "root": "omniglot", "augment": "yes"})
    Traceback (most recent call last):
    ValueError: data.augment must be true or false, got 'yes'
    """
    if not isinstance(config, dict):
        raise ValueError(f"{where} must be a mapping (name: a dataset, then its keys), got {type(config).__name__}")
    spec = _spec(config, where)
    values = {k: v for k, v in config.items() if k != "name"}
    problems = keyword_problems(values, spec.parameters(), hints(spec.cls), where, repr(spec.name))
    if problems:
        raise ValueError("\n".join(problems))


def build_dataset(config: dict[str, Any], split: str) -> Dataset:
    """Build the ``split`` ("train", "test" or "validation") dataset of a training config's ``data`` section (a
    plain dict): :func:`check_dataset_config`, then the builder registered as ``config["name"]`` (default
    "synthetic") with the other keys. The packaged datasets and their keys: :mod:`veriloss.data.builders` (images) and
    :mod:`veriloss.data.audio.builders`; :func:`describe_dataset` lists any dataset's keys and defaults.

    Raises ``ValueError`` for an unknown name or key (listing the valid ones), a value of the wrong type or range, a
    missing root, zip or file (naming the path and what was expected), or a split other than train/test/validation.
    "validation" needs a dataset with a validation key (:func:`validation_key`) set above 0: those identities are
    held out of "train" (which keeps the rest) and form the validation split; "test" is unchanged by it.

    >>> build_dataset({"name": "synthetic", "train_identities": 3, "samples_per_identity": 2}, "train").num_classes
    3
    """
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict (the data section of a training config), got {type(config).__name__}")
    if split not in SPLITS:
        raise ValueError(f"split must be 'train', 'test' or 'validation', got {split!r}")
    check_dataset_config(config)
    spec = _spec(config, "data")
    if split == "validation":
        key = validation_key(config)
        if key is None:
            with_key = [n for n in datasets_available() if validation_key({"name": n}) is not None]
            raise ValueError(
                f"dataset {spec.name!r} has no validation split (no data.validation_* key); datasets with one: "
                f"{', '.join(with_key)}; or evaluate on the test split (validate.split: test)"
            )
        if not config.get(key, spec.parameters().get(key)):
            raise ValueError(
                f"data.{key} is 0: the {spec.name!r} data section holds no identities out of training, so there is no "
                f"validation split; set data.{key} (e.g. --set data.{key}=5) or validate.split: test"
            )
    return _DATASETS.create(spec.name, split, **{k: v for k, v in config.items() if k != "name"})
