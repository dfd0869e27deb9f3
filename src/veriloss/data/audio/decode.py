"""Reading, decoding and checking audio files and zip members (soundfile), to mono float32 at a chosen rate.

A source is a file path or ``"archive.zip::member/path.ogg"`` (read straight from the zip, no extraction). Any format
libsndfile reads works (wav, flac, ogg/vorbis, ogg/opus, …); soundfile's PyPI wheels bundle a libsndfile with Opus.
Multi-channel audio is mixed down to mono (channel mean). A missing, empty, truncated or undecodable source raises
:class:`~veriloss.data.CorruptSampleError` naming it.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from typing import Any

import numpy as np
import torch

from ..corrupt import CorruptSampleError, read_zip_member
from .resampling import resample, resampled_length

__all__ = ["ZIP_SEPARATOR", "check_audio", "decode_audio", "load_audio", "read_audio"]

ZIP_SEPARATOR = "::"
_ZIPS: dict[tuple[int, str], zipfile.ZipFile] = {}  # open archives, per process (safe after a DataLoader fork)


def _soundfile():
    try:
        import soundfile
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading audio needs the soundfile package: pip install soundfile") from err
    return soundfile


def _zip(path: str) -> zipfile.ZipFile:
    key = (os.getpid(), path)
    if key not in _ZIPS:
        try:
            _ZIPS[key] = zipfile.ZipFile(path)
        except (OSError, EOFError, zipfile.BadZipFile) as err:
            raise CorruptSampleError(f"cannot open zip archive {path!r}: {err}", path) from None
    return _ZIPS[key]


def _corrupt(src: str, message: str) -> CorruptSampleError:
    """A CorruptSampleError about audio source ``src`` (``path`` the file or zip, ``member`` the zip member)."""
    if ZIP_SEPARATOR in src:
        archive, member = src.split(ZIP_SEPARATOR, 1)
        return CorruptSampleError(message, archive, member=member)
    return CorruptSampleError(message, src)


def _open(src: str) -> tuple[Any, int]:
    """(path or in-memory file, size in bytes) of a source; CorruptSampleError when it is missing, unreadable or
    empty."""
    if ZIP_SEPARATOR in src:
        archive, member = src.split(ZIP_SEPARATOR, 1)
        try:
            data = read_zip_member(_zip(archive), archive, member)
        except KeyError:
            raise _corrupt(src, f"audio {src!r}: no member {member!r} in zip archive {archive!r}") from None
        if not data:
            raise _corrupt(src, f"audio {src!r} is empty (a 0-byte file)")
        return io.BytesIO(data), len(data)
    if not os.path.isfile(src):
        raise _corrupt(src, f"audio file {src!r} does not exist")
    size = os.path.getsize(src)
    if size == 0:
        raise _corrupt(src, f"audio {src!r} is empty (a 0-byte file)")
    return src, size


def _wav_truncation(handle: Any, size: int) -> str | None:
    """For a RIFF WAVE file: what is missing when its data chunk declares more bytes than the file holds (libsndfile
    reads such a file silently shortened), else None. Streamed files (declared length 0 or ≥ 0x7FFFF000) pass."""
    f = open(handle, "rb") if isinstance(handle, str) else handle
    try:
        f.seek(0)
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos, block = 12, 1
        while pos + 8 <= size:
            f.seek(pos)
            cid, length = struct.unpack("<4sI", f.read(8))
            if cid == b"fmt " and length >= 14:
                block = max(1, struct.unpack("<H", f.read(14)[12:14])[0])
            if cid == b"data":
                have = size - pos - 8
                if 0 < length < 0x7FFFF000 and length - have >= block:
                    return f"its header declares {length} bytes of audio, the file holds {have} (truncated file?)"
                return None
            pos += 8 + length + (length & 1)
        return None
    finally:
        if isinstance(handle, str):
            f.close()


def _too_short(src: str, n: int, sample_rate: int, min_samples: int) -> CorruptSampleError:
    return _corrupt(
        src,
        f"audio {src!r} is too short: {n} samples at {sample_rate} Hz ({n / sample_rate:.3f} s), "
        f"the minimum is {min_samples} ({min_samples / sample_rate:.3f} s)",
    )


def read_audio(source: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode ``source`` (a path or ``"archive.zip::member"``) to mono float32 samples (T,) in [-1, 1] and its rate.

    Raises :class:`~veriloss.data.CorruptSampleError` naming the source when the file or member is missing, empty,
    truncated (a WAV shorter than its header says) or cannot be decoded.
    """
    sf = _soundfile()
    src = os.fspath(source)
    handle, size = _open(src)
    try:
        samples, rate = sf.read(handle, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError for bad data
        raise _corrupt(src, f"cannot decode audio {src!r}: {err}") from None
    problem = _wav_truncation(handle, size)
    if problem:
        raise _corrupt(src, f"audio {src!r} is truncated: {problem}")
    return samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0], int(rate)


def check_audio(source: str | os.PathLike, sample_rate: int = 16000, min_samples: int = 1) -> None:
    """Check ``source`` without decoding it: present, not empty, a header libsndfile reads, > 0 frames, at least
    ``min_samples`` at ``sample_rate``, a WAV as long as its header says, a FLAC whose last frames decode (a truncated
    Ogg fails at the header already). :class:`~veriloss.data.CorruptSampleError` naming the source otherwise."""
    sf = _soundfile()
    src = os.fspath(source)
    handle, size = _open(src)
    try:
        info = sf.SoundFile(handle)
    except Exception as err:
        raise _corrupt(src, f"cannot decode audio {src!r}: {err}") from None
    with info:
        frames, rate = info.frames, info.samplerate
        if frames <= 0:
            raise _corrupt(src, f"audio {src!r} is empty (0 samples)")
        if info.format == "FLAC":
            try:
                info.seek(max(0, frames - 4096))
                want = frames - info.tell()
                got = len(info.read(dtype="float32"))
            except Exception as err:
                what = f"is truncated or corrupt: its last frames do not decode ({err})"
                raise _corrupt(src, f"audio {src!r} {what}") from None
            if got < want:
                what = f"is truncated: {frames} frames declared, it ends at {frames - want + got}"
                raise _corrupt(src, f"audio {src!r} {what}")
    n = -(-frames * sample_rate // rate)  # length after resampling to sample_rate
    if n < min_samples:
        raise _too_short(src, n, sample_rate, min_samples)
    problem = _wav_truncation(handle, size)
    if problem:
        raise _corrupt(src, f"audio {src!r} is truncated: {problem}")


def decode_audio(source: str | os.PathLike, sample_rate: int, min_samples: int = 1) -> tuple[np.ndarray, int]:
    """Decoded (:func:`read_audio`) and checked, at the file's rate: samples (T,) and the rate.
    :class:`~veriloss.data.CorruptSampleError` naming the source if it cannot be read (:func:`read_audio`), is empty,
    shorter than ``min_samples`` once at ``sample_rate`` or holds non-finite samples."""
    src = os.fspath(source)
    samples, rate = read_audio(src)
    if samples.size == 0:
        raise _corrupt(src, f"audio {src!r} is empty (0 samples)")
    n = resampled_length(len(samples), rate, sample_rate)
    if n < min_samples:
        raise _too_short(src, n, sample_rate, min_samples)
    if not np.isfinite(samples).all():
        raise _corrupt(src, f"audio {src!r} contains non-finite samples")
    return samples, rate


def load_audio(source: str | os.PathLike, sample_rate: int, min_samples: int = 1) -> torch.Tensor:
    """Decoded and checked (:func:`decode_audio`), resampled to ``sample_rate`` when the file's rate differs
    (:func:`resample`), as a float32 tensor (1, T)."""
    samples, rate = decode_audio(source, sample_rate, min_samples)
    if rate != sample_rate:
        samples = resample(samples, rate, sample_rate)
    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]
