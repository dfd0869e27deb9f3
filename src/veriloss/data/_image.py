"""Image decoding (Pillow), the [-1, 1] convention, the base of image datasets with a ``transform`` (seeded items),
and the base of datasets that decode an image per item."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .augment import apply_transform
from .corrupt import CorruptSampleError, check_image_bytes, pillow_error, report

__all__ = ["DecodedImageDataset", "TransformedImages", "decode_image", "to_signed_unit"]


def decode_image(
    source: bytes | str | Path, image_size: int, mode: str = "RGB", resample: int = Image.BILINEAR
) -> torch.Tensor:
    """Decode an encoded image (bytes or a file path) to a uint8 tensor C×S×S (C = 1 for mode "L", 3 for "RGB").

    The image is converted to ``mode`` and resized to ``image_size``² with ``resample`` when its size differs
    (Pillow's resize filters are antialiased when they shrink). Raises :class:`CorruptSampleError` naming the source
    (``path`` set for a file) when Pillow cannot read it (empty, truncated or corrupt data, not an image).
    """
    is_file = isinstance(source, (str, Path))
    name = str(source) if is_file else f"<{len(source)} bytes>"
    try:
        with Image.open(source if is_file else io.BytesIO(source)) as img:
            img = img.convert(mode)
            if img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), resample)
            arr = np.asarray(img, dtype=np.uint8)
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        empty = len(source) == 0 if not is_file else os.path.isfile(source) and os.path.getsize(source) == 0
        what = "empty file (0 bytes)" if empty else pillow_error(exc)
        raise CorruptSampleError(f"cannot decode image {name}: {what}", source if is_file else None) from None
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def to_signed_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float32 [-1, 1]: x/255 ∈ [0, 1], then (x − 0.5)/0.5. The convention of every dataset here."""
    return image.float().div_(127.5).sub_(1.0)


def check_transform(transform: object) -> None:
    if transform is not None and not callable(transform):
        raise ValueError(f"transform must be callable or None, got {type(transform).__name__}")


def check_image_size(image_size: object) -> None:
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")


class TransformedImages(Dataset):
    """Image datasets whose items are an image, then ``transform``. :meth:`item` draws the transform's random
    numbers from a ``torch.Generator`` (the training loader's per-sample seeds, :func:`apply_transform`);
    ``dataset[i]`` is ``item(i)``, from torch's global generator. ``random_items``: whether there is a transform
    (without one, the loader reads items as they are). Subclasses give ``_image(index)``."""

    transform: Callable[[torch.Tensor], torch.Tensor] | None
    labels: torch.Tensor

    @property
    def random_items(self) -> bool:
        return self.transform is not None

    def _image(self, index: int) -> torch.Tensor:
        """The image of item ``index`` before ``transform``."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.item(index)

    def item(self, index: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
        """Item ``index`` with ``transform`` drawing from ``generator`` (None: torch's global generator)."""
        image = self._image(index)
        if self.transform is not None:
            image = apply_transform(self.transform, image, generator)
        return image, int(self.labels[index])


class DecodedImageDataset(TransformedImages):
    """Items decoded one at a time from encoded images; subclasses give ``_encoded(i)`` (the image bytes),
    ``_decode(i)`` and ``_keep(positions)``.

    Items are ``(image, label)``: float32 C×S×S in [-1, 1] (see :func:`to_signed_unit`), then ``transform``
    (:class:`TransformedImages`). A corrupt or unreadable image raises :class:`CorruptSampleError` naming where it is.
    :meth:`verify` checks every image (headers and structure; ``decode=True``: decodes them too): with
    ``skip_corrupt`` False it raises listing the bad ones; with True it drops them from the dataset, lists them in
    ``skipped`` and warns (subclasses run ``verify(decode=True)`` at construction when ``skip_corrupt`` is True).
    Labels of kept items never change; ``num_classes`` stays the number of identities found.
    """

    num_classes: int
    channels: int
    image_size: int
    skip_corrupt: bool

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def _encoded(self, index: int) -> bytes:
        """The encoded image of item ``index``; CorruptSampleError naming the item when it cannot be read."""
        raise NotImplementedError

    def _origin(self, index: int) -> tuple[str, dict]:
        """How messages name item ``index``, and the CorruptSampleError attributes (path, key)."""
        raise NotImplementedError

    def _decode(self, index: int) -> torch.Tensor:
        """uint8 C×S×S of item ``index``; CorruptSampleError naming the item when it cannot be read."""
        raise NotImplementedError

    def _keep(self, keep: np.ndarray) -> None:
        """Restrict the dataset to the items at positions ``keep`` (sorted)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.labels)

    def item(self, index: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        return super().item(index % n, generator)

    def _image(self, index: int) -> torch.Tensor:
        try:
            return to_signed_unit(self._decode(index))
        except CorruptSampleError as exc:
            raise exc.at(index) from None

    def _check(self, index: int) -> None:
        """Check item ``index`` without decoding its pixels (see :func:`check_image_bytes`)."""
        data = self._encoded(index)
        try:
            check_image_bytes(data)
        except ValueError as exc:
            where, attrs = self._origin(index)
            raise CorruptSampleError(f"corrupt image {where}: {exc}", **attrs) from None

    def verify(self, decode: bool = False) -> list[str]:
        """Check every image (``decode=True``: and decode it); return the messages of the bad ones (dropped when
        ``skip_corrupt``, else :class:`CorruptSampleError` is raised listing them)."""
        bad = []
        for i in range(len(self)):
            try:
                self._check(i)
                if decode:
                    self._decode(i)
            except CorruptSampleError as exc:
                bad.append((i, exc.at(i)))
        return report(self, bad, "images")
