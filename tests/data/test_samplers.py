import collections

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from veriloss.data import PKSampler


def labels_with_counts(counts: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts)) * 10 + 7, counts)  # non-contiguous identity values


def test_every_batch_has_p_distinct_identities_with_k_samples_each():
    labels = labels_with_counts([5, 6, 7, 8, 9, 10, 4, 12])
    sampler = PKSampler(labels, p=3, k=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == max(-(-8 // 3), len(labels) // 12)
    for batch in batches:
        assert len(batch) == 12
        assert len(set(batch)) == 12  # every identity here has ≥ k samples: no duplicates
        per_id = collections.Counter(labels[batch].tolist())
        assert len(per_id) == 3 and set(per_id.values()) == {4}
        assert all(0 <= i < len(labels) for i in batch)


def test_identities_with_fewer_than_k_samples_use_all_then_replacement():
    labels = labels_with_counts([2, 1, 6, 6])
    sampler = PKSampler(labels, p=2, k=4, seed=3, batches_per_epoch=30)
    seen_small = 0
    for batch in sampler:
        for ident in set(labels[batch].tolist()):
            members = [i for i in batch if labels[i] == ident]
            assert len(members) == 4
            pool = set(np.flatnonzero(labels == ident).tolist())
            assert set(members) <= pool
            if len(pool) < 4:
                seen_small += 1
                assert set(members) == pool  # all of its samples are in, the rest are repeats
    assert seen_small > 0


def test_min_samples_excludes_small_identities():
    labels = labels_with_counts([1, 1, 3, 4, 5])
    sampler = PKSampler(labels, p=2, k=2, seed=0, min_samples=2, batches_per_epoch=20)
    drawn = {ident for batch in sampler for ident in labels[batch].tolist()}
    assert drawn == {27, 37, 47}
    assert sampler.identities.tolist() == [27, 37, 47]


def test_deterministic_per_seed_and_epoch():
    labels = labels_with_counts([4] * 20)
    a, b = PKSampler(labels, 4, 2, seed=5), PKSampler(labels, 4, 2, seed=5)
    assert list(a) == list(b)
    assert list(a) == list(a)  # iterating again without set_epoch repeats the epoch
    first = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != first
    assert list(PKSampler(labels, 4, 2, seed=6)) != first


def test_each_epoch_covers_all_identities():
    labels = labels_with_counts([3] * 13)  # 13 identities, p = 4 → 4 batches, the last wraps around
    sampler = PKSampler(labels, p=4, k=2, seed=1)
    assert len(sampler) == 4
    for epoch in range(5):
        sampler.set_epoch(epoch)
        drawn = [ident for batch in sampler for ident in set(labels[batch].tolist())]
        assert set(drawn) == set(labels.tolist())
        assert len(drawn) == 16


def test_identity_frequencies_are_balanced_over_many_batches():
    labels = labels_with_counts([50, 3, 20, 8, 8, 30])
    sampler = PKSampler(labels, p=2, k=2, seed=0, batches_per_epoch=600)
    counts = collections.Counter(ident for batch in sampler for ident in set(labels[batch].tolist()))
    # identities are drawn by permutations, so each appears 1200/6 = 200 times up to the wrap-arounds
    assert all(abs(c - 200) <= 2 for c in counts.values())


def test_length_default_is_about_one_pass_over_the_samples():
    labels = labels_with_counts([40] * 5)
    assert len(PKSampler(labels, p=2, k=4)) == 200 // 8
    assert len(PKSampler(labels, p=2, k=4, batches_per_epoch=7)) == 7
    assert len(list(PKSampler(labels, p=2, k=4, batches_per_epoch=7))) == 7


def test_works_as_a_dataloader_batch_sampler_with_tensor_labels():
    labels = torch.arange(6).repeat_interleave(3)
    data = TensorDataset(torch.arange(18).float(), labels)
    loader = DataLoader(data, batch_sampler=PKSampler(labels, p=3, k=2, seed=0))
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    for values, y in batches:
        assert values.shape == (6,)
        assert torch.equal(labels[values.long()], y)
        assert sorted(collections.Counter(y.tolist()).values()) == [2, 2, 2]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((labels_with_counts([3, 3]), 3, 2), {}, "only 2 identities.*p=3"),
        ((labels_with_counts([1, 1, 1, 5]), 2, 2), {"min_samples": 2}, "only 1 identities"),
        ((labels_with_counts([3, 3]), 1, 2), {}, "p must be an integer ≥ 2"),
        ((labels_with_counts([3, 3]), 2, 1), {}, "k must be an integer ≥ 2"),
        ((labels_with_counts([3, 3]), 2, 2.0), {}, "k must be"),
        ((labels_with_counts([3, 3]), 2, 2), {"seed": -1}, "seed"),
        ((labels_with_counts([3, 3]), 2, 2), {"batches_per_epoch": 0}, "batches_per_epoch"),
        ((labels_with_counts([3, 3]), 2, 2), {"min_samples": 0}, "min_samples"),
        (([], 2, 2), {}, "empty"),
        ((np.array([0.0, 1.0]), 2, 2), {}, "integers"),
        ((np.zeros((2, 2), dtype=int), 2, 2), {}, "1-D"),
    ],
)
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        PKSampler(*args, **kwargs)


def test_bad_epoch():
    with pytest.raises(ValueError, match="epoch"):
        PKSampler(labels_with_counts([3, 3]), 2, 2).set_epoch(-1)
