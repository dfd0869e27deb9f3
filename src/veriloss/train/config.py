"""Training configuration: YAML file → defaults → ``--set key=value`` overrides, unknown keys rejected, then every
value checked by :func:`~veriloss.train.schema.validate_config` before any data or model is built.

Here: the defaults (:data:`DEFAULTS`), merging, ``--set`` overrides, reading YAML with the line of each key, the
packaged recipes and :func:`load_config`; the rules themselves are in :mod:`veriloss.train.schema`.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from .schema import validate_config


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but ``1e-3`` (no dot, as people write FARs) is a float, not a string (YAML 1.1 quirk)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse(text: str):
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


__all__ = [
    "DEFAULTS",
    "FREE_FORM",
    "apply_override",
    "load_config",
    "merge",
    "packaged_file",
    "read_yaml",
    "recipe_path",
]

#: Every key the trainer reads, with its default. ``None`` means "not set".
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "data": {"name": "synthetic"},  # free-form: see veriloss.data.build_dataset
    "model": {"name": "small-cnn"},  # free-form: name + parameters of veriloss.models.create
    "loss": {
        "name": "arcface",
        "params": {},  # parameters of the head (veriloss.heads.create)
        "aux": [],  # auxiliary losses: [{name, weight, params}] from veriloss.pairwise, added by weight
        "reinit": None,  # A3M-I prototype re-initialization: {at: fraction of training} | {epoch: N} | {step: N}
        "margin_warmup_steps": 0,  # ramp the margin from 0 to its value over this many steps
        "init_std": None,  # W ~ N(0, init_std²); None: the head's default (0.01 for cosine heads, else 1/√d)
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
    "amp": "auto",  # auto (native bf16 where the hardware has it; else fp16 on CUDA, none on CPU) | bf16 | fp16 | none
    "channels_last": "auto",  # image batches and conv weights channels-last; auto: for image backbones
    "compile": False,  # torch.compile the backbone: true (inductor) or a backend name; the first steps compile it
    "grad_clip": None,  # max global gradient norm
    "num_workers": 0,
    "validate": {"every_epochs": 1, "max_samples": 4000, "far": [1e-3, 1e-4], "batch_size": 512, "split": "test"},
    "checkpoint": {"every_steps": 200},
    "log": {"every_steps": 20, "tensorboard": True, "progress": True},
}

#: sections whose keys are validated where they are used; merged shallowly
FREE_FORM = {"data", "model", "loss.params"}


# --------------------------------------------------------------------------------------------------------------------
# merging, overrides, files
# --------------------------------------------------------------------------------------------------------------------
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


def _override(assignment: str) -> tuple[str, Any, bool]:
    """``dotted.key=value`` (merge) or ``dotted.key:=value`` (replace) → (key, parsed value, replace)."""
    if "=" not in assignment:
        raise ValueError(f"--set expects key=value or key:=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    replace = key.endswith(":")
    key = key.removesuffix(":").strip()
    if not key:
        raise ValueError(f"--set expects key=value or key:=value, got {assignment!r}")
    try:
        return key, _parse(raw), replace
    except yaml.YAMLError as err:
        raise ValueError(f"--set {key}: cannot parse value {raw!r}: {err}") from None


def _default_at(key: str) -> Any:
    """The default of a dotted key (None when DEFAULTS has no such key)."""
    node: Any = DEFAULTS
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def apply_override(config: dict, assignment: str) -> dict:
    """Apply one ``--set``: ``dotted.key=value`` merges the value (parsed as YAML: numbers, lists, true/false, null,
    mappings) into the config; ``dotted.key:=value`` replaces what is at the key, as if the recipe had not set it: a
    section gets its defaults plus ``value`` (``loss:={name: cosface, params: {s: 30}}`` drops the recipe's loss
    parameters), a free-form section (``data``, ``model``, ``loss.params``) exactly ``value``.

    >>> recipe = apply_override(DEFAULTS, "loss.params={s: 30, m: 0.5}")
    >>> apply_override(recipe, "loss.params:={s: 16}")["loss"]["params"]
    {'s': 16}
    """
    key, value, replace = _override(assignment)
    if replace:
        default = _default_at(key)
        if isinstance(default, dict) and key not in FREE_FORM and isinstance(value, dict):
            value = merge(default, value, key)
        parts = key.split(".")
        out = copy.deepcopy(config)
        node = out
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                raise ValueError(f"unknown config key {'.'.join(parts[: i + 1])!r}")
            node = node[part]
        parent = ".".join(parts[:-1])
        if parent not in FREE_FORM and parts[-1] not in node:
            raise ValueError(
                f"unknown config key {key!r}; valid keys{' in ' + parent if parent else ''}: {', '.join(node)}"
            )
        node[parts[-1]] = copy.deepcopy(value)
        return out
    update: dict = value
    for part in reversed(key.split(".")):
        update = {part: update}
    return merge(config, update)


def _record(sources: dict[str, str], key: str, value: Any, where: str) -> None:
    """``value`` (set at ``key`` by a deep merge) came from ``where``: its leaves are recorded, latest last."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _record(sources, f"{key}.{k}", v, where)
        return
    for old in [k for k in sources if k.startswith((key + ".", key + "["))]:
        del sources[old]  # replaced whole
    sources.pop(key, None)
    sources[key] = where


def _key_lines(node: yaml.Node | None, path: str, out: dict[str, int]) -> None:
    """The line (1-based) of every key and list item under ``node``, by dotted key (``a.b``, ``a.far[1]``)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{path}.{key_node.value}" if path else str(key_node.value)
            out.pop(key, None)
            out[key] = key_node.start_mark.line + 1
            _key_lines(value_node, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[f"{path}[{i}]"] = item.start_mark.line + 1
            _key_lines(item, f"{path}[{i}]", out)


def _read_text(path: Path) -> str:
    """A config file as UTF-8 (a leading BOM is dropped); ``ValueError`` names the first undecodable byte."""
    raw = path.read_bytes()
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = bom + err.start
        line = raw[:offset].count(b"\n") + 1
        raise ValueError(
            f"config file {str(path)!r} is not UTF-8: byte 0x{raw[offset]:02x} at offset {offset} (line {line}) "
            "cannot be decoded; save the file as UTF-8"
        ) from None


def read_yaml(path: str | Path) -> tuple[Any, dict[str, int]]:
    """The YAML document of ``path`` (UTF-8, a BOM dropped; parsed by :class:`_Loader`) and the line of each
    dotted key in it; ``ValueError`` names the file for undecodable bytes or bad YAML."""
    path = Path(path)
    loader = _Loader(_read_text(path))
    loader.name = str(path)  # YAML errors say in "recipe.yaml", line N
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    _key_lines(node, "", lines)  # after construction: merge keys (<<) are flattened into the nodes by then
    return data, lines


#: the recipes installed with the package (``veriloss train omniglot_arcface``)
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"


def packaged_file(name: str | os.PathLike, folder: Path, kind: str) -> Path:
    """``name`` itself when it is a file, else ``folder/<name>.yaml`` (``kind`` names it in the error)."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = folder / f"{path.stem}.yaml"
    if path.suffix in ("", ".yaml") and packaged.is_file():
        return packaged
    known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
    raise ValueError(f"{kind} {str(name)!r} is neither a file nor a packaged {kind} ({known})")


def recipe_path(name: str | os.PathLike) -> Path:
    """``name`` itself when it is a file, else the packaged recipe ``veriloss/configs/<name>.yaml``.

    >>> recipe_path("omniglot_arcface").name
    'omniglot_arcface.yaml'
    """
    return packaged_file(name, CONFIGS_DIR, "recipe")


def _merge_recipes(base: dict, recipe: dict) -> dict:
    """A recipe over its ``base``: sections merge key by key, except ``loss``, which a recipe gives whole."""
    out = copy.deepcopy(base)
    for key, value in recipe.items():
        if key != "loss" and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_recipes(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_recipe(path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict, dict[str, str]]:
    """A recipe file's mapping with its ``base:`` recipes applied (a file beside it, else a packaged recipe), and
    where each dotted key came from (``file:line``)."""
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    if path.resolve() in chain:
        cycle = " → ".join(str(p) for p in (*chain, path.resolve()))
        raise ValueError(f"config file {str(path)!r}: its base recipes form a cycle ({cycle})")
    loaded, lines = read_yaml(path)
    loaded = loaded or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping at the top level")
    sources = {key: f"{path}:{line}" for key, line in lines.items()}
    if "base" not in loaded:
        return loaded, sources
    base, where = loaded.pop("base"), sources.pop("base")
    if not isinstance(base, str) or not base:
        raise ValueError(f"{where}: base: {base!r} must name a recipe (a file beside this one, or a packaged one)")
    beside = path.parent / (base if base.endswith(".yaml") else f"{base}.yaml")
    try:
        base_path = beside if beside.is_file() else recipe_path(base)
    except ValueError as err:
        raise ValueError(f"{where}: base: {err}") from None
    parent, parent_sources = _read_recipe(base_path, (*chain, path.resolve()))
    if "loss" in loaded:  # given whole: nothing of the base's loss remains
        parent_sources = {k: v for k, v in parent_sources.items() if k != "loss" and not k.startswith("loss.")}
    return _merge_recipes(parent, loaded), {**parent_sources, **sources}


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    data_root: str | os.PathLike | None = None,
) -> dict:
    """Defaults, then the YAML file at ``path`` (if any; a packaged recipe by name; ``base: <recipe>`` in it starts
    from that recipe, whose sections it updates key by key, except ``loss``, which it gives whole), then each
    ``--set`` override in order (:func:`apply_override`), then :func:`~veriloss.train.schema.validate_config`
    (errors name ``path:LINE`` or the ``--set``).
    ``data_root``: the folder relative data paths start from (the packaged recipes name ``omniglot``,
    ``speechocean762``: the folders under it); None leaves them relative to the current folder."""
    config = copy.deepcopy(DEFAULTS)
    sources: dict[str, str] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file() and path.suffix == "":  # a packaged recipe by name (omniglot_arcface)
            path = recipe_path(path)
        loaded, sources = _read_recipe(path)
        try:
            config = merge(config, loaded)
        except ValueError as err:  # an unknown key or a free-form section that is not a mapping: where it is
            named = re.search(r"(?:key|section) '([^']+)'", str(err))
            where = sources.get(named.group(1)) if named else None
            raise ValueError(f"{where or path}: {err}") from None
    for assignment in overrides:
        key, value, replace = _override(assignment)
        try:
            config = apply_override(config, assignment)
        except ValueError as err:
            raise ValueError(f"--set {assignment}: {err}") from None
        if replace:
            for old in [k for k in sources if k == key or k.startswith((key + ".", key + "["))]:
                del sources[old]
        _record(sources, key, value, f"--set {assignment}")
    if data_root is not None:
        from ..data import with_data_root

        if not Path(data_root).is_dir():
            raise ValueError(f"the data root {str(data_root)!r} is not a folder (--data-root or $VERILOSS_DATA)")
        config["data"] = with_data_root(config["data"], data_root)
    return validate_config(config, sources)
