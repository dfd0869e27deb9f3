import functools

import pytest
import torch

from veriloss.data.augment import (
    Compose,
    RandomAffine,
    RandomHorizontalFlip,
    RandomResizedCrop,
    apply_transform,
    takes_generator,
)


def image(c=1, h=20, w=24, seed=0):
    return torch.rand(c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_zero_parameters_are_the_identity():
    x = image(3)
    assert torch.allclose(RandomAffine()(x), x, atol=1e-5)
    sq = image(3, 20, 20)
    assert torch.allclose(RandomResizedCrop(20, scale=(1.0, 1.0), ratio=(1.0, 1.0))(sq), sq, atol=1e-5)
    assert torch.equal(RandomHorizontalFlip(0.0)(x), x)
    assert torch.equal(RandomHorizontalFlip(1.0)(x), x.flip(-1))
    assert torch.equal(Compose([])(x), x)


def test_affine_pure_translation_and_rotation_move_pixels_exactly():
    x = torch.full((1, 16, 16), -1.0)
    x[0, 5, 7] = 1.0
    # translate = (0.25, 0): a shift tx ~ U(−4, 4) pixels along x only; bilinear spreads the bright pixel (7, 5)
    # over the two columns around 7 + tx with weights summing to 1, and nothing else moves
    shift = RandomAffine(translate=(0.25, 0.0))
    shifts = set()
    for seed in range(4):
        out = shift(x, generator=torch.Generator().manual_seed(seed)) + 1  # background 0, the pixel's weight × 2
        lit = torch.nonzero(out > 1e-5)
        assert set(lit[:, 1].tolist()) == {5} and out.sum().item() == pytest.approx(2.0, abs=1e-4)
        lo = int(lit[:, 2].min())
        col = lo + out[0, 5, lo + 1].item() / 2 if lo + 1 < 16 else lo  # the weight of the right column is col − lo
        assert abs(col - 7) <= 4 + 1e-5 and lit[:, 2].max() - lo <= 1
        shifts.add(round(col, 4))
    assert len(shifts) == 4  # every generator its own shift
    # rotation by exactly 90° about the centre: a rot90 of the image (counter-clockwise in (x right, y down) is
    # clockwise on screen: torch.rot90 with k = −1 over (H, W))
    rot = RandomAffine(degrees=(90.0, 90.0))(x)
    assert torch.allclose(rot, torch.rot90(x, -1, dims=(1, 2)), atol=1e-5)


def test_scale_zooms_about_the_centre_and_fill_is_background():
    x = torch.ones(1, 8, 8)
    out = RandomAffine(scale=(0.5, 0.5))(x)
    # the image shrinks to the central 4×4 pixels; outside is the fill (−1)
    assert torch.allclose(out[0, 2:6, 2:6], torch.ones(4, 4), atol=1e-5)
    assert torch.allclose(out[0, 0], -torch.ones(8)) and torch.allclose(out[0, :, 0], -torch.ones(8))


def test_resized_crop_of_a_known_region():
    x = torch.arange(64, dtype=torch.float32).reshape(1, 8, 8)
    crop = RandomResizedCrop(4, scale=(0.25, 0.25), ratio=(1.0, 1.0))
    torch.manual_seed(3)
    out = crop(x)
    torch.manual_seed(3)
    top, left, h, w = crop._region(8, 8)
    assert (h, w) == (4, 4)
    assert torch.equal(out, x[:, top : top + 4, left : left + 4])  # same size: exact pixel centres


def test_deterministic_under_manual_seed_and_per_sample():
    pipeline = Compose(
        [RandomHorizontalFlip(0.5), RandomAffine(15, (0.1, 0.1), (0.9, 1.1), 10), RandomResizedCrop(16, (0.5, 1))]
    )
    x = image(3)
    torch.manual_seed(7)
    a = [pipeline(x) for _ in range(4)]
    torch.manual_seed(7)
    b = [pipeline(x) for _ in range(4)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert all(u.shape == (3, 16, 16) for u in a)
    assert not torch.equal(a[0], a[1])


def test_transforms_draw_only_from_the_given_generator():
    """A generator's seed fixes the output; the global RNG is neither read nor advanced."""
    pipeline = Compose(
        [RandomHorizontalFlip(0.5), RandomAffine(15, (0.1, 0.1), (0.9, 1.1), 10), RandomResizedCrop(16, (0.5, 1))]
    )
    x = image(3)
    for t in [*pipeline.transforms, pipeline]:
        torch.manual_seed(0)
        before = torch.get_rng_state()
        a = t(x, generator=torch.Generator().manual_seed(11))
        assert torch.equal(before, torch.get_rng_state())
        torch.manual_seed(123)  # a different global state changes nothing
        assert torch.equal(a, t(x, generator=torch.Generator().manual_seed(11)))
    outs = [pipeline(x, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    assert all(not torch.equal(outs[0], o) for o in outs[1:])
    g = torch.Generator().manual_seed(5)
    assert not torch.equal(pipeline(x, generator=g), pipeline(x, generator=g))  # the stream advances


def test_apply_transform_passes_the_generator_or_forks_the_global_rng():
    x = image()

    def noisy(im):  # a user transform without a generator parameter: global RNG
        return im + torch.rand(im.shape)

    class Seeded:
        def __call__(self, im, generator=None):
            return im + torch.rand(im.shape, generator=generator)

    assert takes_generator(Seeded()) and takes_generator(Seeded().__call__) and takes_generator(RandomAffine())
    assert not takes_generator(noisy) and not takes_generator(functools.partial(noisy)) and not takes_generator(abs)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = apply_transform(noisy, x, torch.Generator().manual_seed(3))
    assert torch.equal(before, torch.get_rng_state())  # forked and restored
    assert torch.equal(a, apply_transform(noisy, x, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, apply_transform(noisy, x, torch.Generator().manual_seed(4)))
    b = apply_transform(Seeded(), x, torch.Generator().manual_seed(3))
    assert torch.equal(b, x + torch.rand(x.shape, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(before, torch.get_rng_state())
    # a Compose mixes both kinds, each drawing from the one generator
    c = Compose([Seeded(), noisy])
    assert torch.equal(
        c(x, generator=torch.Generator().manual_seed(9)), c(x, generator=torch.Generator().manual_seed(9))
    )
    torch.manual_seed(1)
    u = apply_transform(noisy, x)  # no generator: the transform as it is, on the global RNG
    torch.manual_seed(1)
    assert torch.equal(u, noisy(x))


def test_flip_frequency():
    torch.manual_seed(0)
    x = image()
    flips = sum(torch.equal(RandomHorizontalFlip(0.3)(x), x.flip(-1)) for _ in range(2000))
    assert abs(flips / 2000 - 0.3) < 0.04


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: RandomAffine(degrees=-1), "degrees"),
        (lambda: RandomAffine(translate=(0.1,)), "translate"),
        (lambda: RandomAffine(translate=(1.5, 0)), "translate"),
        (lambda: RandomAffine(scale=(0, 1)), "scale"),
        (lambda: RandomAffine(scale=(1.2, 1.0)), "scale"),
        (lambda: RandomAffine(shear=95), "shear"),
        (lambda: RandomResizedCrop(0), "size"),
        (lambda: RandomResizedCrop(8, scale=(0.5, 1.5)), "scale"),
        (lambda: RandomHorizontalFlip(1.5), "p"),
        (lambda: Compose([1]), "callable"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_image():
    with pytest.raises(ValueError, match="C×H×W"):
        RandomAffine()(torch.zeros(8, 8))
