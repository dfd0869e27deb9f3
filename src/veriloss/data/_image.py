"""Image decoding (Pillow), the [-1, 1] convention, and the base of datasets that decode an image per item."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

__all__ = ["DecodedImageDataset", "decode_image", "to_signed_unit"]


def decode_image(
    source: bytes | str | Path, image_size: int, mode: str = "RGB", resample: int = Image.BILINEAR
) -> torch.Tensor:
    """Decode an encoded image (bytes or a file path) to a uint8 tensor C×S×S (C = 1 for mode "L", 3 for "RGB").

    The image is converted to ``mode`` and resized to ``image_size``² with ``resample`` when its size differs
    (Pillow's resize filters are antialiased when they shrink). Raises ``ValueError`` naming the source when Pillow
    cannot read it (truncated or corrupt data, not an image).
    """
    name = str(source) if isinstance(source, (str, Path)) else f"<{len(source)} bytes>"
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img = img.convert(mode)
            if img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), resample)
            arr = np.asarray(img, dtype=np.uint8)
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        raise ValueError(f"cannot decode image {name}: {type(exc).__name__}: {exc}") from None
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


class DecodedImageDataset(Dataset):
    """Items decoded one at a time from encoded images; subclasses give ``_decode(i)`` and ``_keep(positions)``.

    ``__getitem__`` returns ``(image, label)``: float32 C×S×S in [-1, 1] (see :func:`to_signed_unit`), then
    ``transform``. A corrupt or unreadable image raises ``ValueError`` naming where it is. :meth:`verify` decodes every
    image once: with ``skip_corrupt`` False it raises listing all bad ones; with True it drops them from the dataset,
    lists them in ``skipped`` and warns (subclasses call it at construction when ``skip_corrupt`` is True).
    Labels of kept items never change; ``num_classes`` stays the number of identities found.
    """

    labels: torch.Tensor
    num_classes: int
    channels: int
    image_size: int
    skip_corrupt: bool
    transform: Callable[[torch.Tensor], torch.Tensor] | None

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def _decode(self, index: int) -> torch.Tensor:
        """uint8 C×S×S of item ``index``; ValueError naming the item when it cannot be read."""
        raise NotImplementedError

    def _keep(self, keep: np.ndarray) -> None:
        """Restrict the dataset to the items at positions ``keep`` (sorted)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index %= n
        image = to_signed_unit(self._decode(index))
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    def verify(self) -> list[str]:
        """Decode every image; return the descriptions of the bad ones (dropped when ``skip_corrupt``, else raise)."""
        bad_pos, bad = [], []
        for i in range(len(self)):
            try:
                self._decode(i)
            except ValueError as exc:
                bad_pos.append(i)
                bad.append(str(exc))
        if not bad:
            return []
        if not self.skip_corrupt:
            raise ValueError(
                f"{len(bad)} of {len(self)} images cannot be read (pass skip_corrupt=True to drop them):\n"
                + "\n".join(bad)
            )
        self._keep(np.setdiff1d(np.arange(len(self)), np.asarray(bad_pos)))
        self.skipped.extend(bad)
        warnings.warn(
            f"skipped {len(bad)} unreadable image(s) (see .skipped): " + "; ".join(bad[:3]) + " ..." * (len(bad) > 3),
            stacklevel=2,
        )
        if len(self) == 0:
            raise ValueError("every image is unreadable; nothing is left to train on:\n" + "\n".join(bad))
        return bad
