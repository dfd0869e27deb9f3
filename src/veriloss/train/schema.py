"""The rules of a training config: one :class:`Rule` per key (:data:`SCHEMA`), rules across keys (:data:`CHECKS`),
and :func:`validate_config`, which checks a merged config against both and names where each bad value came from.

Sections with free-form content are validated where they are used: ``data`` by :func:`veriloss.data.build_dataset`,
``model`` by :func:`veriloss.models.create`, ``loss.params`` by the head registry.

Integers must be YAML integers (``2.0`` and ``true`` are rejected), booleans YAML booleans (``true``/``false``),
numbers finite; ``null`` only where a key says what it means.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHECKS",
    "SCHEMA",
    "Bool",
    "Check",
    "Choice",
    "Device",
    "Fraction",
    "FreeForm",
    "Int",
    "ListOf",
    "Nullable",
    "OneOf",
    "Real",
    "Record",
    "Rule",
    "Str",
    "validate_config",
]


# --------------------------------------------------------------------------------------------------------------------
# rules: one value each
# --------------------------------------------------------------------------------------------------------------------
def _show(value: Any) -> str:
    """A value as the message shows it: ``null``/``true``/``false`` as YAML spells them, else ``repr``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(ge=None, gt=None, le=None, lt=None) -> str:
    """`` ≥ 1``, `` in [0, 1)``, … (empty when unbounded)."""
    lo, hi = (ge if gt is None else gt), (le if lt is None else lt)
    if lo is not None and hi is not None:
        return f" in {'(' if gt is not None else '['}{lo}, {hi}{')' if lt is not None else ']'}"
    if lo is not None:
        return f" {'>' if gt is not None else '≥'} {lo}"
    if hi is not None:
        return f" {'<' if lt is not None else '≤'} {hi}"
    return ""


def _in_bounds(x, ge=None, gt=None, le=None, lt=None) -> bool:
    return (ge is None or x >= ge) and (gt is None or x > gt) and (le is None or x <= le) and (lt is None or x < lt)


#: what a rule reports: (suffix of the key, e.g. "[1]" or ".at"; the offending value; what is wrong with it)
Issue = tuple[str, Any, str]


class Rule:
    """A check of one config value: :meth:`issues` yields what is wrong, :attr:`expected` says what is allowed."""

    expected = "any value"

    def __init__(self, doc: str = ""):
        self.doc = doc

    def issues(self, value: Any) -> Iterator[Issue]:  # pragma: no cover - overridden
        return iter(())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expected!r})"


class Int(Rule):
    """An integer (not a bool, not ``2.0``) with optional bounds."""

    def __init__(self, ge: int | None = None, le: int | None = None, doc: str = ""):
        super().__init__(doc)
        self.ge, self.le = ge, le
        self.expected = "an integer" + _bounds(ge=ge, le=le)

    def issues(self, value):
        if not _is_int(value):
            hint = f" (write {int(value)})" if isinstance(value, float) and value.is_integer() else ""
            yield "", value, "is not an integer" + hint
        elif not _in_bounds(value, ge=self.ge, le=self.le):
            yield "", value, "is out of range"


class Real(Rule):
    """A number (an int or a float, not a bool), finite unless ``finite=False``, with optional bounds."""

    def __init__(self, ge=None, gt=None, le=None, lt=None, finite: bool = True, doc: str = ""):
        super().__init__(doc)
        self.bounds = {"ge": ge, "gt": gt, "le": le, "lt": lt}
        self.finite = finite
        self.expected = ("a finite number" if finite else "a number") + _bounds(**self.bounds)

    def issues(self, value):
        if not _is_number(value):
            yield "", value, "is not a number"
        elif self.finite and not math.isfinite(value):
            yield "", value, "is not finite"
        elif not _in_bounds(value, **self.bounds):
            yield "", value, "is out of range"


def Fraction(doc: str = "") -> Real:
    """A number in the open interval (0, 1)."""
    return Real(gt=0, lt=1, doc=doc)


class Bool(Rule):
    """A YAML boolean: ``true`` or ``false`` (not ``1``, not ``"yes"``)."""

    expected = "true or false"

    def issues(self, value):
        if not isinstance(value, bool):
            yield "", value, "is not a boolean"


class AutoBool(Rule):
    """``auto``, ``true`` or ``false``."""

    expected = "auto, true or false"

    def issues(self, value):
        if not isinstance(value, bool) and value != "auto":
            yield "", value, "is not auto, true or false"


class BoolOr(Rule):
    """``true``, ``false``, or what ``rule`` accepts."""

    def __init__(self, rule: Rule, doc: str = ""):
        super().__init__(doc)
        self.rule = rule

    @property
    def expected(self) -> str:
        return f"true, false or {self.rule.expected}"

    def issues(self, value):
        if not isinstance(value, bool):
            yield from self.rule.issues(value)


class Str(Rule):
    """A non-empty string (``123`` unquoted is a number)."""

    expected = "a non-empty string"

    def issues(self, value):
        if not isinstance(value, str):
            yield "", value, "is not a string"
        elif not value.strip():
            yield "", value, "is empty"


class Choice(Rule):
    """One of a set of strings: fixed, or a registry's names (``options`` a function returning them, read at each
    check, so names registered later are valid)."""

    def __init__(self, *options: str | Callable[[], Sequence[str]], doc: str = ""):
        super().__init__(doc)
        self._options = options

    @property
    def options(self) -> tuple[str, ...]:
        if len(self._options) == 1 and callable(self._options[0]):
            return tuple(self._options[0]())
        return tuple(self._options)

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(self.options)

    def issues(self, value):
        options = self.options
        if not isinstance(value, str) or value not in options:
            close = difflib.get_close_matches(value, options, n=1) if isinstance(value, str) else []
            yield "", value, "is not a valid choice" + (f" (did you mean {close[0]!r}?)" if close else "")


class Device(Rule):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

    expected = "auto, cpu, cuda or cuda:<index>"

    def issues(self, value):
        if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda|cuda:[0-9]+", value):
            yield "", value, "is not a device"


class Nullable(Rule):
    """``null`` (which means ``meaning``) or a value of ``rule``."""

    def __init__(self, rule: Rule, meaning: str, doc: str = ""):
        super().__init__(doc)
        self.rule = rule
        self.expected = f"null ({meaning}) or {rule.expected}"

    def issues(self, value):
        if value is not None:
            yield from self.rule.issues(value)


def _items(n: int) -> str:
    return f"{n} item{'' if n == 1 else 's'}"


class ListOf(Rule):
    """A list of values of ``item``: at least ``min_len`` long (exactly ``length`` when given), strictly
    increasing if ``increasing``, unique by the field ``unique`` of mapping items if given."""

    def __init__(
        self,
        item: Rule,
        min_len: int = 0,
        length: int | None = None,
        increasing: bool = False,
        unique: str | None = None,
        doc: str = "",
    ):
        super().__init__(doc)
        self.item, self.min_len, self.length, self.increasing, self.unique = item, min_len, length, increasing, unique
        kind = "an increasing list" if increasing else "a non-empty list" if min_len == 1 else "a list"
        size = f" of {length} items" if length is not None else f" of at least {min_len} items" if min_len > 1 else ""
        distinct = f" with distinct {unique}s" if unique else ""
        self.expected = f"{kind}{size}{distinct}, each item {item.expected}"

    def issues(self, value):
        if not isinstance(value, (list, tuple)):
            yield "", value, "is not a list"
            return
        if self.length is not None and len(value) != self.length:
            yield "", value, f"has {_items(len(value))}"
            return
        if len(value) < self.min_len:
            yield "", value, "is empty" if not value else f"has {_items(len(value))}"
            return
        bad = False
        for i, x in enumerate(value):
            for suffix, v, what in self.item.issues(x):
                bad = True
                yield f"[{i}]{suffix}", v, what
        if bad:
            return
        if self.increasing and any(b <= a for a, b in itertools.pairwise(value)):
            yield "", value, "is not strictly increasing"
        if self.unique:
            names = [x.get(self.unique) for x in value if isinstance(x, dict)]
            twice = sorted({n for n in names if names.count(n) > 1}, key=str)
            if twice:
                yield "", value, f"repeats the {self.unique} {', '.join(map(repr, twice))}"


class FreeForm(Rule):
    """A mapping whose content is checked where it is used."""

    expected = "a mapping"

    def issues(self, value):
        if not isinstance(value, dict):
            yield "", value, "is not a mapping"


class Record(Rule):
    """A mapping with the keys of ``fields`` (those in ``required`` must be present), each checked by its rule."""

    def __init__(self, fields: Mapping[str, Rule], required: tuple[str, ...] = (), doc: str = ""):
        super().__init__(doc)
        self.fields, self.required = dict(fields), required
        parts = [f"{k}: {r.expected}" + ("" if k in required else " (optional)") for k, r in self.fields.items()]
        self.expected = "a mapping {" + "; ".join(parts) + "}"

    def issues(self, value):
        if not isinstance(value, dict):
            yield "", value, "is not a mapping"
            return
        unknown = [k for k in value if k not in self.fields]
        missing = [k for k in self.required if k not in value]
        if unknown or missing:
            what = [f"unknown key(s) {', '.join(map(repr, unknown))}"] if unknown else []
            what += [f"no {', '.join(map(repr, missing))}"] if missing else []
            yield "", value, "has " + " and ".join(what)
            return
        for key, x in value.items():
            for suffix, v, what in self.fields[key].issues(x):
                yield f".{key}{suffix}", v, what


class OneOf(Rule):
    """A mapping with exactly one key, one of ``options``, whose value that option's rule checks."""

    def __init__(self, options: Mapping[str, Rule], doc: str = ""):
        super().__init__(doc)
        self.options = dict(options)
        self.expected = "exactly one of " + ", ".join(f"{{{k}: {r.expected}}}" for k, r in self.options.items())

    def issues(self, value):
        if not isinstance(value, dict):
            yield "", value, "is not a mapping"
        elif len(value) != 1 or next(iter(value)) not in self.options:
            yield "", value, f"does not have exactly one of the keys {', '.join(self.options)}"
        else:
            ((key, x),) = value.items()
            for suffix, v, what in self.options[key].issues(x):
                yield f".{key}{suffix}", v, what


@dataclass(frozen=True)
class Check:
    """A rule across keys: ``run(config)`` yields ``(key, value, message)`` for a config whose ``keys`` passed
    their own rules; the error is located where the most recently set of ``keys`` came from."""

    keys: tuple[str, ...]
    run: Callable[[dict], Iterator[tuple[str, Any, str]]]


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
        out.append((path, f"{where}: {_show(config)} is not a mapping; {must}"))
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
                out.append((dotted + suffix, f"{dotted}{suffix}: {_show(value)} {what}{must}"))
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
            text = message if key == "" else f"{key}: {_show(value)} {message}"  # "": a registry's whole line
            lines.append(f"{where.prefix(*check.keys)}{text}")
    if lines:
        raise ValueError("\n".join(lines))
    return config
