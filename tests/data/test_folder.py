import re

import numpy as np
import pytest
import torch
from PIL import Image

from veriloss.data import ImageFolder


def make_folder(root, spec, size=10, seed=0):
    """spec: {identity: number of images}; returns {path: uint8 H×W×3 array}."""
    rng = np.random.default_rng(seed)
    written = {}
    for ident, n in spec.items():
        (root / ident).mkdir(parents=True)
        for j in range(n):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            path = root / ident / f"img{j}.png"
            Image.fromarray(arr).save(path)
            written[path] = arr
    return written


def test_labels_follow_sorted_folders_and_pixels_are_exact(tmp_path):
    written = make_folder(tmp_path, {"bob": 2, "alice": 3, "carol": 1})
    (tmp_path / "empty").mkdir()
    (tmp_path / "alice" / "notes.txt").write_text("not an image")
    ds = ImageFolder(tmp_path, image_size=10)
    assert ds.classes == ["alice", "bob", "carol"] and ds.num_classes == 3
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 2] and len(ds) == 6
    assert ds.channels == 3 and ds.image_size == 10
    for i, path in enumerate(ds.paths):
        x, y = ds[i]
        assert y == ds.classes.index(path.parent.name)
        assert x.dtype == torch.float32 and x.shape == (3, 10, 10)
        expected = torch.from_numpy(written[path]).permute(2, 0, 1).float() / 127.5 - 1
        assert torch.allclose(x, expected, atol=1e-6)


def test_grayscale_resize_and_transform(tmp_path):
    written = make_folder(tmp_path, {"a": 1}, size=16)
    ds = ImageFolder(tmp_path, image_size=8, grayscale=True, transform=lambda t: t * 0)
    assert ds.channels == 1
    x, _ = ds[0]
    assert x.shape == (1, 8, 8) and torch.equal(x, torch.zeros(1, 8, 8))
    plain = ImageFolder(tmp_path, image_size=8, grayscale=True)[0][0]
    ref = Image.fromarray(next(iter(written.values()))).convert("L").resize((8, 8), Image.BILINEAR)
    assert torch.allclose(plain, torch.from_numpy(np.array(ref)).float()[None] / 127.5 - 1, atol=1e-6)


def test_corrupt_file_is_named_and_skip_corrupt_drops_it(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2})
    bad = tmp_path / "a" / "img1.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated PNG
    ds = ImageFolder(tmp_path, image_size=10)
    assert len(ds) == 4  # lazy: nothing decoded yet
    with pytest.raises(ValueError, match=re.escape(f"cannot decode image {bad}")):
        ds[1]
    with pytest.raises(ValueError, match=r"(?s)1 of 4 images cannot be read.*img1\.png"):
        ds.verify()
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        kept = ImageFolder(tmp_path, image_size=10, skip_corrupt=True)
    assert len(kept) == 3 and kept.labels.tolist() == [0, 1, 1] and kept.num_classes == 2
    assert bad not in kept.paths and len(kept.skipped) == 1 and str(bad) in kept.skipped[0]
    assert kept.verify() == []
    assert all(kept[i][0].shape == (3, 10, 10) for i in range(3))


def test_missing_or_empty_root(tmp_path):
    with pytest.raises(ValueError, match=r"root .*missing.* is not a directory"):
        ImageFolder(tmp_path / "missing", 10)
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="no identity folders"):
        ImageFolder(tmp_path, 10)
    with pytest.raises(ValueError, match="image_size"):
        ImageFolder(tmp_path, 0)
