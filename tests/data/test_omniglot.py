import io
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from veriloss.data import Omniglot

ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "omniglot"
BACKGROUND, EVALUATION = ROOT / "images_background.zip", ROOT / "images_evaluation.zip"
pytestmark = pytest.mark.skipif(
    not (BACKGROUND.is_file() and EVALUATION.is_file()), reason=f"Omniglot zips not found under {ROOT}"
)


@pytest.fixture(scope="module")
def background():
    t = time.perf_counter()
    ds = Omniglot(BACKGROUND, image_size=28)
    print(f"\nOmniglot background decode: {time.perf_counter() - t:.1f} s")
    return ds


@pytest.fixture(scope="module")
def evaluation():
    return Omniglot(EVALUATION, image_size=28)


def box_reference(png: bytes, size: int) -> np.ndarray:
    """Pillow's box filter written from its definition (float64), strokes = 255: output pixel i is the mean of the
    input pixels whose centres j + ½ fall in its footprint (i·s, (i + 1)·s], s = n / size."""
    img = 255.0 - np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    n = img.shape[0]
    scale = n / size
    r = np.zeros((size, n))
    for i in range(size):
        for j in range(n):
            r[i, j] = float(i * scale < j + 0.5 <= (i + 1) * scale)
    r /= r.sum(axis=1, keepdims=True)
    return r @ img @ r.T


def test_counts_and_label_order(background, evaluation):
    assert len(background) == 19_280 and background.num_classes == 964
    assert len(evaluation) == 13_180 and evaluation.num_classes == 659
    for ds in (background, evaluation):
        assert torch.equal(ds.labels, torch.arange(ds.num_classes).repeat_interleave(20))
        assert ds.classes == sorted(ds.classes) and ds.channels == 1 and ds.image_size == 28
    assert background.classes[0] == ("Alphabet_of_the_Magi", "character01")
    assert background.classes[-1] == ("Tifinagh", "character55")
    assert evaluation.classes[0] == ("Angelic", "character01")
    assert {a for a, _ in background.classes}.isdisjoint({a for a, _ in evaluation.classes})


def test_pixels_match_a_box_filter_reference(background):
    with zipfile.ZipFile(BACKGROUND) as z:
        names = sorted(n for n in z.namelist() if n.startswith("images_background/Alphabet_of_the_Magi/character01/"))
        for k in (0, 7):
            x, y = background[k]
            assert y == 0 and x.shape == (1, 28, 28) and x.dtype == torch.float32
            ref = box_reference(z.read(names[k]), 28)
            got = (x[0].double() + 1) * 127.5
            assert np.abs(got.numpy() - ref).max() <= 1.0 + 1e-6  # Pillow rounds to uint8 after each pass
            assert ref.max() > 200  # the drawing has strokes


def test_strokes_are_bright_on_a_dark_background(background, evaluation):
    for ds in (background, evaluation):
        x = torch.stack([ds[i][0] for i in range(0, len(ds), 97)])
        assert x.min() == -1 and x.max() == 1
        ink = (x > 0).float().mean()
        assert 0.04 < ink < 0.2  # thin strokes cover a small part of the image
        assert (x[:, :, 0, :] == -1).float().mean() > 0.95  # the border is background


def test_rotations_are_separate_identities(background):
    rot = Omniglot(BACKGROUND, image_size=28, rotations=True)  # decoding is cached per process
    assert len(rot) == 77_120 and rot.num_classes == 3_856
    assert torch.equal(rot.labels, torch.arange(3_856).repeat_interleave(20))
    for label in (0, 1, 2, 3, 4 * 500 + 3):
        char, k = divmod(label, 4)
        for j in (0, 19):
            x, y = rot[label * 20 + j]
            assert y == label
            assert torch.equal(x[0], torch.rot90(background[char * 20 + j][0][0], k))


def test_other_size_and_transform():
    ds = Omniglot(EVALUATION, image_size=14, transform=lambda t: -t)
    x, y = ds[25]
    assert x.shape == (1, 14, 14) and y == 1
    assert x.max() == 1 and x.min() < 0  # negated: background is +1


def test_missing_or_bad_zip(tmp_path):
    with pytest.raises(ValueError, match=r"zip_path .*nope\.zip.* does not exist"):
        Omniglot(tmp_path / "nope.zip")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot open Omniglot zip"):
        Omniglot(tmp_path / "bad.zip")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as z:
        z.writestr("readme.txt", "x")
    with pytest.raises(ValueError, match="no PNG files"):
        Omniglot(tmp_path / "empty.zip")
