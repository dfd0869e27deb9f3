"""Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015) straight from its official zips."""

from __future__ import annotations

import functools
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

import torch
from PIL import Image

from ._image import TransformedImages, check_image_size, check_transform, decode_image, to_signed_unit
from .corrupt import CorruptSampleError, read_zip_member, summary

__all__ = ["Omniglot"]


@functools.lru_cache(maxsize=4)
def _decode_zip(
    path: str, mtime_ns: int, size_bytes: int, image_size: int, skip_corrupt: bool = False
) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    """All PNGs of an Omniglot zip: uint8 images (N, S, S) with strokes 255, labels (N,), class names, and the
    messages of the members skipped as corrupt (``skip_corrupt``; else the first corrupt ones are raised).

    Cached per (path, modification time, size, image_size, skip_corrupt), so building the same split twice decodes
    once.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptSampleError(f"cannot open Omniglot zip {path!r}: {exc}", path) from None
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
        bad: list[CorruptSampleError] = []
        i = 0
        for label, key in enumerate(classes):
            for name in sorted(members[key]):
                try:
                    data = read_zip_member(archive, path, name)
                    try:
                        images[i] = 255 - decode_image(data, image_size, "L", Image.BOX)[0]
                    except CorruptSampleError as exc:
                        what = str(exc).removeprefix(f"cannot decode image <{len(data)} bytes>: ")
                        what = f"cannot decode {name!r} in {path!r}: {what}"
                        raise CorruptSampleError(what, path, member=name) from None
                except CorruptSampleError as exc:
                    bad.append(exc)
                    continue
                labels[i] = label
                i += 1
    if bad and not skip_corrupt:
        raise CorruptSampleError(
            summary([str(e) for e in bad], count, "images"),
            path,
            member=bad[0].member,
            bad=bad,
        )
    if i == 0:
        raise CorruptSampleError(f"every image in {path!r} is unreadable; nothing is left", path, bad=bad)
    return images[:i].clone() if i < count else images, labels[:i].clone(), classes, tuple(str(e) for e in bad)


class Omniglot(TransformedImages):
    """Omniglot characters from ``images_background.zip`` or ``images_evaluation.zip``, read without unpacking.

    Identities are the characters (alphabet, characterNN), labelled in sorted (alphabet, character) order. Every
    105×105 drawing is resized to ``image_size``² with a box filter (``Image.BOX``) and inverted so strokes are bright:
    uint8 stroke = 255, background = 0, which items map to [-1, 1] by (x/255 − 0.5)/0.5 (background −1, strokes +1);
    then ``transform`` (``item(i, generator)`` draws it from a generator: :class:`._image.TransformedImages`).
    All images are decoded once at construction into a uint8 cache (cached per process for the same file and size),
    so an item is a copy.

    ``rotations=True``: each character at 0°, 90°, 180° and 270° (counter-clockwise, ``torch.rot90``) is its own
    identity, label = 4·character + k for rotation k·90°, as in the usual few-shot protocol (background: 964×4 =
    3,856 identities, 77,120 items). Items are ordered by label.
    Counts: background 19,280 images / 964 characters; evaluation 13,180 / 659.

    ``alphabets``: keep only the characters of these alphabets (folder names; labels renumbered 0.. in sorted
    order among the kept characters; an unknown name raises ``ValueError`` listing the alphabets); None keeps all.
    :meth:`alphabet_names` lists the alphabets of a zip.

    A corrupt zip member (header, compressed data, CRC) or PNG raises :class:`CorruptSampleError` at construction,
    naming the zip and the members (``.member``); ``skip_corrupt=True`` drops them instead (listed in ``skipped``,
    with a warning; labels and ``num_classes`` unchanged). :meth:`verify` has nothing left to check.
    """

    channels = 1

    def __init__(
        self,
        zip_path: str | Path,
        image_size: int = 28,
        rotations: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        skip_corrupt: bool = False,
        alphabets: Sequence[str] | None = None,
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
        images, base_labels, classes, skipped = _decode_zip(
            str(zip_path.resolve()), stat.st_mtime_ns, stat.st_size, image_size, bool(skip_corrupt)
        )
        self.skip_corrupt = bool(skip_corrupt)
        self.skipped: list[str] = list(skipped)
        if skipped:
            more = " ..." if len(skipped) > 3 else ""
            warnings.warn(
                f"skipped {len(skipped)} unreadable images (see .skipped): " + "; ".join(skipped[:3]) + more,
                stacklevel=2,
            )
        self.zip_path = zip_path
        self.image_size = image_size
        self.rotations = bool(rotations)
        self.transform = transform
        self._images = images
        rows = torch.arange(len(base_labels))  # the image row of each kept drawing, in label order
        if alphabets is not None:
            wanted = {str(a) for a in alphabets}
            present = sorted({a for a, _ in classes})
            unknown = sorted(wanted - set(present))
            if unknown:
                raise ValueError(
                    f"alphabets {', '.join(map(repr, unknown))} not in {str(zip_path)!r}; its alphabets: "
                    + ", ".join(present)
                )
            keep = torch.tensor([a in wanted for a, _ in classes], dtype=torch.bool)
            new_label = torch.cumsum(keep.long(), 0) - 1
            mask = keep[base_labels]
            rows, base_labels = rows[mask], new_label[base_labels[mask]]
            classes = tuple(c for c, k in zip(classes, keep.tolist()) if k)
        self.classes: list[tuple[str, str]] = list(classes)
        n_chars = len(classes)
        if self.rotations:
            # item order: character, then rotation, then drawing → labels sorted
            counts = torch.bincount(base_labels, minlength=n_chars)
            starts = torch.cumsum(counts, 0) - counts
            char = torch.arange(n_chars).repeat_interleave(4 * counts)
            first = torch.repeat_interleave(torch.cumsum(4 * counts, 0) - 4 * counts, 4 * counts)
            within = torch.arange(len(char)) - first  # position inside the character's 4·count items
            rot = within // counts[char]
            self._source = rows[starts[char] + within % counts[char]]
            self._rotation = rot
            self.labels = 4 * char + rot
            self.num_classes = 4 * n_chars
        else:
            self._source = rows
            self._rotation = torch.zeros(len(base_labels), dtype=torch.long)
            self.labels = base_labels
            self.num_classes = n_chars

    @property
    def alphabets(self) -> list[str]:
        """The alphabets of the kept characters, sorted."""
        return sorted({a for a, _ in self.classes})

    @staticmethod
    def alphabet_names(zip_path: str | Path) -> list[str]:
        """The alphabet folders of an Omniglot zip, sorted (read from its listing: nothing is decoded)."""
        with zipfile.ZipFile(zip_path) as archive:
            return sorted(
                {
                    PurePosixPath(n).parts[-3]
                    for n in archive.namelist()
                    if n.lower().endswith(".png") and len(PurePosixPath(n).parts) >= 3
                }
            )

    def __len__(self) -> int:
        return len(self.labels)

    def verify(self, decode: bool = False) -> list[str]:
        """Nothing to check: every image was read (CRC-checked) and decoded at construction. Returns []."""
        return []

    def _image(self, index: int) -> torch.Tensor:
        image = self._images[self._source[index]]
        k = int(self._rotation[index])
        if k:
            image = torch.rot90(image, k, dims=(0, 1))
        return to_signed_unit(image.unsqueeze(0))
