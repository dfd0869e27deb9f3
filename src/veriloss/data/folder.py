"""Image folders: ``root/<identity>/**/<image>``, one sub-folder per identity."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ._image import DecodedImageDataset, check_image_size, check_transform, decode_image
from .corrupt import CorruptSampleError

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class ImageFolder(DecodedImageDataset):
    """One sub-folder of ``root`` per identity; labels follow the sorted folder names (``classes[label]``).

    Images are the files under each identity folder (searched recursively, sorted by path) whose suffix is in
    ``extensions`` (case-insensitive); folders without any are not identities. Each item is decoded lazily, converted
    to RGB (3 channels) or, with ``grayscale``, to L (1 channel), resized to ``image_size``² (bilinear, antialiased when
    shrinking) and mapped to [-1, 1] by (x/255 − 0.5)/0.5; then ``transform``.

    A corrupt, empty or unreadable image raises :class:`CorruptSampleError` naming its path when the item is loaded;
    :meth:`verify` checks every file's header and structure up front (``decode=True``: decodes them too) and reports
    every bad path. With ``skip_corrupt=True`` the construction runs ``verify(decode=True)`` (decoding every image
    once), drops the bad files, lists them in ``skipped`` and warns.
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int,
        grayscale: bool = False,
        skip_corrupt: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ):
        super().__init__()
        check_image_size(image_size)
        check_transform(transform)
        root = Path(root)
        if not root.is_dir():
            raise ValueError(
                f"root {str(root)!r} is not a directory; expected a folder with one sub-folder of images per identity"
            )
        exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
        if not exts:
            raise ValueError("extensions is empty; give the image file suffixes to read, e.g. ('.jpg', '.png')")
        classes, paths, labels = [], [], []
        for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name):
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in exts and p.is_file())
            if files:
                labels.extend([len(classes)] * len(files))
                classes.append(folder.name)
                paths.extend(files)
        if not classes:
            raise ValueError(
                f"no identity folders with images ({', '.join(exts)}) under {str(root)!r}; expected "
                "root/<identity>/<image files>"
            )
        self.root = root
        self.classes: list[str] = classes
        self.paths: list[Path] = paths
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.num_classes = len(classes)
        self.channels = 1 if grayscale else 3
        self.image_size = image_size
        self.skip_corrupt = bool(skip_corrupt)
        self.transform = transform
        self._mode = "L" if grayscale else "RGB"
        if self.skip_corrupt:
            self.verify(decode=True)

    def _origin(self, index: int) -> tuple[str, dict]:
        return str(self.paths[index]), {"path": self.paths[index]}

    def _encoded(self, index: int) -> bytes:
        try:
            return self.paths[index].read_bytes()
        except OSError as exc:
            path = self.paths[index]
            raise CorruptSampleError(f"cannot read image {path}: {exc.strerror or exc}", path) from None

    def _decode(self, index: int) -> torch.Tensor:
        return decode_image(self.paths[index], self.image_size, self._mode)

    def _keep(self, keep: np.ndarray) -> None:
        self.paths = [self.paths[i] for i in keep.tolist()]
        self.labels = self.labels[torch.from_numpy(keep)]
