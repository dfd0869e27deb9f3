"""The training data path: per-sample generators seeded by (seed, epoch, index), whatever the batch, order or worker;
the global RNG untouched; nothing seeded for datasets without randomness; persistent workers; pinned memory."""

from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import Dataset

from veriloss.data import build_dataset
from veriloss.train.loader import SeededView, TrainingLoader, sample_seed, training_loader


def _images(augment: bool = True):
    return build_dataset(
        {"name": "synthetic", "image_size": 16, "train_identities": 6, "samples_per_identity": 4, "augment": augment},
        "train",
    )


def _speakers():
    return build_dataset(
        {"name": "synthetic-audio", "train_speakers": 4, "utterances_per_speaker": 3, "seconds": 0.5,
         "crop_seconds": 0.25, "augment": True},
        "train",
    )  # fmt: skip


def _by_index(loader, batches) -> dict[int, torch.Tensor]:
    out = {}
    for (x, _), batch in zip(loader, batches):
        out.update({i: xi for i, xi in zip(batch, x)})
    return out


def test_sample_seed_is_a_fixed_integer_mix():
    """The same in every process and Python (no hash()); these values may never change, or resumed runs would."""
    assert sample_seed(0, 0, 0) == 1279368494785126216
    assert sample_seed(7, 3, 12345) == 3615091429455287212
    seeds = {sample_seed(s, e, i) for s in range(3) for e in range(3) for i in range(100)}
    assert len(seeds) == 900 and all(0 <= v < 2**63 for v in seeds)


@pytest.mark.parametrize("make", [_images, _speakers], ids=["images", "audio"])
def test_a_sample_depends_only_on_seed_epoch_and_index(make):
    """The same sample drawn in other batches, another order, with workers or persistent workers: the same tensor;
    another epoch: another draw."""
    ds = make()
    a = [[0, 5, 9, 2], [7, 1, 3, 11]]
    b = [[11, 9], [3, 0, 7], [2, 5, 1]]
    ref = _by_index(training_loader(ds, a, 4, seed=3, epoch=1), a)
    others = [
        _by_index(training_loader(ds, b, 4, seed=3, epoch=1), b),
        _by_index(training_loader(ds, [x[::-1] for x in a[::-1]], 4, 3, 1), [x[::-1] for x in a[::-1]]),
        _by_index(training_loader(ds, a, 4, seed=3, epoch=1, num_workers=2), a),
    ]
    with TrainingLoader(ds, 4, seed=3, num_workers=2) as loader:
        list(loader.epoch(a, 0))  # another epoch first: the workers carry no epoch state
        others.append(_by_index(loader.epoch(b, 1), b))
    for other in others:
        assert all(torch.equal(ref[i], other[i]) for i in ref)
    again = _by_index(training_loader(ds, a, 4, seed=3, epoch=2), a)
    assert all(not torch.equal(ref[i], again[i]) for i in ref)
    reseeded = _by_index(training_loader(ds, a, 4, seed=4, epoch=1), a)
    assert all(not torch.equal(ref[i], reseeded[i]) for i in ref)


def test_loading_leaves_the_global_rng_alone():
    for ds in (_images(), _images(augment=False), _speakers()):
        torch.manual_seed(0)
        before = torch.get_rng_state()
        for _ in training_loader(ds, [[0, 1, 2, 3], [4, 5, 6, 7]], 4, seed=0, epoch=0):
            pass
        assert torch.equal(before, torch.get_rng_state())


def test_no_generator_for_a_dataset_without_randomness(monkeypatch):
    def refuse(*_):
        raise AssertionError("a generator was made for a dataset whose items draw nothing")

    monkeypatch.setattr(SeededView, "generator", refuse)
    ds = _images(augment=False)
    assert not ds.random_items
    x, y = next(iter(training_loader(ds, [[3, 1, 4]], 3, seed=0, epoch=0)))
    assert torch.equal(x, torch.stack([ds[i][0] for i in (3, 1, 4)])) and y.tolist() == [0, 0, 1]


class _GlobalRandom(Dataset):
    """A dataset that knows nothing of generators: it draws from the global RNG."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        return torch.rand(3), i


class _Pid(Dataset):
    """Items drawn from their generator, with the process that read them."""

    random_items = True

    def __len__(self) -> int:
        return 8

    def item(self, i: int, generator: torch.Generator):
        return torch.tensor([float(os.getpid()), float(torch.rand((), generator=generator))]), i


def test_a_dataset_without_generators_is_read_under_a_forked_seeded_global_rng():
    ds = _GlobalRandom()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = _by_index(training_loader(ds, [[0, 1, 2, 3]], 4, seed=1, epoch=0), [[0, 1, 2, 3]])
    b = _by_index(training_loader(ds, [[3, 2], [1, 0]], 2, seed=1, epoch=0, num_workers=2), [[3, 2], [1, 0]])
    assert all(torch.equal(a[i], b[i]) for i in a) and not torch.equal(a[0], a[1])
    assert torch.equal(before, torch.get_rng_state())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sample_seed(1, 0, 2))
        assert torch.equal(a[2], torch.rand(3))


def test_persistent_workers_serve_every_epoch_and_an_epoch_left_early():
    ds, batches = _Pid(), [[0, 1], [2, 3], [4, 5], [6, 7]]
    with TrainingLoader(ds, 2, seed=0, num_workers=2) as loader:
        assert loader.loader.persistent_workers
        assert loader.loader.pin_memory == torch.cuda.is_available()
        pids, draws = set(), {}
        for epoch in range(3):
            it = iter(loader.epoch(batches, epoch))
            x, _ = next(it)  # leave each epoch after its first batch, but the last
            rest = list(it) if epoch == 2 else []
            for xb in [x, *(r[0] for r in rest)]:
                pids.update(int(p) for p in xb[:, 0].tolist())
            draws[epoch] = x[:, 1]
        assert len(pids) == 2 and os.getpid() not in pids  # the same two workers throughout
        assert not torch.equal(draws[0], draws[1])
        resumed = next(iter(loader.epoch(batches[1:], 1)))[0]  # a resume inside epoch 1
        direct = list(training_loader(ds, batches, 2, seed=0, epoch=1))[1][0]
        assert torch.equal(resumed[:, 1], direct[:, 1])
    assert loader.loader._iterator is None  # closed: the workers are stopped
    assert not TrainingLoader(ds, 2, seed=0).loader.persistent_workers  # no workers: nothing to keep
