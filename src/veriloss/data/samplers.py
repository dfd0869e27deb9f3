"""Samplers: P identities × K samples per batch (pair and triplet losses), and class-balanced sampling.

Plain random sampling is torch's own ``torch.utils.data.RandomSampler`` (or ``DataLoader(shuffle=True)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["ClassBalancedSampler", "PKSampler"]


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
