"""The training data path: each epoch's global batches, this rank's slice of them, and per-sample seeded reads.

Sample i of epoch e draws its random numbers (crops, augmentation) from its own ``torch.Generator`` seeded by
:func:`sample_seed` (seed, e, i), so they depend neither on the loader (worker processes, batch order, an
interruption) nor on torch's global generator, which is never touched: its state, carried by the checkpoint, is for
dropout and random margins. Datasets say how to take a generator (the packaged ones all do):

- ``item(index, generator)``: item ``index`` drawing every random number from ``generator``; optionally
  ``items(indices, generators)`` for a batch at once (:class:`~veriloss.data.SyntheticIdentities` renders batches);
- ``random_items``: False when items draw nothing (no transform, no random crop): they are read as they are, with
  no generator at all.

A dataset without ``item`` is read under torch's global generator seeded by (seed, e, i) inside
``torch.random.fork_rng`` (≈ 0.2 ms a sample); the packaged datasets run a user ``transform`` without a
``generator`` parameter the same way (:func:`veriloss.data.augment.apply_transform`). The loader draws its workers'
seeds from its own generator, a function of (seed, epoch), so building it leaves the global RNG alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from . import distributed as D

__all__ = ["SeededView", "TrainingLoader", "sample_seed", "training_loader"]

_MASK = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    """One step of splitmix64 (Steele, Lea & Flood 2014): a bijective 64-bit mix."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of sample ``index`` in ``epoch``: splitmix64 chained over (seed, epoch, index), in [0, 2⁶³).

    Integer arithmetic only, so the same in every process, Python and platform. (torch's CPU generator keeps the low
    32 bits of a seed: two samples share a random stream with probability 2⁻³².)

    >>> sample_seed(0, 0, 0) == sample_seed(0, 0, 0) != sample_seed(0, 0, 1)
    True
    """
    z = _splitmix64(int(seed) & _MASK)
    z = _splitmix64(z ^ (int(epoch) & _MASK))
    return _splitmix64(z ^ (int(index) & _MASK)) >> 1


class SeededView(Dataset):
    """``dataset`` with sample i of epoch e drawing from a generator seeded by (seed, e, i) (the module docstring).

    A key is an index (of ``epoch``) or an ``(epoch, index)`` pair: the batches of :class:`TrainingLoader` carry
    their epoch, so worker processes that outlive an epoch need no update.
    """

    def __init__(self, dataset: Dataset, seed: int, epoch: int = 0):
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def generator(self, epoch: int, index: int) -> torch.Generator:
        """The generator of sample ``index`` in ``epoch``."""
        return torch.Generator().manual_seed(sample_seed(self.seed, epoch, index))

    def _key(self, key) -> tuple[int, int]:
        return (int(key[0]), int(key[1])) if isinstance(key, tuple) else (self.epoch, int(key))

    def __getitem__(self, key):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: Sequence) -> list:
        """The items of ``keys`` (the DataLoader calls this with a batch): in one call when the dataset reads
        batches (``items``, ``__getitems__``), each with its own generator."""
        pairs = [self._key(k) for k in keys]
        ds = self.dataset
        if getattr(ds, "random_items", True) is False:
            indices = [i for _, i in pairs]
            batch = getattr(ds, "__getitems__", None)
            return batch(indices) if batch is not None else [ds[i] for i in indices]
        if hasattr(ds, "items"):
            return ds.items([i for _, i in pairs], [self.generator(e, i) for e, i in pairs])
        if hasattr(ds, "item"):
            return [ds.item(i, self.generator(e, i)) for e, i in pairs]
        out = []
        for e, i in pairs:  # a dataset that draws from the global generator, if at all
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed(self.seed, e, i))
                out.append(ds[i])
        return out


class _EpochBatches:
    """The loader's batch sampler: the current epoch's batches, as lists of (epoch, index) keys."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.epoch
        for batch in self.batches:
            yield [(epoch, int(i)) for i in batch]


class TrainingLoader:
    """This rank's slice of each global batch (``batch_size`` / world size samples), one epoch after another,
    through one DataLoader kept for the whole run: with ``num_workers > 0`` its worker processes persist across
    epochs (``persistent_workers``); ``pin_memory`` (default: when CUDA is available) puts batches in page-locked
    memory for asynchronous copies to the GPU.

    ``loader.epoch(batches, e)`` gives the DataLoader to iterate over epoch e's global ``batches`` (the trainer's
    plan, or its rest after a resume); leaving an epoch early is fine: the next call starts the next one. Call
    :meth:`close` (or use ``with``) to stop the workers. The worker seeds come from a generator seeded by (seed, e)
    for each epoch, never from the global RNG.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
    ):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self._sampler = _EpochBatches()
        self._generator = torch.Generator()
        self.loader = DataLoader(
            SeededView(dataset, seed),
            batch_sampler=self._sampler,
            num_workers=num_workers,
            generator=self._generator,
            pin_memory=torch.cuda.is_available() if pin_memory is None else bool(pin_memory),
            persistent_workers=persistent_workers and num_workers > 0,
        )

    def epoch(self, batches: list[list[int]], epoch: int) -> DataLoader:
        """The loader over this rank's slice of each of ``batches`` (global batches of epoch ``epoch``)."""
        r, w = D.rank(), D.world_size()
        local = self.batch_size // w
        self._sampler.batches = [b[r * local : (r + 1) * local] for b in batches]
        self._sampler.epoch = epoch
        self._generator.manual_seed(self.seed * 1_000_003 + epoch + 500_009)
        return self.loader

    def close(self) -> None:
        """Stop the worker processes (a later epoch starts new ones)."""
        iterator = self.loader._iterator  # the persistent workers' iterator, None without them
        if iterator is not None:
            iterator._shutdown_workers()
            self.loader._iterator = None

    def __enter__(self) -> TrainingLoader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def training_loader(
    dataset: Dataset, batches: list[list[int]], batch_size: int, seed: int, epoch: int, num_workers: int = 0
) -> DataLoader:
    """A loader over this rank's slice of each global batch (``batch_size`` / world size samples) of ``batches``,
    for one epoch: its workers stop with it (:class:`TrainingLoader` keeps them for the whole run)."""
    return TrainingLoader(dataset, batch_size, seed, num_workers, persistent_workers=False).epoch(batches, epoch)
