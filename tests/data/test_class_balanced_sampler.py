import collections

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from veriloss.data import ClassBalancedSampler


def test_every_class_is_drawn_equally_often_and_samples_uniformly_within():
    labels = np.repeat([5, 9, 2, 7], [100, 10, 1, 39])
    sampler = ClassBalancedSampler(labels, num_samples=40_000, seed=0)
    drawn = list(sampler)
    assert len(drawn) == len(sampler) == 40_000
    per_class = collections.Counter(labels[drawn].tolist())
    # each class has probability 1/4: binomial std √(40000·¼·¾) ≈ 87
    assert all(abs(c - 10_000) < 400 for c in per_class.values()) and len(per_class) == 4
    # within a class every sample has probability 1/count: the single-sample class always yields index 110
    per_index = collections.Counter(drawn)
    assert per_index[110] == per_class[2]
    small = [per_index[i] for i in range(100, 110)]  # class 9: 10 samples, ≈ 1000 draws each
    assert min(small) > 850 and max(small) < 1150


def test_probabilities_match_inverse_class_frequency():
    labels = torch.tensor([0, 0, 0, 1])
    sampler = ClassBalancedSampler(labels, num_samples=60_000, seed=1)
    freq = np.bincount(list(sampler), minlength=4) / 60_000
    expected = np.array([1 / 6, 1 / 6, 1 / 6, 1 / 2])  # ∝ 1/count, normalized
    assert np.allclose(freq, expected, atol=0.01)


def test_deterministic_per_seed_and_epoch_and_default_length():
    labels = np.arange(50) % 7
    a, b = ClassBalancedSampler(labels, seed=3), ClassBalancedSampler(labels, seed=3)
    assert len(a) == 50 and list(a) == list(b) == list(a)
    first = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != first
    assert list(ClassBalancedSampler(labels, seed=4)) != first


def test_as_dataloader_sampler():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    data = TensorDataset(torch.arange(6), labels)
    loader = DataLoader(data, sampler=ClassBalancedSampler(labels, num_samples=12), batch_size=4)
    batches = list(loader)
    assert len(batches) == 3
    for idx, y in batches:
        assert torch.equal(labels[idx], y)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([0, 1],), {"num_samples": 0}, "num_samples"),
        (([0, 1],), {"seed": -2}, "seed"),
        (([],), {}, "empty"),
        (([0.5, 1.0],), {}, "integers"),
    ],
)
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClassBalancedSampler(*args, **kwargs)
