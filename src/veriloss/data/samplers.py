"""Samplers: P identities × K samples per batch (pair and triplet losses), and class-balanced sampling; and the
batch plans a config's ``sampler`` section names (random, pk, class-balanced, or one registered with
:func:`register_sampler`): :func:`epoch_batches` gives an epoch's global batches, :func:`check_sampler_config`
checks the section at load time.

Plain random sampling is torch's own ``torch.utils.data.RandomSampler`` (or ``DataLoader(shuffle=True)``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from .._params import closest, expected, hints, type_problems
from ..registry import Registry

__all__ = [
    "ClassBalancedBatches",
    "ClassBalancedSampler",
    "PKBatches",
    "PKSampler",
    "RandomBatches",
    "batch_plan",
    "check_sampler_config",
    "describe_sampler",
    "epoch_batches",
    "register_sampler",
    "samplers_available",
    "unregister_sampler",
]


def _as_int_labels(labels: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D (one identity per sample), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("labels is empty; pass one identity label per sample of the dataset")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be integers (identity indices), got dtype {arr.dtype}")
    return arr.astype(np.int64)


class PKSampler(Sampler[list[int]]):
    """Batch sampler: each batch holds ``p`` distinct identities with ``k`` samples each (``p·k`` indices).

    Use it as ``DataLoader(dataset, batch_sampler=PKSampler(labels, p, k))``; ``labels[i]`` is the identity of
    sample i. Batches are a deterministic function of ``(seed, epoch)``; call :meth:`set_epoch` before each epoch
    to draw a new order (as with ``DistributedSampler``).

    - Identities: a fresh random permutation of the eligible identities is consumed ``p`` at a time; when it runs
      out, the next permutation continues (skipping identities already in the current batch), so every eligible
      identity appears in an epoch as soon as ``len(self) · p ≥`` their number, and none twice in a batch.
    - Samples: ``k`` indices of the identity drawn without replacement. An identity with fewer than ``k`` samples
      contributes all of them once, and the remaining slots are drawn with replacement from them (so the batch holds
      duplicates: for pair losses those are positive pairs at distance 0).
    - ``min_samples``: identities with fewer samples are never drawn (default 1: every identity is eligible; 2
      avoids the duplicate-only positives of single-sample identities).
    - ``batches_per_epoch``: default ``max(⌈n_ids / p⌉, n_samples // (p·k))``: every eligible identity at least once
      and about one pass over the samples.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        p: int,
        k: int,
        seed: int = 0,
        min_samples: int = 1,
        batches_per_epoch: int | None = None,
    ):
        super().__init__()
        for name, value, low in (("p", p, 2), ("k", k, 2), ("min_samples", min_samples, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        arr = _as_int_labels(labels)
        ids, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(order, np.cumsum(counts)[:-1])
        eligible = [i for i, c in enumerate(counts) if c >= min_samples]
        if len(eligible) < p:
            raise ValueError(
                f"only {len(eligible)} identities have at least min_samples={min_samples} samples, fewer than "
                f"p={p}: lower p (or min_samples) or add identities"
            )
        if batches_per_epoch is None:
            n_samples = int(sum(counts[i] for i in eligible))
            batches_per_epoch = max(math.ceil(len(eligible) / p), n_samples // (p * k))
        elif not isinstance(batches_per_epoch, int) or isinstance(batches_per_epoch, bool) or batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be a positive integer, got {batches_per_epoch!r}")
        self.p, self.k, self.seed, self.min_samples = p, k, seed, min_samples
        self.identities = ids[eligible]
        self._groups = [groups[i] for i in eligible]
        self.batches_per_epoch = batches_per_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def _samples(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        if len(group) >= self.k:
            return rng.choice(group, size=self.k, replace=False)
        extra = rng.choice(group, size=self.k - len(group), replace=True)
        return np.concatenate([rng.permutation(group), extra])

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self._groups)
        queue: list[int] = []
        for _ in range(self.batches_per_epoch):
            chosen: list[int] = []
            while len(chosen) < self.p:
                if not queue:
                    queue = rng.permutation(n).tolist()[::-1]  # pop() from the end = permutation order
                ident = queue.pop()
                if ident in chosen:  # only at a permutation boundary: put it back for the next batch
                    queue.insert(0, ident)
                    continue
                chosen.append(ident)
            yield [int(i) for ident in chosen for i in self._samples(rng, self._groups[ident])]


class ClassBalancedSampler(Sampler[int]):
    """Indices drawn with replacement, sample i with probability ∝ 1 / count(labels[i]): every class equally likely.

    Drawn as a uniform class, then a uniform sample of that class (no limit on the number of samples).

    ``num_samples`` indices per epoch (default: the number of samples). Deterministic per ``(seed, epoch)``; call
    :meth:`set_epoch` before each epoch for a new draw. Use as ``DataLoader(dataset, sampler=...)``.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        num_samples: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        arr = _as_int_labels(labels)
        if num_samples is None:
            num_samples = len(arr)
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
        self._order = torch.from_numpy(np.argsort(inverse, kind="stable"))  # sample indices grouped by class
        self._counts = torch.from_numpy(counts)
        self._starts = torch.from_numpy(np.cumsum(counts) - counts)
        self.num_samples, self.seed, self.epoch = num_samples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draw the next iteration yields."""
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        # a uniform class, then a uniform sample of it: P(i) = 1 / (C · count(labels[i])), for any number of samples
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0]))
        cls = torch.randint(len(self._counts), (self.num_samples,), generator=g)
        within = (torch.rand(self.num_samples, generator=g, dtype=torch.float64) * self._counts[cls]).long()
        within = torch.minimum(within, self._counts[cls] - 1)
        yield from self._order[self._starts[cls] + within].tolist()


# --------------------------------------------------------------------------------------------------------------------
# batch plans by name: a config's sampler section → each epoch's global batches


def _cut(order: list[int], batch_size: int) -> list[list[int]]:
    """``order`` in consecutive batches of ``batch_size``, the last partial one dropped."""
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(len(order) // batch_size)]


class RandomBatches:
    """random: each epoch a permutation of all ``len(labels)`` samples (``torch.randperm`` with a generator seeded
    ``seed·1 000 003 + epoch``) in batches of ``batch_size``, the last partial batch dropped."""

    def __init__(self, labels: Sequence[int] | np.ndarray | torch.Tensor, batch_size: int, seed: int):
        self.num_samples, self.batch_size, self.seed = len(labels), batch_size, seed

    def batches(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return _cut(torch.randperm(self.num_samples, generator=g).tolist(), self.batch_size)


class PKBatches:
    """pk: the batches of :class:`PKSampler` ``(labels, p, k, seed)`` at each epoch (``p·k = batch_size``): ``p``
    identities × ``k`` samples each, for pair and triplet losses."""

    def __init__(
        self, labels: Sequence[int] | np.ndarray | torch.Tensor, batch_size: int, seed: int, *, p: int, k: int
    ):
        problem = self.check(batch_size, p=p, k=k)
        if problem:
            raise ValueError(f"sampler {{'name': 'pk', 'p': {p!r}, 'k': {k!r}}} {problem}")
        self.sampler = PKSampler(labels, p, k, seed=seed)

    @staticmethod
    def check(batch_size: int, *, p: int, k: int) -> str | None:
        """What is wrong with ``p``, ``k`` for ``batch_size`` (None: nothing)."""
        for name, value in (("p", p), ("k", k)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                return f"has {name} = {value!r}; sampler pk needs integers p, k ≥ 2, p·k = batch_size ({batch_size})"
        if p * k != batch_size:
            return f"has p·k = {p}·{k} = {p * k}, not batch_size ({batch_size}); sampler pk needs p·k = batch_size"
        return None

    def batches(self, epoch: int) -> list[list[int]]:
        self.sampler.set_epoch(epoch)
        return [list(b) for b in self.sampler]


class ClassBalancedBatches:
    """class-balanced: each epoch ``len(labels)`` draws of :class:`ClassBalancedSampler` ``(labels, seed)`` (every
    class equally likely) in batches of ``batch_size``, the last partial batch dropped."""

    def __init__(self, labels: Sequence[int] | np.ndarray | torch.Tensor, batch_size: int, seed: int):
        self.sampler, self.batch_size = ClassBalancedSampler(labels, seed=seed), batch_size

    def batches(self, epoch: int) -> list[list[int]]:
        self.sampler.set_epoch(epoch)
        return _cut(list(self.sampler), self.batch_size)


_SAMPLERS = Registry("sampler", positional=("labels", "batch_size", "seed"))
_SAMPLERS.register("random", RandomBatches)
_SAMPLERS.register("pk", PKBatches)
_SAMPLERS.register("class-balanced", ClassBalancedBatches)


def register_sampler(name: str, plan: type, aliases: Sequence[str] = ()) -> type:
    """Make the batch plan ``plan`` the sampler ``name`` (case-insensitive) that a config's ``sampler: {name: …}``
    selects; returns ``plan``. A plan is a class ``plan(labels, batch_size, seed, **params)`` (its keyword
    parameters are the config keys, annotated and with defaults, none called ``name``) with ``batches(epoch) ->
    list[list[int]]``: the global batches of an epoch, a pure function of (seed, epoch). It may define a static
    ``check(batch_size, **params) -> str | None`` for the load-time checks across keys (see :class:`PKBatches`)."""
    if not inspect.isclass(plan) or not callable(getattr(plan, "batches", None)):
        raise ValueError(f"sampler {name!r}: plan must be a class with a batches(epoch) method, got {plan!r}")
    params = list(inspect.signature(plan).parameters)
    if params[:3] != ["labels", "batch_size", "seed"]:
        raise ValueError(f"sampler {name!r}: the plan's parameters must start labels, batch_size, seed; got {params}")
    if "name" in params:
        raise ValueError(f"sampler {name!r}: a plan parameter cannot be called 'name' (the config's sampler name)")
    return _SAMPLERS.register(name, plan, aliases=tuple(aliases))


def unregister_sampler(name: str) -> None:
    """Remove the sampler ``name`` and its aliases (plugins and tests that register temporary samplers)."""
    _SAMPLERS.unregister(name)


def samplers_available() -> list[str]:
    """The registered sampler names in registration order: random, pk, class-balanced, then those added."""
    return _SAMPLERS.names()


def describe_sampler(name: str) -> dict[str, Any]:
    """Name, aliases, ``parameters`` (key → default; None when required), ``required``, ``types`` (key → what it
    accepts, in words), ``summary`` (the plan's first paragraph)."""
    info = _SAMPLERS.describe(name)
    types_ = hints(_SAMPLERS.spec(name).cls)
    info["types"] = {k: expected(types_[k]) if k in types_ else "any value" for k in info["parameters"]}
    return info


def check_sampler_config(sampler: dict[str, Any], batch_size: int, where: str = "sampler") -> None:
    """Check a config's ``sampler`` section for a global ``batch_size`` without building anything: the name is a
    registered sampler (default "random"), each key one of its parameters of the type its annotation allows, none
    it requires missing, and the plan's own ``check`` passes (pk: integers p, k ≥ 2 with p·k = batch_size). A null
    value means unset (the config defaults carry ``p: null, k: null`` for every sampler). One ``ValueError`` with a
    line per problem, naming ``<where>.<key>``, the value, what is allowed and the valid choices.

    >>> check_sampler_config({"name": "pk", "p": 3, "k": 3}, 16)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: sampler: {'name': 'pk', 'p': 3, 'k': 3} has p·k = 3·3 = 9, not batch_size (16); ...
    """
    spec, params = _resolve(sampler, where)
    accepted, types_ = spec.parameters(), hints(spec.cls)
    lines = []
    for key, value in params.items():
        if key not in accepted:
            lines.append(
                f"{where}.{key}: {value!r} does not apply to sampler {spec.name!r} (its keys: "
                f"{', '.join(['name', *accepted])}); it must be null or left out{closest(key, accepted)}"
            )
    missing = [k for k, d in accepted.items() if d is inspect.Parameter.empty and k not in params]
    if missing:
        needs = ", ".join(f"{k}: {expected(types_[k]) if k in types_ else 'a value'}" for k in missing)
        lines.append(f"{where}: {sampler!r} has no {', '.join(missing)}; sampler {spec.name} needs {needs}")
    lines += type_problems({k: v for k, v in params.items() if k in accepted}, types_, where)
    check = getattr(spec.cls, "check", None)
    if not lines and callable(check):
        problem = check(batch_size, **{**{k: v for k, v in accepted.items() if k not in params}, **params})
        if problem:
            lines.append(f"{where}: {sampler!r} {problem}")
    if lines:
        raise ValueError("\n".join(lines))


def _resolve(sampler: dict[str, Any], where: str):
    """(spec, the non-null parameters) of a sampler section; ValueError for a non-mapping or an unknown name."""
    if not isinstance(sampler, dict):
        raise ValueError(f"{where} must be a mapping (name: a sampler, then its keys), got {sampler!r}")
    name, names = sampler.get("name", "random"), samplers_available()
    if not isinstance(name, str) or name.lower() not in names + list(_SAMPLERS.aliases()):
        raise ValueError(
            f"{where}.name must be one of {', '.join(names)} (a registered sampler), got {name!r}{closest(name, names)}"
        )
    return _SAMPLERS.spec(name), {k: v for k, v in sampler.items() if k != "name" and v is not None}


def batch_plan(
    sampler: dict[str, Any], labels: Sequence[int] | np.ndarray | torch.Tensor, batch_size: int, seed: int
) -> Any:
    """The batch plan of a config's ``sampler`` section (checked by :func:`check_sampler_config`) over a training
    set's ``labels``: ``plan.batches(epoch)`` gives that epoch's global batches (lists of sample indices).

    >>> plan = batch_plan({"name": "pk", "p": 2, "k": 2}, [0, 0, 1, 1, 2, 2], batch_size=4, seed=0)
    >>> [len(b) for b in plan.batches(0)]
    [4, 4]
    """
    for key, value, low in (("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{key} must be an integer ≥ {low}, got {value!r}")
    check_sampler_config(sampler, batch_size)
    spec, params = _resolve(sampler, "sampler")
    return _SAMPLERS.create(spec.name, labels, batch_size, seed, **params)


def epoch_batches(
    name: str, labels: Sequence[int] | np.ndarray | torch.Tensor, batch_size: int, seed: int, epoch: int, **params
) -> list[list[int]]:
    """The global batches of ``epoch`` under sampler ``name`` with ``params`` (null ones unset), dropping the last
    partial batch where the sampler does: :func:`batch_plan` ``({"name": name, **params}, …).batches(epoch)``.

    >>> epoch_batches("random", [0, 1, 2, 3, 4], batch_size=2, seed=0, epoch=0)
    [[4, 0], [1, 3]]
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
    return batch_plan({"name": name, **params}, labels, batch_size, seed).batches(epoch)
