import math

import pytest
import torch

from veriloss.data.augment import Compose, RandomAffine, RandomHorizontalFlip, RandomResizedCrop


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
    x[0, 5, 3] = 1.0
    # translate = (0.25, 0) with the draw U(−0.25, 0.25)·W pinned by a range of one value: use 4-pixel shift
    shift = RandomAffine(translate=(0.25, 0.0))
    torch.manual_seed(0)
    u = torch.rand(())  # the same draw the transform makes for the x shift (degrees/shear/scale draw nothing)
    torch.manual_seed(0)
    out = shift(x)
    tx = (-0.25 + 0.5 * float(u)) * 16
    # bilinear: the bright pixel is spread over the two columns around 3 + tx, weights summing to 1
    col = 3 + tx
    lo = math.floor(col)
    assert out[0, 5, lo].item() + 1 == pytest.approx(2 * (1 - (col - lo)), abs=1e-5)
    assert out[0, 5, lo + 1].item() + 1 == pytest.approx(2 * (col - lo), abs=1e-5)
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
