"""Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015) straight from its official zips."""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import torch
from PIL import Image
from torch.utils.data import Dataset

from ._image import check_image_size, check_transform, decode_image, to_signed_unit

__all__ = ["Omniglot"]


@functools.lru_cache(maxsize=4)
def _decode_zip(path: str, mtime_ns: int, size_bytes: int, image_size: int) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """All PNGs of an Omniglot zip: uint8 images (N, S, S) with strokes 255, labels (N,), class names.

    Cached per (path, modification time, size, image_size), so building the same split twice decodes once.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"cannot open Omniglot zip {path!r}: {exc}") from None
    with archive:
        members: dict[tuple[str, str], list[str]] = {}
        for name in archive.namelist():
            parts = PurePosixPath(name).parts
            if name.lower().endswith(".png") and len(parts) >= 3:
                members.setdefault((parts[-3], parts[-2]), []).append(name)
        if not members:
            raise ValueError(
                f"{path!r} holds no PNG files in <alphabet>/<character>/ folders; expected Omniglot's "
                "images_background.zip or images_evaluation.zip"
            )
        classes = tuple(sorted(members))
        count = sum(len(v) for v in members.values())
        images = torch.empty(count, image_size, image_size, dtype=torch.uint8)
        labels = torch.empty(count, dtype=torch.long)
        i = 0
        for label, key in enumerate(classes):
            for name in sorted(members[key]):
                try:
                    data = archive.read(name)
                except (OSError, zipfile.BadZipFile) as exc:
                    raise ValueError(f"cannot read {name!r} in {path!r}: {exc}") from None
                images[i] = 255 - decode_image(data, image_size, "L", Image.BOX)[0]
                labels[i] = label
                i += 1
    return images, labels, classes


class Omniglot(Dataset):
    """Omniglot characters from ``images_background.zip`` or ``images_evaluation.zip``, read without unpacking.

    Identities are the characters (alphabet, characterNN), labelled in sorted (alphabet, character) order. Every
    105×105 drawing is resized to ``image_size``² with a box filter (``Image.BOX``) and inverted so strokes are bright:
    uint8 stroke = 255, background = 0, which items map to [-1, 1] by (x/255 − 0.5)/0.5 (background −1, strokes +1);
    then ``transform``. All images are decoded once at construction into a uint8 cache (cached per process for
    the same file and size), so ``__getitem__`` is a copy.

    ``rotations=True``: each character at 0°, 90°, 180° and 270° (counter-clockwise, ``torch.rot90``) is its own
    identity, label = 4·character + k for rotation k·90°, as in the usual few-shot protocol (background: 964×4 =
    3,856 identities, 77,120 items). Items are ordered by label.
    Counts: background 19,280 images / 964 characters; evaluation 13,180 / 659.
    """

    channels = 1

    def __init__(
        self,
        zip_path: str | Path,
        image_size: int = 28,
        rotations: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        check_image_size(image_size)
        check_transform(transform)
        zip_path = Path(zip_path)
        if not zip_path.is_file():
            raise ValueError(
                f"zip_path {str(zip_path)!r} does not exist; expected Omniglot's images_background.zip or "
                "images_evaluation.zip"
            )
        stat = zip_path.stat()
        images, base_labels, classes = _decode_zip(str(zip_path.resolve()), stat.st_mtime_ns, stat.st_size, image_size)
        self.zip_path = zip_path
        self.image_size = image_size
        self.rotations = bool(rotations)
        self.transform = transform
        self.classes: list[tuple[str, str]] = list(classes)
        self._images = images
        n_chars = len(classes)
        if self.rotations:
            # item order: character, then rotation, then drawing → labels sorted
            counts = torch.bincount(base_labels, minlength=n_chars)
            starts = torch.cumsum(counts, 0) - counts
            char = torch.arange(n_chars).repeat_interleave(4 * counts)
            first = torch.repeat_interleave(torch.cumsum(4 * counts, 0) - 4 * counts, 4 * counts)
            within = torch.arange(len(char)) - first  # position inside the character's 4·count items
            rot = within // counts[char]
            self._source = starts[char] + within % counts[char]
            self._rotation = rot
            self.labels = 4 * char + rot
            self.num_classes = 4 * n_chars
        else:
            self._source = torch.arange(len(base_labels))
            self._rotation = torch.zeros(len(base_labels), dtype=torch.long)
            self.labels = base_labels
            self.num_classes = n_chars

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self._images[self._source[index]]
        k = int(self._rotation[index])
        if k:
            image = torch.rot90(image, k, dims=(0, 1))
        image = to_signed_unit(image.unsqueeze(0))
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])
