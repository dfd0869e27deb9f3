"""insightface's MXNet RecordIO (``train.rec`` + ``train.idx``), read and written without mxnet.

Format (dmlc-core ``recordio``, mxnet ``recordio.py``), all little-endian:

- A record on disk is ``magic (uint32 0xced7230a) · lrec (uint32) · payload · zero padding to a multiple of 4``,
  with ``cflag = lrec >> 29`` and ``length = lrec & (2**29 − 1)``. A payload that contains the magic number at a
  4-byte-aligned position is split there into parts with cflag 1 (first), 2 (middle), 3 (last), 0 meaning whole; the
  reader joins the parts, putting the magic number back between them.
- The ``.idx`` file is text, one ``key<TAB>byte offset`` line per record.
- An image record's payload is ``IRHeader`` = struct ``<IfQQ`` (flag, label, id, id2), then ``flag`` float32
  labels when ``flag > 0`` (the label is then the first of them), then the encoded image (JPEG or PNG).
- insightface's header record (key 0, flag > 0) holds labels ``[a, b]``: image records are keys 1 … a−1 and
  identity records are keys a … b−1, each with labels ``[first, end)``, the keys of its images.
  Without such a header every key of the ``.idx`` file is an image record.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ._image import DecodedImageDataset, check_image_size, check_transform, decode_image
from .corrupt import CorruptSampleError

__all__ = ["RecordIO", "write_recordio"]

MAGIC = 0xCED7230A
_LENGTH_MASK = (1 << 29) - 1
_IR = struct.Struct("<IfQQ")  # IRHeader: flag, label, id, id2
_REC = struct.Struct("<II")  # magic, lrec


def _pad(n: int) -> int:
    return (n + 3) & ~3


def _record_bytes(payload: bytes) -> bytes:
    """One logical record, encoded as dmlc-core writes it (split where the magic number occurs, 4-byte aligned)."""
    magic = _REC.pack(MAGIC, 0)[:4]
    out = bytearray()
    start = 0
    aligned = len(payload) & ~3
    for i in range(0, aligned, 4):
        if payload[i : i + 4] == magic:
            out += _REC.pack(MAGIC, ((1 if start == 0 else 2) << 29) | (i - start)) + payload[start:i]
            start = i + 4
    tail = len(payload) - start
    out += _REC.pack(MAGIC, ((3 if start else 0) << 29) | tail) + payload[start:]
    out += b"\0" * (_pad(len(payload)) - len(payload))
    return bytes(out)


def _pack(flag: int, label: float | Sequence[float], key: int, body: bytes = b"") -> bytes:
    if flag > 0:
        return _IR.pack(flag, 0.0, key, 0) + np.asarray(label, dtype="<f4").tobytes() + body
    return _IR.pack(0, float(label), key, 0) + body


def _encode(image: bytes | np.ndarray | torch.Tensor, fmt: str) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8 arrays (or encoded bytes), got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[2] not in (1, 3):
        arr = arr.transpose(1, 2, 0)  # C×H×W → H×W×C
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"images must be H×W, C×H×W or H×W×C with C in (1, 3), got shape {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def write_recordio(
    prefix: str | Path,
    images: Sequence[bytes | np.ndarray | torch.Tensor],
    labels: Sequence[int] | torch.Tensor,
    image_format: str = "PNG",
) -> tuple[Path, Path]:
    """Write ``prefix.rec`` and ``prefix.idx`` in insightface's layout; return their paths.

    ``images[i]`` is encoded bytes (written as is) or a uint8 array/tensor (H×W, C×H×W or H×W×C, C ∈ {1, 3}),
    encoded with ``image_format`` (PNG: lossless, so a round trip gives the same pixels). Records: key 0 is the header
    (flag 2, labels [n + 1, n + 1 + C]), keys 1 … n the images in stable label order (ids 1 … n, label as float32),
    keys n + 1 … n + C one identity record per label 0 … C − 1 (C = max label + 1) with its range of image keys.
    Both files are written to temporary names and renamed, so nothing is half-written.
    """
    label_arr = np.asarray(labels.tolist() if isinstance(labels, torch.Tensor) else labels)
    if label_arr.ndim != 1 or len(label_arr) != len(images):
        raise ValueError(f"labels must be 1-D with one entry per image ({len(images)}), got shape {label_arr.shape}")
    if len(images) == 0:
        raise ValueError("images is empty; pass at least one image")
    if not np.issubdtype(label_arr.dtype, np.integer) or label_arr.min() < 0:
        raise ValueError("labels must be non-negative integers")
    if label_arr.max() >= 2**24:
        raise ValueError("labels must be < 2**24 (they are stored as float32)")
    prefix = Path(prefix)
    rec_path, idx_path = prefix.with_name(prefix.name + ".rec"), prefix.with_name(prefix.name + ".idx")
    order = np.argsort(label_arr, kind="stable")
    n, c = len(order), int(label_arr.max()) + 1
    counts = np.bincount(label_arr, minlength=c)
    first = 1 + np.concatenate([[0], np.cumsum(counts)[:-1]])
    tmp_rec, tmp_idx = rec_path.with_name(rec_path.name + ".tmp"), idx_path.with_name(idx_path.name + ".tmp")
    try:
        with open(tmp_rec, "wb") as rec, open(tmp_idx, "w") as idx:

            def put(key: int, payload: bytes) -> None:
                idx.write(f"{key}\t{rec.tell()}\n")
                rec.write(_record_bytes(payload))

            put(0, _pack(2, [n + 1, n + 1 + c], 0))
            for key, i in enumerate(order.tolist(), start=1):
                put(key, _pack(0, float(label_arr[i]), key, _encode(images[i], image_format)))
            for label in range(c):
                put(n + 1 + label, _pack(2, [first[label], first[label] + counts[label]], n + 1 + label))
        os.replace(tmp_rec, rec_path)
        os.replace(tmp_idx, idx_path)
    finally:
        for tmp in (tmp_rec, tmp_idx):
            tmp.unlink(missing_ok=True)
    return rec_path, idx_path


class RecordIO(DecodedImageDataset):
    """Images of an insightface ``train.rec`` (with ``train.idx``), read with the standard library and Pillow.

    ``path_idx`` defaults to the ``.idx`` beside ``path_rec``; when there is none, the ``.rec`` is scanned once for
    record offsets (keys = record order). Labels come from the image records' headers (a float label is cast to int),
    read at construction without decoding any image; ``num_classes`` = max label + 1. Images (JPEG/PNG) are decoded
    per item to RGB, resized to ``image_size``² when needed (bilinear) and mapped to [-1, 1] by (x/255 − 0.5)/0.5;
    then ``transform``. See the module docstring for the format.

    Bad input: a missing file raises ``ValueError``; a record whose offset lies past the end of the file or that does
    not start with the magic number, a truncated payload or an undecodable image raises :class:`CorruptSampleError`
    naming the file, the record key (``.key``) and its offset. :meth:`verify` checks every record's framing and image
    header and structure without decoding (``decode=True``: decodes too). With ``skip_corrupt=True`` the
    construction decodes every image once (``verify(decode=True)``) and drops the bad records (listed in
    ``skipped``, with a warning).
    """

    channels = 3

    def __init__(
        self,
        path_rec: str | Path,
        path_idx: str | Path | None = None,
        image_size: int = 112,
        skip_corrupt: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__()
        check_image_size(image_size)
        check_transform(transform)
        self.path_rec = Path(path_rec)
        if not self.path_rec.is_file():
            raise ValueError(f"path_rec {str(self.path_rec)!r} does not exist; expected an insightface train.rec file")
        self.path_idx = Path(path_idx) if path_idx is not None else self.path_rec.with_suffix(".idx")
        if path_idx is not None and not self.path_idx.is_file():
            raise ValueError(f"path_idx {str(self.path_idx)!r} does not exist; expected the .idx file of {path_rec}")
        self.image_size = image_size
        self.skip_corrupt = bool(skip_corrupt)
        self.transform = transform
        self._size = self.path_rec.stat().st_size
        self._fd: int | None = None
        self._pid = -1
        offsets = self._read_index() if self.path_idx.is_file() else self._scan()
        keys = self._image_keys(offsets)
        bad: list[str] = []
        labels = np.empty(len(keys), dtype=np.int64)
        good = np.ones(len(keys), dtype=bool)
        for i, key in enumerate(keys):
            try:
                labels[i] = self._header(key, offsets[key])[1]
            except CorruptSampleError as exc:
                if not self.skip_corrupt:
                    raise
                good[i] = False
                bad.append(str(exc))
        self.keys = np.asarray(keys, dtype=np.int64)[good]
        self.offsets = np.asarray([offsets[k] for k in self.keys.tolist()], dtype=np.int64)
        self.labels = torch.from_numpy(labels[good])
        if len(self.labels) == 0:
            raise CorruptSampleError(f"{self.path_rec} holds no readable image records", self.path_rec)
        self.num_classes = int(self.labels.max()) + 1
        if bad:
            self.skipped.extend(bad)
            warnings.warn(f"skipped {len(bad)} unreadable record(s) (see .skipped): {bad[0]} ...", stacklevel=2)
        if self.skip_corrupt:
            self.verify(decode=True)

    # ---- file access (os.pread: no shared file position, safe in DataLoader workers after fork) ----
    def _read(self, offset: int, n: int) -> bytes:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path_rec, os.O_RDONLY | getattr(os, "O_BINARY", 0)), os.getpid()
        if hasattr(os, "pread"):
            return os.pread(self._fd, n, offset)
        with open(self.path_rec, "rb") as f:  # platforms without pread
            f.seek(offset)
            return f.read(n)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_fd"], state["_pid"] = None, -1
        return state

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None and getattr(self, "_pid", -1) == os.getpid():
            os.close(fd)

    def _where(self, key: int, offset: int) -> str:
        return f"{self.path_rec} record {key} at byte {offset}"

    def _bad(self, key: int, offset: int, what: str) -> CorruptSampleError:
        return CorruptSampleError(f"{self._where(key, offset)}: {what}", self.path_rec, key=key)

    def _record(self, key: int, offset: int) -> bytes:
        """The payload of the record starting at ``offset`` (parts joined)."""
        parts, pos = [], offset
        while True:
            head = self._read(pos, 8)
            if len(head) < 8:
                raise self._bad(key, offset, "file ends inside the record (truncated .rec?)")
            magic, lrec = _REC.unpack(head)
            if magic != MAGIC:
                raise self._bad(
                    key,
                    offset,
                    f"no RecordIO magic number at byte {pos} (corrupt .rec, or an .idx that belongs to another file)",
                )
            cflag, length = lrec >> 29, lrec & _LENGTH_MASK
            body = self._read(pos + 8, length)
            if len(body) < length:
                raise self._bad(key, offset, f"payload of {length} bytes cut off after {len(body)} (truncated .rec?)")
            parts.append(body)
            pos += 8 + _pad(length)
            if cflag in (0, 3):
                return _REC.pack(MAGIC, 0)[:4].join(parts)
            if cflag not in (1, 2):
                raise self._bad(key, offset, f"invalid continuation flag {cflag}")

    def _unpack(self, key: int, offset: int, payload: bytes) -> tuple[int, np.ndarray, bytes]:
        if len(payload) < _IR.size:
            raise self._bad(key, offset, f"{len(payload)}-byte payload is shorter than its header")
        flag, label, _, _ = _IR.unpack_from(payload)
        body = payload[_IR.size :]
        if flag > 0:
            if len(body) < 4 * flag:
                raise self._bad(key, offset, f"header announces {flag} labels, payload is too short")
            return flag, np.frombuffer(body[: 4 * flag], dtype="<f4"), body[4 * flag :]
        return flag, np.asarray([label], dtype=np.float32), body

    def _header(self, key: int, offset: int) -> tuple[int, int]:
        """(flag, int label) of an image record, reading only its header when the record is in one part."""
        if not 0 <= offset <= self._size - 8 - _IR.size:
            raise self._bad(key, offset, f"offset lies past the end of the {self._size}-byte file")
        head = self._read(offset, 8 + _IR.size)
        magic, lrec = _REC.unpack_from(head)
        flag = _IR.unpack_from(head, 8)[0]
        if magic == MAGIC and lrec >> 29 == 0 and (lrec & _LENGTH_MASK) >= _IR.size + 4 * flag:
            if offset + 8 + (lrec & _LENGTH_MASK) > self._size:
                raise self._bad(key, offset, "file ends inside the record (truncated .rec?)")
            extra = self._read(offset + 8 + _IR.size, 4) if flag > 0 else b""
            label = np.frombuffer(extra, "<f4")[0] if flag > 0 else _IR.unpack_from(head, 8)[1]
            return flag, int(label)
        flag, labels, _ = self._unpack(key, offset, self._record(key, offset))  # split record, or an error
        return flag, int(labels[0])

    def _read_index(self) -> dict[int, int]:
        offsets: dict[int, int] = {}
        with open(self.path_idx) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                fields = line.split()
                try:
                    key, offset = int(fields[0]), int(fields[1])
                except (IndexError, ValueError):
                    raise ValueError(
                        f"{self.path_idx} line {line_no}: expected 'key<TAB>offset', got {line.strip()!r}"
                    ) from None
                offsets[key] = offset
        if not offsets:
            raise ValueError(f"{self.path_idx} is empty; expected one 'key<TAB>offset' line per record")
        return offsets

    def _scan(self) -> dict[int, int]:
        offsets, pos, key = {}, 0, 0
        while pos < self._size:
            start = pos
            while True:
                head = self._read(pos, 8)
                if len(head) < 8 or _REC.unpack(head)[0] != MAGIC:
                    raise self._bad(key, start, "not a RecordIO record (corrupt or truncated .rec)")
                lrec = _REC.unpack(head)[1]
                pos += 8 + _pad(lrec & _LENGTH_MASK)
                if lrec >> 29 in (0, 3):
                    break
            offsets[key] = start
            key += 1
        return offsets

    def _image_keys(self, offsets: dict[int, int]) -> list[int]:
        if 0 in offsets:
            flag, labels, _ = self._unpack(0, offsets[0], self._record(0, offsets[0]))
            if flag > 0:  # insightface header: images are keys 1 … labels[0] − 1
                end = int(labels[0])
                missing = [k for k in range(1, end) if k not in offsets]
                if missing:
                    raise ValueError(
                        f"{self.path_idx}: header record announces image keys 1..{end - 1}, but {len(missing)} are "
                        f"missing from the index (first: {missing[0]})"
                    )
                return list(range(1, end))
        return sorted(offsets)

    # ---- dataset ----

    def _origin(self, index: int) -> tuple[str, dict]:
        key = int(self.keys[index])
        return self._where(key, int(self.offsets[index])), {"path": self.path_rec, "key": key}

    def _encoded(self, index: int) -> bytes:
        key, offset = int(self.keys[index]), int(self.offsets[index])
        return self._unpack(key, offset, self._record(key, offset))[2]

    def _decode(self, index: int) -> torch.Tensor:
        try:
            return decode_image(self._encoded(index), self.image_size, "RGB")
        except CorruptSampleError as exc:
            if exc.key is not None:  # the record itself is broken: its message names it already
                raise
            key, offset = int(self.keys[index]), int(self.offsets[index])
            raise self._bad(key, offset, str(exc)) from None

    def _keep(self, keep: np.ndarray) -> None:
        self.keys, self.offsets = self.keys[keep], self.offsets[keep]
        self.labels = self.labels[torch.from_numpy(keep)]
