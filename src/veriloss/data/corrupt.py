"""Corrupt samples: the one error every dataset raises for them, cheap structural checks, and :func:`verify_dataset`.

A sample that cannot be decoded (a truncated or garbled image, a corrupt zip member, a broken RecordIO record, an
empty, truncated or too short audio file, a missing file named by a list) raises :class:`CorruptSampleError` (a
``ValueError``) naming the file, the zip member or record, the item and what is wrong, whether it is found when the
item is drawn or by the up-front check :func:`verify_dataset`.
"""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["CorruptSampleError", "check_image_bytes", "read_zip_member", "verify_dataset"]

_LISTED = 10  # bad samples named in an error message (all are in ``.bad``)


class CorruptSampleError(ValueError):
    """A sample that cannot be decoded. ``path``: the file (image, ``.rec``, zip or audio file; str or None);
    ``member``: the zip member; ``index``: the dataset item; ``key``: the RecordIO record key or utterance id (each
    None when unknown). An error about several samples lists them in ``bad`` (the first one's attributes are set)."""

    def __init__(
        self,
        message: str,
        path: str | Path | None = None,
        *,
        member: str | None = None,
        index: int | None = None,
        key: Any = None,
        bad: Sequence[CorruptSampleError] = (),
    ):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.member, self.index, self.key = member, index, key
        self.bad = list(bad)

    def __reduce__(self):  # keep the attributes through pickling (DataLoader workers)
        return (type(self), (self.args[0], self.path), self.__dict__)

    def at(self, index: int, key: Any = None, name: str | None = None) -> CorruptSampleError:
        """This error, tagged with the dataset item (and key) it belongs to; the message says so (``name``: how)."""
        where = f"item {index}" + (f", {name}" if name else "")
        key = self.key if key is None else key
        return CorruptSampleError(f"{self.args[0]} ({where})", self.path, member=self.member, index=index, key=key)


def read_zip_member(archive: zipfile.ZipFile, zip_path: str | Path, member: str) -> bytes:
    """The bytes of ``member`` (zipfile checks its local header and CRC-32); :class:`CorruptSampleError` naming the
    zip and the member for a corrupt header, compressed stream or checksum; ``KeyError`` when there is no such
    member."""
    try:
        return archive.read(member)
    except KeyError:
        raise
    except zlib.error as exc:
        what = f"corrupt compressed data ({exc})"
    except zipfile.BadZipFile as exc:
        what = f"corrupt zip entry ({exc})"
    except EOFError:
        what = "the archive ends inside this member (truncated zip)"
    except (OSError, NotImplementedError, RuntimeError, ValueError) as exc:
        what = f"{type(exc).__name__}: {exc}"
    raise CorruptSampleError(f"cannot read {member!r} in {str(zip_path)!r}: {what}", zip_path, member=member)


def pillow_error(exc: Exception) -> str:
    """A Pillow exception in words (an unidentified image names no in-memory file object)."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image format Pillow recognizes (cannot identify image file)"
    return f"{type(exc).__name__}: {exc}"


# ---- images: header and structure, without decoding the pixels (PNG, JPEG) ----


def _png_problem(data: bytes) -> str | None:
    """Walk the chunks up to IEND: each complete, with a matching CRC-32."""
    view, n, pos = memoryview(data), len(data), 8
    while True:
        if pos + 8 > n:
            return f"truncated PNG: the file ends at byte {n}, before the IEND chunk"
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if ctype == b"IEND":
            return None
        end = pos + 12 + length
        if end > n:
            return f"truncated PNG: the file ends at byte {n}, inside chunk {ctype.decode('latin-1')} at byte {pos}"
        if zlib.crc32(view[pos + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            return f"corrupt PNG: CRC mismatch in chunk {ctype.decode('latin-1')} at byte {pos}"
        pos = end


def _jpeg_problem(data: bytes) -> str | None:
    """Walk the marker segments up to the first scan, then look for the end-of-image marker after it."""
    n, pos = len(data), 2
    while pos + 4 <= n:
        if data[pos] != 0xFF:  # junk between segments (Pillow skips it too)
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill byte, standalone markers
            pos += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9:
            return f"corrupt JPEG: end-of-image marker at byte {pos}, before any image data"
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            if data.find(b"\xff\xd9", pos + 2 + length) < 0:
                return "truncated JPEG: no end-of-image marker after the image data"
            return None
        pos += 2 + length
    return f"truncated JPEG: the file ends at byte {n}, before the image data"


def check_image_bytes(data: bytes) -> None:
    """Check an encoded image without decoding its pixels where the format allows: Pillow reads the header (size,
    mode); PNG chunks must be complete up to IEND with matching CRCs; a JPEG must have its end-of-image marker after
    the image data. Other formats (BMP, TIFF, WebP, …) are decoded. Raises ``ValueError`` saying what is wrong."""
    if len(data) == 0:
        raise ValueError("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (w, h) = img.format, img.size
            if w < 1 or h < 1:
                raise ValueError(f"image size {w}×{h}")
            problem = _png_problem(data) if fmt == "PNG" else _jpeg_problem(data) if fmt in ("JPEG", "MPO") else None
            if fmt not in ("PNG", "JPEG", "MPO"):
                img.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        raise ValueError(f"not a readable image: {pillow_error(exc)}") from None
    if problem:
        raise ValueError(problem)


# ---- datasets ----


def _listed(messages: list[str]) -> str:
    more = len(messages) - _LISTED
    return "\n".join(messages[:_LISTED]) + (f"\n… and {more} more (see the error's .bad)" if more > 0 else "")


def summary(messages: list[str], total: int, what: str) -> str:
    """The message of an error about several bad samples: how many, how to drop them, the first few."""
    return (
        f"{len(messages)} of {total} {what} cannot be read (skip_corrupt=True, in a config data.skip_corrupt: true, "
        f"drops them):\n{_listed(messages)}"
    )


def report(dataset: Any, bad: list[tuple[int, CorruptSampleError]], what: str) -> list[str]:
    """Raise for the bad items ``[(position, error), …]`` of ``dataset``, or, with ``dataset.skip_corrupt``, drop
    them (``dataset._keep(sorted kept positions)``), list them in ``dataset.skipped``, warn, return the messages."""
    if not bad:
        return []
    total = len(dataset)
    messages = [str(err) for _, err in bad]
    first = bad[0][1]
    if not dataset.skip_corrupt:
        raise CorruptSampleError(
            summary(messages, total, what),
            first.path,
            member=first.member,
            index=first.index,
            key=first.key,
            bad=[err for _, err in bad],
        )
    if len(bad) == total:
        raise CorruptSampleError(
            f"every one of the {total} {what} is unreadable; nothing is left:\n{_listed(messages)}",
            first.path,
            member=first.member,
            index=first.index,
            key=first.key,
            bad=[err for _, err in bad],
        )
    dataset._keep(np.setdiff1d(np.arange(total), np.asarray([i for i, _ in bad])))
    dataset.skipped.extend(messages)
    more = " ..." if len(bad) > 3 else ""
    warnings.warn(f"skipped {len(bad)} unreadable {what} (see .skipped): {'; '.join(messages[:3])}{more}", stacklevel=3)
    return messages


def verify_dataset(dataset: Any, decode: bool = False) -> list[str]:
    """Check every sample of ``dataset`` up front (before training), cheaply: headers and structure, not pixels or
    audio (``decode=True``: decode every sample too). See each dataset's ``verify``.

    Raises :class:`CorruptSampleError` naming the bad samples (``.bad`` holds one error per sample); a dataset built
    with ``skip_corrupt=True`` drops them instead (listed in ``dataset.skipped``, with a warning) and the messages are
    returned. Datasets with nothing to check (generated ones, or without a ``verify`` method) return ``[]``.
    """
    verify = getattr(dataset, "verify", None)
    return [] if verify is None else verify(decode=decode)
