"""The rules of a training config: one :class:`Rule` per key (:data:`SCHEMA`), rules across keys (:data:`CHECKS`),
and :func:`validate_config`, which checks a merged config against both and names where each bad value came from.

Sections with free-form content are validated where they are used: ``data`` by :func:`veriloss.data.build_dataset`,
``model`` by :func:`veriloss.models.create`, ``loss.params`` by the head registry.

The kinds of rule (integers, numbers, choices, lists, records, …) are :mod:`veriloss.train.rules`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from .rules import (
    AutoBool,
    Bool,
    BoolOr,
    Check,
    Choice,
    Device,
    Fraction,
    FreeForm,
    Int,
    ListOf,
    Nullable,
    OneOf,
    Real,
    Record,
    Rule,
    Str,
    show,
)

__all__ = ["CHECKS", "SCHEMA", "validate_config"]


def _registry(name: str) -> list[str]:
    """The names a registry knows (imported when first needed: the registries import their packages)."""
    if name == "optimizers":
        from . import optimizers as registry
    elif name == "schedules":
        from . import schedules as registry
    else:
        from ..data import samplers_available

        return samplers_available()
    return registry.available()


def _lines(run: Callable[[], list[str] | None]) -> list[str]:
    """The problems a registry check returns or raises, one per line."""
    try:
        return list(run() or [])
    except ValueError as err:
        return str(err).splitlines()


def _data_section(config: dict):
    from ..data import check_dataset_config

    for line in _lines(lambda: check_dataset_config(config["data"])):
        yield "", None, line


def _model_section(config: dict):
    from ..models import registry

    params = dict(config["model"])
    name = params.pop("name", None)
    if not isinstance(name, str) or not name:
        yield "", None, f"model.name is required (a string); available: {', '.join(registry.available())}"
        return
    for line in _lines(lambda: registry.check(name, params, "model", named=True)):
        yield "", None, line


def _loss_section(config: dict):
    """The loss's name and parameters against the head or pair-loss registry, and each auxiliary term's."""
    from ..heads import registry as heads
    from ..pairwise import registry as pairwise

    loss = config["loss"]
    name = loss["name"]
    params = {k: v for k, v in (loss["params"] or {}).items() if k != "sharded"}  # the trainer's layout option
    known = [*heads.available(), *heads.aliases(), *pairwise.available(), *pairwise.aliases()]
    if name.lower() in (*heads.available(), *heads.aliases()):
        lines = _lines(lambda: heads.check(name, params, "loss.params"))
    elif name.lower() in (*pairwise.available(), *pairwise.aliases()):
        filled = {k: v for k, v in params.items() if k not in ("embedding_dim", "num_classes")}
        lines = _lines(lambda: pairwise.check(name, filled, "loss.params"))
    else:
        close = difflib.get_close_matches(name.lower(), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        lines = [f"loss.name: unknown loss {name!r}{hint}; available: {', '.join(sorted(set(known)))}"]
    for i, term in enumerate(loss["aux"] or []):
        where = f"loss.aux[{i}]"
        if term["name"].lower() not in (*pairwise.available(), *pairwise.aliases()):
            valid = ", ".join(pairwise.available())
            lines.append(f"{where}.name: {term['name']!r} is not a pair loss; available: {valid}")
        else:
            aux = {k: v for k, v in (term.get("params") or {}).items() if k not in ("embedding_dim", "num_classes")}
            lines += _lines(lambda a=aux, t=term, w=where, c=pairwise.check: c(t["name"], a, f"{w}.params"))
    for line in lines:
        yield "", None, line


#: the free-form sections, checked by the registries that own their keys (a typo anywhere fails at load)
SECTION_CHECKS = (
    Check(("data",), _data_section),
    Check(("model",), _model_section),
    Check(("loss.name", "loss.params", "loss.aux"), _loss_section),
)


# --------------------------------------------------------------------------------------------------------------------
# the schema, section by section (each section's rules and checks can move to the registry that owns them)
# --------------------------------------------------------------------------------------------------------------------
LOSS_RULES: dict[str, Rule] = {
    "name": Str(doc="a head of veriloss.heads or a loss of veriloss.pairwise"),
    "params": FreeForm(doc="the loss's parameters, checked by its registry"),
    "aux": ListOf(
        Record(
            {"name": Str(), "weight": Real(), "params": Nullable(FreeForm(), "no parameters")},
            required=("name", "weight"),
        ),
        unique="name",
        doc="auxiliary pairwise losses, added by weight",
    ),
    "reinit": Nullable(
        OneOf({"at": Real(ge=0, lt=1), "epoch": Int(ge=0), "step": Int(ge=0)}),
        "no re-initialization",
        doc="A3M-I prototype re-initialization: at a fraction of training, an epoch or a step",
    ),
    "margin_warmup_steps": Int(ge=0, doc="ramp the margin from 0 over this many steps; 0: no ramp"),
    "init_std": Nullable(Real(gt=0), "the head's own init", doc="prototypes drawn from N(0, init_std²)"),
}

OPTIM_RULES: dict[str, Rule] = {
    "name": Choice(lambda: _registry("optimizers"), doc="the optimizer (veriloss.train.optimizers)"),
    "lr": Real(gt=0, doc="the learning rate"),
    "momentum": Real(ge=0, lt=1, doc="momentum, for sgd and lazy-sgd"),
    "nesterov": Bool(doc="Nesterov momentum, for sgd and lazy-sgd"),
    "betas": ListOf(Real(ge=0, lt=1), length=2, doc="AdamW's β1, β2"),
    "weight_decay": Real(ge=0, doc="weight decay"),
    "head_lr_scale": Real(ge=0, doc="the head's learning rate is lr × this"),
    "head_weight_decay": Nullable(Real(ge=0), "same as weight_decay", doc="the head's weight decay"),
}


def _nesterov_needs_momentum(config: dict):
    optim = config["optim"]
    if optim["nesterov"] and optim["name"] in ("sgd", "lazy-sgd") and optim["momentum"] == 0:
        yield (
            "optim.nesterov",
            True,
            "needs momentum, but optim.momentum is 0; set optim.momentum in (0, 1) or optim.nesterov: false",
        )


OPTIM_CHECKS = (Check(("optim.name", "optim.momentum", "optim.nesterov"), _nesterov_needs_momentum),)

SCHEDULE_RULES: dict[str, Rule] = {
    "kind": Choice(lambda: _registry("schedules"), doc="the learning-rate schedule after warm-up"),
    "warmup_steps": Int(ge=0, doc="linear warm-up from 0 over this many steps"),
    "min_lr_scale": Real(ge=0, le=1, doc="the cosine floor as a fraction of lr"),
    "milestones": ListOf(Fraction(), increasing=True, doc="step: fractions of training where lr is × gamma"),
    "gamma": Real(gt=0, le=1, doc="step: the factor at each milestone"),
}

SAMPLER_RULES: dict[str, Rule] = {
    "name": Choice(lambda: _registry("samplers"), doc="how batches are drawn (veriloss.data.samplers)"),
    "p": Nullable(Int(ge=1), "unset; pk needs it", doc="pk: identities per batch"),
    "k": Nullable(Int(ge=1), "unset; pk needs it", doc="pk: samples per identity"),
}


def _sampler_plan(config: dict):
    """The sampler registry's own check of the section (e.g. pk: p·k = batch_size)."""
    from ..data import check_sampler_config

    try:
        check_sampler_config(config["sampler"], config["batch_size"])
    except ValueError as err:
        for line in str(err).splitlines():
            yield "", None, line


SAMPLER_CHECKS = (Check(("sampler", "batch_size"), _sampler_plan),)

VALIDATE_RULES: dict[str, Rule] = {
    "every_epochs": Nullable(Int(ge=0), "off", doc="evaluate every N epochs during training; 0: off"),
    "max_samples": Nullable(Int(ge=2), "the whole test split", doc="test samples evaluated during training"),
    "far": ListOf(Fraction(), min_len=1, doc="false accept rates at which TAR is reported"),
    "batch_size": Int(ge=1, doc="samples per forward pass when embedding"),
    "split": Choice(
        "test",
        "validation",
        doc="the split the evaluations score; validation: the identities data.validation_* holds out of training",
    ),
}


def _validation_split(config: dict):
    """``validate.split: validation`` needs a dataset with a validation key set above 0 (the held-out identities)."""
    if config["validate"]["split"] != "validation":
        return
    from ..data import datasets_available, validation_key

    try:
        key = validation_key(config["data"])
    except ValueError:
        return  # an unknown dataset: the data section's own check says so
    if key is None:
        with_key = [n for n in datasets_available() if validation_key({"name": n}) is not None]
        name = config["data"].get("name", "synthetic")
        yield (
            "validate.split",
            "validation",
            f"needs a validation split, but dataset {name!r} has none (no data.validation_* key; datasets with one: "
            f"{', '.join(with_key)}); set validate.split: test",
        )
    elif not config["data"].get(key):
        yield (
            "validate.split",
            "validation",
            f"needs held-out identities, but data.{key} is 0 (unset); set data.{key} (e.g. 5) so that training "
            "leaves them out, or validate.split: test",
        )


VALIDATE_CHECKS = (Check(("validate.split", "data"), _validation_split),)

CHECKPOINT_RULES: dict[str, Rule] = {"every_steps": Int(ge=1, doc="write the checkpoint every N steps")}

LOG_RULES: dict[str, Rule] = {
    "every_steps": Int(ge=1, doc="log a history row every N steps"),
    "tensorboard": Bool(doc="write TensorBoard logs"),
    "progress": Bool(doc="show a progress bar on a terminal"),
}

#: The rule of every key of :data:`~veriloss.train.config.DEFAULTS` (a nested dict is a section: a mapping with
#: exactly those keys).
SCHEMA: dict[str, Any] = {
    "seed": Int(ge=0, le=2**32 - 1, doc="the random seed"),
    "device": Device(doc="where to train; auto: cuda when available"),
    "data": FreeForm(doc="the dataset, checked by veriloss.data.build_dataset"),
    "model": FreeForm(doc="the backbone, checked by veriloss.models.create"),
    "loss": LOSS_RULES,
    "optim": OPTIM_RULES,
    "schedule": SCHEDULE_RULES,
    "epochs": Int(ge=1, doc="number of passes over the training set"),
    "max_steps": Nullable(Int(ge=1), "epochs × steps per epoch", doc="stop after this many steps"),
    "batch_size": Int(ge=1, doc="the global batch"),
    "sampler": SAMPLER_RULES,
    "amp": Choice("auto", "bf16", "fp16", "none", doc="mixed precision of the backbone"),
    "channels_last": AutoBool(doc="channels-last layout of image batches and conv weights; auto: image backbones"),
    "compile": BoolOr(Str(), doc="torch.compile the backbone: true (inductor) or a torch.compile backend name"),
    "grad_clip": Nullable(Real(gt=0), "no clipping", doc="max global gradient norm"),
    "num_workers": Int(ge=0, doc="DataLoader worker processes; 0: load in the main process"),
    "validate": VALIDATE_RULES,
    "checkpoint": CHECKPOINT_RULES,
    "log": LOG_RULES,
}

#: Rules across keys, applied after every key passed its own rule.
CHECKS: tuple[Check, ...] = (*OPTIM_CHECKS, *SAMPLER_CHECKS, *SECTION_CHECKS, *VALIDATE_CHECKS)


# --------------------------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------------------------
def _parent(key: str) -> str:
    """``a.b[1]`` → ``a.b``, ``a.b`` → ``a``, ``a`` → ``""``."""
    cut = max(key.rfind("."), key.rfind("["))
    return key[:cut] if cut > 0 else ""


def _origin(label: str) -> str:
    """``recipe.yaml:12`` → ``recipe.yaml``; any other label is its own origin."""
    head, _, line = label.rpartition(":")
    return head if head and line.isdigit() else label


class _Where:
    """Where each value came from: a label for all of them (str), or per dotted key (mapping; the longest recorded
    prefix of a key answers, in order of recency), or nothing (None)."""

    def __init__(self, source: str | Mapping[str, str] | None):
        self.source = source
        self.order = {k: i for i, k in enumerate(source)} if isinstance(source, Mapping) else {}

    def find(self, key: str) -> tuple[int, str | None]:
        """(recency, label) of ``key``: the latest of the key and the keys under it, else its nearest parent;
        within one file the key's own line wins."""
        if not isinstance(self.source, Mapping):
            return 0, self.source
        under = [k for k in self.source if k == key or k.startswith((key + ".", key + "["))]
        if under:
            best = max(under, key=self.order.__getitem__)
            if key in self.source and _origin(self.source[key]) == _origin(self.source[best]):
                best = key
            return self.order[best], self.source[best]
        while key:
            if key in self.source:
                return self.order[key], self.source[key]
            key = _parent(key)
        return -1, "default"

    def prefix(self, *keys: str) -> str:
        _, where = max((self.find(k) for k in keys), key=lambda found: found[0])
        return f"{where}: " if where else ""


def _walk(schema: Mapping[str, Any], config: Any, path: str, out: list[tuple[str, str]], failed: set[str]) -> None:
    """Check ``config`` (the section at ``path``) against ``schema``; append (key, message) and the failed keys."""
    where = path or "the config"
    if not isinstance(config, dict):
        must = f"{where} must be a mapping of {', '.join(schema)}"
        out.append((path, f"{where}: {show(config)} is not a mapping; {must}"))
        failed.add(path)
        return
    for key in config:
        if key not in schema:
            dotted = f"{path}.{key}" if path else str(key)
            valid = f"valid keys{' in ' + path if path else ''}: {', '.join(schema)}"
            out.append((dotted, f"unknown config key {dotted!r}; {valid}"))
            failed.add(dotted)
    for key, rule in schema.items():
        dotted = f"{path}.{key}" if path else key
        if key not in config:
            out.append((dotted, f"{dotted} is missing (load_config merges a config onto DEFAULTS)"))
            failed.add(dotted)
        elif isinstance(rule, dict):
            _walk(rule, config[key], dotted, out, failed)
        else:
            for suffix, value, what in rule.issues(config[key]):
                must = f"; {dotted} must be {rule.expected}" + (f" ({rule.doc})" if rule.doc else "")
                out.append((dotted + suffix, f"{dotted}{suffix}: {show(value)} {what}{must}"))
                failed.add(dotted)


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def validate_config(config: dict, source: str | Mapping[str, str] | None = None) -> dict:
    """Check a merged config against :data:`SCHEMA` and :data:`CHECKS`; return it unchanged.

    ``source`` says where values came from: a label for all (e.g. ``"suite omniglot, entry triplet"``), or a mapping
    dotted key → label (``"recipe.yaml:12"``, ``"--set epochs=2"``; the longest recorded prefix of a key answers).
    Raises one ``ValueError`` with one line per problem: ``WHERE: KEY: VALUE PROBLEM; KEY must be ALLOWED (MEANING)``.
    """
    where = _Where(source)
    found: list[tuple[str, str]] = []
    failed: set[str] = set()
    _walk(SCHEMA, config, "", found, failed)
    lines = [where.prefix(key) + message for key, message in found]
    for check in CHECKS:
        if any(_overlaps(k, f) for k in check.keys for f in failed):
            continue
        for key, value, message in check.run(config):
            text = message if key == "" else f"{key}: {show(value)} {message}"  # "": a registry's whole line
            lines.append(f"{where.prefix(*check.keys)}{text}")
    if lines:
        raise ValueError("\n".join(lines))
    return config
