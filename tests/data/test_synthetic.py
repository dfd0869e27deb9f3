import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from veriloss.data import SyntheticIdentities
from veriloss.data.augment import RandomAffine
from veriloss.data.synthetic import stroke_density


def stack(ds, indices):
    return torch.stack([x for x, _ in ds.__getitems__(indices)])


def test_items_shape_range_and_labels():
    ds = SyntheticIdentities(7, 3, image_size=24, seed=1)
    assert len(ds) == 21 and ds.num_classes == 7 and ds.channels == 1 and ds.image_size == 24
    assert torch.equal(ds.labels, torch.arange(7).repeat_interleave(3))
    for i in (0, 5, 20, -1):
        x, y = ds[i]
        assert x.shape == (1, 24, 24) and x.dtype == torch.float32
        assert y == int(ds.labels[i]) and isinstance(y, int)
        assert x.min() >= -1 and x.max() <= 1
        # strokes bright on a dark background: most pixels near −1, some ink above 0
        assert (x < -0.5).float().mean() > 0.6 and (x > 0).float().mean() > 0.02


def test_deterministic_and_getitem_equals_batched_render():
    a = SyntheticIdentities(20, 4, seed=3)
    b = SyntheticIdentities(20, 4, seed=3)
    idx = [0, 7, 33, 79]
    assert torch.equal(stack(a, idx), stack(b, idx))
    assert torch.equal(torch.stack([a[i][0] for i in idx]), stack(a, idx))  # batch composition does not matter
    c = SyntheticIdentities(20, 4, seed=4)
    assert not torch.allclose(stack(a, idx), stack(c, idx))


def test_identity_offset_selects_the_same_glyphs():
    base = SyntheticIdentities(10, 5, seed=2)
    shifted = SyntheticIdentities(4, 5, seed=2, identity_offset=6)
    assert torch.equal(stack(base, list(range(30, 50))), stack(shifted, list(range(20))))
    assert shifted[0][1] == 0  # labels restart at 0


def test_samples_of_one_identity_correlate_more_than_samples_of_different_identities():
    ds = SyntheticIdentities(40, 8, seed=0)
    x = stack(ds, list(range(len(ds)))).reshape(len(ds), -1).double()
    x = x - x.mean(dim=1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True)
    corr = x @ x.T
    same = ds.labels[:, None] == ds.labels[None, :]
    off_diag = ~torch.eye(len(ds), dtype=torch.bool)
    intra, inter = corr[same & off_diag].mean(), corr[~same].mean()
    assert intra > inter + 0.15
    # real intra-class variation: no two samples of an identity are (nearly) the same image
    assert corr[same & off_diag].max() < 0.98
    # and different identities have different glyphs
    assert inter < 0.2


def test_a_million_identities_construct_instantly_and_index_at_the_end():
    t = time.perf_counter()
    ds = SyntheticIdentities(1_000_000, 20, seed=0)
    assert time.perf_counter() - t < 0.05
    assert len(ds) == 20_000_000 and ds.num_classes == 1_000_000
    x, y = ds[len(ds) - 1]
    assert y == 999_999 and x.shape == (1, 32, 32)
    assert torch.equal(x, ds[-1][0])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_dataloader_uses_batched_rendering_and_transform():
    ds = SyntheticIdentities(6, 4, image_size=16, seed=0, transform=lambda im: im.flip(-1))
    ref = SyntheticIdentities(6, 4, image_size=16, seed=0)
    x, y = next(iter(DataLoader(ds, batch_size=8, shuffle=False)))
    assert x.shape == (8, 1, 16, 16) and torch.equal(y, ds.labels[:8])
    assert torch.equal(x, stack(ref, list(range(8))).flip(-1))


def test_stroke_density_matches_distance_to_segment():
    # a straight stroke from (4, 7) to (20, 13) in pixel units, σ = 1.1 px, densely sampled
    size, sigma = 24, 1.1
    t = torch.linspace(0, 1, 40)
    px = (4 + 16 * t).reshape(1, 1, -1)
    py = (7 + 6 * t).reshape(1, 1, -1)
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    density = stroke_density(px, py, torch.tensor([[sigma]]), centres)[0].double()
    # brute-force float64 reference: exp(−d²/2σ²) where the pixel projects well inside the segment
    a, b = np.array([4.0, 7.0]), np.array([20.0, 13.0])
    checked = 0
    for iy in range(size):
        for ix in range(size):
            p = np.array([ix + 0.5, iy + 0.5])
            u = np.dot(p - a, b - a) / np.dot(b - a, b - a)
            if 3 * sigma / 17.1 < u < 1 - 3 * sigma / 17.1:
                d = np.linalg.norm(p - (a + u * (b - a)))
                assert density[iy, ix].item() == pytest.approx(np.exp(-(d**2) / (2 * sigma**2)), abs=2e-3)
                checked += 1
    assert checked > 150
    # an inactive stroke (σ = 0) draws nothing
    assert stroke_density(px, py, torch.zeros(1, 1), centres).abs().max() == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_identities": 0, "samples_per_identity": 2}, "num_identities"),
        ({"num_identities": 2, "samples_per_identity": 0}, "samples_per_identity"),
        ({"num_identities": 2, "samples_per_identity": 2, "image_size": 4}, "image_size"),
        ({"num_identities": 2, "samples_per_identity": 2, "seed": -1}, "seed"),
        ({"num_identities": 2, "samples_per_identity": 2, "identity_offset": 1.5}, "identity_offset"),
        ({"num_identities": 2, "samples_per_identity": 2, "transform": 3}, "transform"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticIdentities(**kwargs)


def test_images_returns_the_batch_without_transform():
    ds = SyntheticIdentities(5, 3, image_size=16, seed=2, transform=lambda im: im * 0)
    ref = SyntheticIdentities(5, 3, image_size=16, seed=2)
    x, y = ds.images([14, 0, -1])
    assert x.shape == (3, 1, 16, 16) and y.tolist() == [4, 0, 4]
    assert torch.equal(x, stack(ref, [14, 0, 14]))
    assert ds.images([])[0].shape == (0, 1, 16, 16)
    assert torch.equal(ds[3][0], torch.zeros(1, 16, 16))


def test_items_draw_each_transform_from_its_own_generator():
    """items(indices, generators): one batched render, item k's transform from generators[k]; the same as item(i, g)
    one at a time, whatever the batch; no transform: no random numbers (random_items False)."""
    aug = SyntheticIdentities(5, 3, image_size=16, seed=2, transform=RandomAffine(20, (0.1, 0.1)))
    assert aug.random_items and not SyntheticIdentities(5, 3, image_size=16).random_items
    torch.manual_seed(0)
    before = torch.get_rng_state()
    batch = aug.items([4, 9, 4], [torch.Generator().manual_seed(s) for s in (1, 2, 3)])
    assert [y for _, y in batch] == [1, 3, 1]
    for (x, _), (i, s) in zip(batch, [(4, 1), (9, 2), (4, 3)]):
        assert torch.equal(x, aug.item(i, torch.Generator().manual_seed(s))[0])
    assert not torch.equal(batch[0][0], batch[2][0])  # same sample, other generator
    assert torch.equal(before, torch.get_rng_state())
