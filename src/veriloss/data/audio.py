"""Audio datasets for speaker verification: decoding (soundfile), zip members, resampling, manifests, Kaldi lists,
speaker folders (VoxCeleb layout), random crops, test-time chunks, waveform augmentation, and generated speakers.

Items are ``(waveform, label)``: waveform float32 (1, T) in [-1, 1] at the dataset's ``sample_rate``; label an int.
Attributes as for the image datasets: ``labels``, ``num_classes``, ``channels`` (1), ``image_size`` (None), plus
``sample_rate``. Training sets (``crop_seconds`` set) give fixed-length random crops, so the default collate stacks
them; test sets (``crop_seconds=None``) give whole utterances of different lengths: batch them with
:func:`pad_collate` (which also returns the lengths) or embed them one at a time. Test-time chunking
(:func:`set_embedding_chunks`, :func:`chunk_waveform`) tells :func:`veriloss.train.embed` to embed each utterance
as the normalized mean of its normalized chunk embeddings instead of whole.

A source is a file path or ``"archive.zip::member/path.ogg"`` (read straight from the zip, no extraction). Any
format libsndfile reads works (wav, flac, ogg/vorbis, ogg/opus, …); soundfile's PyPI wheels bundle a libsndfile with
Opus. Multi-channel audio is mixed down to mono (channel mean).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
import struct
import zipfile
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .corrupt import CorruptSampleError, read_zip_member, report

__all__ = [
    "AUDIO_EXTENSIONS",
    "AddNoise",
    "AudioDataset",
    "SpeedPerturb",
    "SyntheticSpeakers",
    "build_audio_dataset",
    "check_audio",
    "chunk_waveform",
    "from_folder",
    "from_kaldi",
    "from_manifest",
    "load_audio",
    "pad_collate",
    "read_audio",
    "resample",
    "set_embedding_chunks",
    "speaker_split",
]

#: file name endings :func:`from_folder` takes as audio (lower case; formats libsndfile decodes)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3")

ZIP_SEPARATOR = "::"
_ZIPS: dict[tuple[int, str], zipfile.ZipFile] = {}  # open archives, per process (safe after a DataLoader fork)


# ----------------------------------------------------------------------------------------------------------------
# decoding and resampling


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
    """(path or in-memory file, size in bytes) of a source; CorruptSampleError when it is missing or unreadable."""
    if ZIP_SEPARATOR in src:
        archive, member = src.split(ZIP_SEPARATOR, 1)
        try:
            data = read_zip_member(_zip(archive), archive, member)
        except KeyError:
            raise _corrupt(src, f"audio {src!r}: no member {member!r} in zip archive {archive!r}") from None
        return io.BytesIO(data), len(data)
    if not os.path.isfile(src):
        raise _corrupt(src, f"audio file {src!r} does not exist")
    size = os.path.getsize(src)
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
    if size == 0:
        raise _corrupt(src, f"audio {src!r} is empty (a 0-byte file)")
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
    if size == 0:
        raise _corrupt(src, f"audio {src!r} is empty (a 0-byte file)")
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


def _resample_filter(up: int, down: int) -> tuple[np.ndarray, int]:
    """Kaiser-windowed sinc low-pass (β = 5, half length 10·max(up, down)) at the up-sampled rate, DC gain ``up``."""
    max_rate = max(up, down)
    half = 10 * max_rate
    n = np.arange(-half, half + 1, dtype=np.float64)
    h = np.sinc(n / max_rate) * np.kaiser(2 * half + 1, 5.0)
    return h * (up / h.sum()), half


def resample(x: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a 1-D signal from ``orig_rate`` to ``new_rate`` with a polyphase windowed-sinc filter (numpy only).

    With ``up/down = new/orig`` in lowest terms, ``y[m] = Σ_k x[k] · h[m·down − k·up + H]``: up-sample by ``up``
    (zero insertion), low-pass at ``1/max(up, down)`` of the up-sampled Nyquist with the Kaiser (β = 5) windowed
    sinc ``h`` of half length H = 10·max(up, down) taps (DC gain ``up``), keep every ``down``-th sample; output
    length ``⌈T·up/down⌉``. This is the algorithm and the filter of ``scipy.signal.resample_poly`` (defaults), so
    the two agree to rounding; stop-band attenuation ≈ 50 dB, pass band flat to ≈ 0.9 of the lower Nyquist.
    """
    for name, rate in (("orig_rate", orig_rate), ("new_rate", new_rate)):
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate < 1:
            raise ValueError(f"{name} must be a positive integer (Hz), got {rate!r}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"resample expects a 1-D signal, got shape {x.shape}")
    g = math.gcd(int(orig_rate), int(new_rate))
    up, down = int(new_rate) // g, int(orig_rate) // g
    if up == down:
        return x.copy()
    h, half = _resample_filter(up, down)
    taps = -(-len(h) // up)  # input samples per output
    h = np.concatenate([h, np.zeros(taps * up + up - len(h))])
    n_out = -(-len(x) * up // down)
    pad_left = taps
    xp = np.concatenate([np.zeros(pad_left), x, np.zeros(taps + half // up + 2)])
    out = np.empty(n_out, dtype=np.float64)
    j = np.arange(taps)
    for start in range(0, n_out, 8192):
        m = np.arange(start, min(start + 8192, n_out))
        base = m * down + half
        kmax, r = np.divmod(base, up)
        k = kmax[:, None] - j[None, :]  # (M, taps) input indices, may be negative (zero padding)
        out[m] = (xp[k + pad_left] * h[r[:, None] + j[None, :] * up]).sum(axis=1)
    return out


def load_audio(source: str | os.PathLike, sample_rate: int, min_samples: int = 1) -> torch.Tensor:
    """Decoded (:func:`read_audio`), resampled to ``sample_rate`` when the file's rate differs (:func:`resample`),
    as a float32 tensor (1, T). :class:`~veriloss.data.CorruptSampleError` naming the source if it cannot be read
    (:func:`read_audio`), is empty, shorter than ``min_samples`` or holds non-finite samples."""
    src = os.fspath(source)
    samples, rate = read_audio(src)
    if samples.size == 0:
        raise _corrupt(src, f"audio {src!r} is empty (0 samples)")
    if rate != sample_rate:
        samples = resample(samples, rate, sample_rate)
    if len(samples) < min_samples:
        raise _too_short(src, len(samples), sample_rate, min_samples)
    if not np.isfinite(samples).all():
        raise _corrupt(src, f"audio {src!r} contains non-finite samples")
    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]


def random_crop(wave: torch.Tensor, length: int) -> torch.Tensor:
    """A random ``length``-sample window of ``wave`` (1, T) (start ~ U{0, …, T − length}); a shorter ``wave`` is
    repeated (tiled) to T·⌈length/T⌉ + T samples first and cropped at a start ~ U{0, …, T − 1}. Uses torch's global
    generator, so it is deterministic under ``torch.manual_seed``."""
    t = wave.shape[-1]
    if t >= length:
        start = int(torch.randint(0, t - length + 1, ()))
        return wave[..., start : start + length]
    tiled = wave.repeat(1, -(-length // t) + 1)
    start = int(torch.randint(0, t, ()))
    return tiled[..., start : start + length]


def chunk_waveform(wave: torch.Tensor, chunk: int, hop: int) -> torch.Tensor:
    """The test-time chunks of ``wave`` (1, T) as a (n, 1, ``chunk``) tensor (``hop ≤ chunk`` samples): windows
    starting at 0, hop, 2·hop, … while they fit (start + chunk ≤ T), plus one window ending at T when those stop
    short of the end, so every sample is covered: ``n = ⌊(T − chunk)/hop⌋ + 1``, plus 1 when
    ``(T − chunk) mod hop ≠ 0``. A ``wave`` no longer than ``chunk`` is returned whole as (1, 1, T) (never padded)."""
    for name, value in (("chunk", chunk), ("hop", hop)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive number of samples, got {value!r}")
    if hop > chunk:
        raise ValueError(f"hop ({hop}) must not exceed chunk ({chunk}): audio between chunks would be skipped")
    if wave.dim() != 2 or wave.shape[0] != 1:
        raise ValueError(f"chunk_waveform expects a (1, T) waveform, got shape {tuple(wave.shape)}")
    t = wave.shape[-1]
    if t <= chunk:
        return wave[None]
    starts = list(range(0, t - chunk + 1, hop))
    if starts[-1] + chunk < t:
        starts.append(t - chunk)
    return torch.stack([wave[:, s : s + chunk] for s in starts])


# ----------------------------------------------------------------------------------------------------------------
# waveform augmentation


class SpeedPerturb:
    """Speed perturbation (Ko et al. 2015): play the waveform ``f`` times faster, f drawn uniformly from
    ``factors``; pitch and tempo change together (as ``sox speed``). Done by resampling the signal from rate
    ``p`` to ``q`` with ``f = p/q`` (denominator ≤ 100): length T → ⌈T/f⌉. Labels are unchanged (WeSpeaker's
    recipes instead make each factor a new speaker: not done here)."""

    def __init__(self, factors: Sequence[float] = (0.9, 1.0, 1.1)):
        if not factors or any(not 0.5 <= float(f) <= 2.0 for f in factors):
            raise ValueError(f"factors must be a non-empty list of speeds in [0.5, 2], got {factors!r}")
        self.factors = [Fraction(float(f)).limit_denominator(100) for f in factors]

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        f = self.factors[int(torch.randint(0, len(self.factors), ()))]
        if f == 1:
            return wave
        out = resample(wave[0].double().numpy(), f.numerator, f.denominator)
        return torch.from_numpy(out.astype(np.float32))[None]


class AddNoise:
    """Additive noise at a random signal-to-noise ratio: ``y = x + n · sqrt(P_x / (P_n · 10^(snr/10)))`` with
    snr ~ U(``snr_db``), P the mean square, applied with probability ``p``. The noise is white Gaussian, or a random
    crop (tiled if short) of a random file of ``sources`` (loaded at ``sample_rate``, cached in memory)."""

    def __init__(
        self,
        snr_db: tuple[float, float] = (5.0, 20.0),
        p: float = 0.5,
        sources: Sequence[str] | None = None,
        sample_rate: int = 16000,
    ):
        lo, hi = (float(v) for v in snr_db)
        if not lo <= hi:
            raise ValueError(f"snr_db must be (low, high) with low ≤ high, got {snr_db!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        self.snr_db, self.p, self.sample_rate = (lo, hi), float(p), sample_rate
        self.sources = list(sources or [])
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        if float(torch.rand(())) >= self.p:
            return wave
        snr = self.snr_db[0] + (self.snr_db[1] - self.snr_db[0]) * float(torch.rand(()))
        if self.sources:
            src = self.sources[int(torch.randint(0, len(self.sources), ()))]
            if src not in self._cache:
                self._cache[src] = load_audio(src, self.sample_rate)
            noise = random_crop(self._cache[src], wave.shape[-1])
        else:
            noise = torch.randn(wave.shape)
        p_signal = wave.square().mean()
        p_noise = noise.square().mean().clamp_min(1e-12)
        return wave + noise * torch.sqrt(p_signal / (p_noise * 10 ** (snr / 10)))


# ----------------------------------------------------------------------------------------------------------------
# datasets


class AudioDataset(Dataset):
    """Utterances ``items = [(source, label), …]`` decoded on access; see the module docstring for items and sources.

    ``crop_seconds`` set (training): a random ``round(crop_seconds · sample_rate)``-sample crop per access
    (:func:`random_crop`: shorter utterances are repeated), after ``speed`` (a :class:`SpeedPerturb`) on the whole
    utterance and before ``noise`` (an :class:`AddNoise`) and ``transform`` (any callable on (1, T)).
    ``crop_seconds=None`` (test): the whole utterance, with ``transform`` only if given.
    Utterances shorter than ``min_seconds`` (default 0.1 s) and missing, empty, truncated or unreadable files raise
    :class:`~veriloss.data.CorruptSampleError` naming the source, the item and its utterance id.
    ``speakers[label]`` is the speaker id of a label when the factories build the dataset;
    ``utterances`` (set by the factories) the key of each item (utterance id or relative path), in item order.
    ``chunk_samples`` / ``chunk_hop_samples``: test-time chunking (None: whole), see :func:`set_embedding_chunks`.

    :meth:`verify` checks every file's header (:func:`check_audio`; ``decode=True``: decodes them). With
    ``skip_corrupt=True`` the construction runs it (the factories: once ``utterances`` is set) and drops the bad
    items (listed in ``skipped``, with a warning; labels and ``num_classes`` unchanged).
    """

    channels = 1
    image_size = None
    chunk_samples: int | None = None
    chunk_hop_samples: int | None = None

    def __init__(
        self,
        items: Sequence[tuple[str, int]],
        sample_rate: int = 16000,
        crop_seconds: float | None = 2.0,
        min_seconds: float = 0.1,
        speed: SpeedPerturb | None = None,
        noise: AddNoise | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        speakers: Sequence[str] | None = None,
        skip_corrupt: bool = False,
    ):
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
            raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        if crop_seconds is not None and not (isinstance(crop_seconds, (int, float)) and crop_seconds > 0):
            raise ValueError(f"crop_seconds must be > 0 or None (whole utterances), got {crop_seconds!r}")
        if not (isinstance(min_seconds, (int, float)) and min_seconds >= 0):
            raise ValueError(f"min_seconds must be ≥ 0, got {min_seconds!r}")
        if len(items) == 0:
            raise ValueError("items is empty: an audio dataset needs at least one (source, label) pair")
        sources, labels = [], []
        for i, item in enumerate(items):
            if len(item) != 2 or isinstance(item[1], bool) or not isinstance(item[1], (int, np.integer)) or item[1] < 0:
                raise ValueError(f"items[{i}] must be (source, label) with a non-negative int label, got {item!r}")
            sources.append(os.fspath(item[0]))
            labels.append(int(item[1]))
        for name, value in (("speed", speed), ("noise", noise), ("transform", transform)):
            if value is not None and not callable(value):
                raise ValueError(f"{name} must be callable or None, got {type(value).__name__}")
        self.sources = sources
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.num_classes = int(self.labels.max()) + 1
        self.sample_rate = sample_rate
        self.crop_seconds = crop_seconds
        self.crop_samples = None if crop_seconds is None else max(1, round(crop_seconds * sample_rate))
        self.min_samples = max(1, math.ceil(min_seconds * sample_rate))
        self.speed, self.noise, self.transform = speed, noise, transform
        self.speakers = list(speakers) if speakers is not None else None
        self.skip_corrupt = bool(skip_corrupt)
        self.skipped: list[str] = []
        if self.skip_corrupt:
            self.verify()

    def __len__(self) -> int:
        return len(self.sources)

    def _at(self, exc: CorruptSampleError, index: int) -> CorruptSampleError:
        utterances = getattr(self, "utterances", None)
        utt = utterances[index] if utterances is not None and len(utterances) == len(self) else None
        return exc.at(index, utt, None if utt is None else f"utterance {utt!r}")

    def _keep(self, keep: np.ndarray) -> None:
        n, kept = len(self), keep.tolist()
        self.sources = [self.sources[i] for i in kept]
        self.labels = self.labels[torch.from_numpy(keep)]
        for name in ("utterances", "num_samples"):
            values = getattr(self, name, None)
            if isinstance(values, list) and len(values) == n:
                setattr(self, name, [values[i] for i in kept])

    def verify(self, decode: bool = False) -> list[str]:
        """Check every utterance's header (:func:`check_audio`; ``decode=True``: decode it); return the messages of
        the bad ones (dropped when ``skip_corrupt``, else :class:`~veriloss.data.CorruptSampleError` listing them)."""
        bad = []
        for i, src in enumerate(self.sources):
            try:
                if decode:
                    load_audio(src, self.sample_rate, self.min_samples)
                else:
                    check_audio(src, self.sample_rate, self.min_samples)
            except CorruptSampleError as exc:
                bad.append((i, self._at(exc, i)))
        return report(self, bad, "utterances")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            wave = load_audio(self.sources[index], self.sample_rate, self.min_samples)
        except CorruptSampleError as exc:
            raise self._at(exc, index) from None
        if self.crop_samples is not None:
            if self.speed is not None:
                wave = self.speed(wave)
            wave = random_crop(wave, self.crop_samples)
            if self.noise is not None:
                wave = self.noise(wave)
        if self.transform is not None:
            wave = self.transform(wave)
        return wave.contiguous(), int(self.labels[index])


def pad_collate(batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch items of different lengths: waveforms zero-padded at the end to (B, 1, T_max), labels (B,) and
    lengths (B,) in samples (for a ``DataLoader(collate_fn=pad_collate)``). The speaker backbones do not mask
    padding, so use it to group or split a batch, not to embed padded utterances as if they were whole."""
    if len(batch) == 0:
        raise ValueError("pad_collate got an empty batch")
    lengths = torch.tensor([w.shape[-1] for w, _ in batch], dtype=torch.long)
    out = torch.zeros(len(batch), 1, int(lengths.max()))
    for i, (w, _) in enumerate(batch):
        out[i, :, : w.shape[-1]] = w.reshape(1, -1)
    return out, torch.tensor([int(y) for _, y in batch], dtype=torch.long), lengths


def set_embedding_chunks(dataset: Dataset, chunk_seconds: float | None, chunk_hop: float | None = None) -> Dataset:
    """Choose how :func:`veriloss.train.embed` embeds the utterances of the audio ``dataset`` (returned, changed in
    place): ``chunk_seconds=None`` whole utterances; else chunks of ``round(chunk_seconds · sample_rate)`` samples
    every ``round(chunk_hop · sample_rate)`` (default ``chunk_hop = chunk_seconds / 2``, half overlapping; at most
    ``chunk_seconds``, so no audio is skipped) cut by :func:`chunk_waveform`, the utterance embedding being
    ``normalize(mean_i normalize(e_i))`` over its chunks i. Sets ``dataset.chunk_samples`` and
    ``dataset.chunk_hop_samples`` (the attributes ``embed`` reads); the items themselves do not change."""
    rate = getattr(dataset, "sample_rate", None)
    if not isinstance(rate, int) or isinstance(rate, bool) or rate < 1:
        raise ValueError(f"chunked embeddings need an audio dataset (with sample_rate), got {type(dataset).__name__}")
    if chunk_seconds is None:
        if chunk_hop is not None:
            raise ValueError(f"chunk_hop ({chunk_hop!r}) needs chunk_seconds (null: whole utterances, no chunks)")
        dataset.chunk_samples = dataset.chunk_hop_samples = None
        return dataset
    for name, value in (("chunk_seconds", chunk_seconds), ("chunk_hop", chunk_hop)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    hop = chunk_seconds / 2 if chunk_hop is None else chunk_hop
    if hop > chunk_seconds:
        raise ValueError(
            f"chunk_hop ({hop} s) must not exceed chunk_seconds ({chunk_seconds} s): audio would be skipped"
        )
    dataset.chunk_samples = max(1, round(chunk_seconds * rate))
    dataset.chunk_hop_samples = max(1, round(hop * rate))
    return dataset


def _items_by_speaker(pairs: Iterable[tuple[str, str]], speakers: Iterable[str] | None):
    """(source, speaker id) pairs → items with labels 0..K−1 in sorted speaker-id order, and that order."""
    pairs = list(pairs)
    present = sorted({s for _, s in pairs})
    if speakers is not None:
        wanted = {str(s) for s in speakers}
        missing = sorted(wanted - set(present))
        if missing:
            raise ValueError(f"speakers {missing[:5]}{' …' if len(missing) > 5 else ''} are not in the list")
        present = sorted(wanted)
    index = {s: i for i, s in enumerate(present)}
    items = [(src, index[s]) for src, s in pairs if s in index]
    return items, present


def _skip_corrupt(ds: AudioDataset, skip: bool) -> AudioDataset:
    """The factories' ``skip_corrupt``: verified once ``utterances`` is set, so the dropped items are named."""
    if skip:
        ds.skip_corrupt = True
        ds.verify()
    return ds


def read_manifest(tsv_path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a tab-separated manifest with a header (columns ``utt``, ``speaker``, ``file`` at least)."""
    path = Path(tsv_path)
    if not path.is_file():
        raise ValueError(f"manifest {str(path)!r} does not exist")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = {"utt", "speaker", "file"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"manifest {str(path)!r} lacks column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    if not rows:
        raise ValueError(f"manifest {str(path)!r} has no rows")
    return rows


def from_manifest(
    tsv_path: str | os.PathLike, zip_or_root: str | os.PathLike, speakers: Iterable[str] | None = None, **kwargs
) -> AudioDataset:
    """:class:`AudioDataset` of a manifest TSV (``utt, speaker, file, …`` with a header, as speechocean762's).

    ``file`` is relative to ``zip_or_root``: a ``.zip`` archive (read as ``"archive.zip::file"``) or a folder.
    ``speakers`` keeps only those speaker ids; labels number the kept speakers in sorted id order (``speakers``
    attribute of the result). ``kwargs`` go to :class:`AudioDataset`. ``dataset.utterances`` lists utterance ids
    and ``dataset.num_samples`` the manifest's ``num_samples_16k`` when present.
    """
    rows = read_manifest(tsv_path)
    base = os.fspath(zip_or_root)
    is_zip = base.endswith(".zip")
    if is_zip and not os.path.isfile(base):
        raise ValueError(f"zip archive {base!r} does not exist")
    if not is_zip and not os.path.isdir(base):
        raise ValueError(f"audio root {base!r} is neither a .zip archive nor a folder")
    src = {r["utt"]: (f"{base}{ZIP_SEPARATOR}{r['file']}" if is_zip else os.path.join(base, r["file"])) for r in rows}
    items, order = _items_by_speaker(((src[r["utt"]], r["speaker"]) for r in rows), speakers)
    skip = kwargs.pop("skip_corrupt", False)
    ds = AudioDataset(items, speakers=order, **kwargs)
    kept = [r for r in rows if r["speaker"] in set(order)]
    ds.utterances = [r["utt"] for r in kept]
    ds.num_samples = [int(r["num_samples_16k"]) for r in kept] if "num_samples_16k" in rows[0] else None
    return _skip_corrupt(ds, skip)


def _kaldi_table(path: str | os.PathLike, what: str) -> dict[str, str]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what} {str(p)!r} does not exist")
    table = {}
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f"{what} {str(p)!r} line {n}: expected '<utterance-id> <value>', got {line!r}")
        table[parts[0]] = parts[1].strip()
    if not table:
        raise ValueError(f"{what} {str(p)!r} is empty")
    return table


def from_kaldi(
    wav_scp: str | os.PathLike, utt2spk: str | os.PathLike, speakers: Iterable[str] | None = None, **kwargs
) -> AudioDataset:
    """:class:`AudioDataset` of Kaldi ``wav.scp`` (``utt path``; paths may be ``archive.zip::member``; relative
    paths are taken relative to the wav.scp's folder) and ``utt2spk`` (``utt speaker``). Piped commands
    (``… |``) and ``ark:`` offsets are refused. Every utterance must be in both files. Labels number the speakers
    in sorted id order, as :func:`from_manifest`; ``dataset.utterances`` lists utterance ids in wav.scp order."""
    wavs = _kaldi_table(wav_scp, "wav.scp")
    spk = _kaldi_table(utt2spk, "utt2spk")
    only_wav, only_spk = sorted(set(wavs) - set(spk)), sorted(set(spk) - set(wavs))
    if only_wav or only_spk:
        raise ValueError(
            f"wav.scp and utt2spk list different utterances: {len(only_wav)} only in wav.scp (e.g. {only_wav[:3]}), "
            f"{len(only_spk)} only in utt2spk (e.g. {only_spk[:3]})"
        )
    root = Path(wav_scp).parent
    pairs = []
    for utt, path in wavs.items():
        if path.endswith("|") or path.startswith("ark:") or re.search(r"\.ark:\d+$", path):
            raise ValueError(f"wav.scp entry {utt!r}: only file paths are supported, got {path!r}")
        if not os.path.isabs(path):
            path = str(root / path)
        pairs.append((path, spk[utt]))
    items, order = _items_by_speaker(pairs, speakers)
    skip = kwargs.pop("skip_corrupt", False)
    ds = AudioDataset(items, speakers=order, **kwargs)
    keep = set(order)
    ds.utterances = [u for u in wavs if spk[u] in keep]
    return _skip_corrupt(ds, skip)


def from_folder(
    root: str | os.PathLike,
    speakers: Iterable[str] | None = None,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
    **kwargs,
) -> AudioDataset:
    """:class:`AudioDataset` of a folder with one sub-folder per speaker and audio files at any depth below it,
    as VoxCeleb's ``wav/id10270/x6uYqmx31kE/00001.wav`` (``root`` = ``wav``).

    A file's speaker is the first component of its path relative to ``root``, and that path with ``/``
    separators is its key (``dataset.utterances``): for VoxCeleb exactly the keys of the trial lists, so
    embeddings of the folder score a list directly. Files whose name ends with one of ``extensions`` (any case)
    count, hidden files and folders (name starting with ``.``) and other files are ignored; symbolic links are
    followed. Items are in sorted key order; labels number the speakers in sorted id order (``speakers``
    keeps only those), as :func:`from_manifest`. An audio file directly in ``root`` (no speaker folder) or a
    folder without audio raises ``ValueError``. ``kwargs`` go to :class:`AudioDataset`.
    """
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"audio folder {str(base)!r} does not exist")
    exts = tuple(str(e).lower() for e in extensions)
    keys = []
    for folder, subfolders, files in os.walk(base, followlinks=True):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        rel = Path(folder).relative_to(base)
        keys += [(rel / f).as_posix() for f in files if f.lower().endswith(exts) and not f.startswith(".")]
    keys.sort()
    if not keys:
        raise ValueError(f"audio folder {str(base)!r} holds no audio files (names ending with {', '.join(exts)})")
    loose = [k for k in keys if "/" not in k]
    if loose:
        raise ValueError(
            f"audio folder {str(base)!r}: {len(loose)} file(s) lie directly in it, outside a speaker folder "
            f"(e.g. {loose[:3]}); expected <root>/<speaker>/…/<file>"
        )
    speaker = {k: k.split("/", 1)[0] for k in keys}
    items, order = _items_by_speaker(((str(base / k), speaker[k]) for k in keys), speakers)
    skip = kwargs.pop("skip_corrupt", False)
    ds = AudioDataset(items, speakers=order, **kwargs)
    keep = set(order)
    ds.utterances = [k for k in keys if speaker[k] in keep]
    return _skip_corrupt(ds, skip)


def speaker_split(speakers: Iterable[str], train_speakers: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministic speaker-disjoint split: speakers ordered by ``sha256(f"{seed}:{id}")``; the first
    ``train_speakers`` train, the rest are held out. Both lists are returned sorted. The hash order is a pure
    function of the ids and the seed (no RNG whose stream could change between library versions)."""
    ids = sorted({str(s) for s in speakers})
    if isinstance(train_speakers, bool) or not isinstance(train_speakers, int) or not 0 < train_speakers < len(ids):
        raise ValueError(
            f"train_speakers must be an integer in [1, {len(ids) - 1}] ({len(ids)} speakers), got {train_speakers!r}"
        )
    order = sorted(ids, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    return sorted(order[:train_speakers]), sorted(order[train_speakers:])


# ----------------------------------------------------------------------------------------------------------------
# generated speakers


class SyntheticSpeakers(Dataset):
    """Generated "speech": every speaker a voice (pitch, formants, fricative band, breathiness, tempo), every
    utterance a new random sequence of voiced and unvoiced segments in that voice. No files, deterministic.

    Voice of global speaker g (a pure function of ``(seed, g)``): f0 ~ 85·2^U(0, 1.6) Hz (85–257 Hz), formants
    F1 ~ U(300, 850), F2 ~ U(900, 2300), F3 ~ U(2300, 3400) Hz with bandwidths U(60, 160) Hz, spectral tilt
    U(−9, −3) dB/octave, fricative band centre U(2500, 6000) Hz (width U(500, 1500) Hz), noise share of voiced
    sounds U(0, 0.3), mean segment length U(0.09, 0.2) s, vibrato rate U(4, 7) Hz.
    Utterance j (a pure function of ``(seed, g, j)``): f0 and formants scaled by 2^N(0, 0.05) and 2^N(0, 0.03),
    segments of length ~ mean·U(0.5, 1.5), voiced with probability 0.75 (harmonics up to 5 kHz with a Lorentzian
    formant envelope, a slow f0 glide U(−15 %, 15 %) and ±1 % vibrato) or a fricative burst (band-passed white
    noise), 0–80 ms of silence between segments, Hann edges; then gain 10^U(−1.2, −0.3) on the peak, plus white
    noise at SNR U(15, 35) dB.

    Items ``(waveform (1, T), label)``, T = round(seconds · sample_rate), label = k (0 … num_speakers − 1); the
    global speaker is ``speaker_offset + k``, so train and test sets with disjoint voices use the same seed and
    offsets 0 and ≥ the training count. ``crop_seconds`` gives random crops of that length (training), None whole
    utterances (all of the same length); test-time chunking as for :class:`AudioDataset`.
    """

    channels = 1
    image_size = None
    chunk_samples: int | None = None
    chunk_hop_samples: int | None = None

    def __init__(
        self,
        num_speakers: int,
        utterances_per_speaker: int,
        seconds: float = 2.0,
        sample_rate: int = 16000,
        seed: int = 0,
        speaker_offset: int = 0,
        crop_seconds: float | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        for name, value, low in (
            ("num_speakers", num_speakers, 1),
            ("utterances_per_speaker", utterances_per_speaker, 1),
            ("sample_rate", sample_rate, 8000),
            ("seed", seed, 0),
            ("speaker_offset", speaker_offset, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
        if not (isinstance(seconds, (int, float)) and seconds > 0):
            raise ValueError(f"seconds must be > 0, got {seconds!r}")
        if crop_seconds is not None and not (isinstance(crop_seconds, (int, float)) and 0 < crop_seconds):
            raise ValueError(f"crop_seconds must be > 0 or None, got {crop_seconds!r}")
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be callable or None, got {type(transform).__name__}")
        self.num_speakers, self.utterances_per_speaker = num_speakers, utterances_per_speaker
        self.seconds, self.sample_rate, self.seed, self.speaker_offset = (
            float(seconds),
            sample_rate,
            seed,
            speaker_offset,
        )
        self.num_samples = max(1, round(seconds * sample_rate))
        self.crop_seconds = crop_seconds
        self.crop_samples = None if crop_seconds is None else max(1, round(crop_seconds * sample_rate))
        self.transform = transform
        self.num_classes = num_speakers
        self.labels = torch.arange(num_speakers).repeat_interleave(utterances_per_speaker)

    def __len__(self) -> int:
        return self.num_speakers * self.utterances_per_speaker

    def voice(self, speaker: int) -> dict[str, Any]:
        """The voice parameters of global speaker ``speaker`` (see the class docstring)."""
        rng = np.random.default_rng([self.seed, speaker, 0x5E1CE])
        return {
            "f0": 85.0 * 2 ** rng.uniform(0, 1.6),
            "formants": np.array([rng.uniform(300, 850), rng.uniform(900, 2300), rng.uniform(2300, 3400)]),
            "bandwidths": rng.uniform(60, 160, 3),
            "tilt_db": rng.uniform(-9, -3),
            "fricative": (rng.uniform(2500, 6000), rng.uniform(500, 1500)),
            "breath": rng.uniform(0, 0.3),
            "segment": rng.uniform(0.09, 0.2),
            "vibrato": rng.uniform(4, 7),
        }

    def waveform(self, index: int) -> np.ndarray:
        """Utterance ``index`` (float32 (T,), whole, before cropping and transform)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} utterances")
        k, j = divmod(index % n, self.utterances_per_speaker)
        g = self.speaker_offset + k
        v = self.voice(g)
        rng = np.random.default_rng([self.seed, g, j + 1, 0xA0D10])
        sr, total = self.sample_rate, self.num_samples
        f0 = v["f0"] * 2 ** rng.normal(0, 0.05)
        formants = v["formants"] * 2 ** rng.normal(0, 0.03)
        out = np.zeros(total)
        pos = int(rng.uniform(0, 0.05) * sr)
        while pos < total:
            length = max(16, int(v["segment"] * rng.uniform(0.5, 1.5) * sr))
            seg_len = min(length, total - pos)
            t = np.arange(seg_len) / sr
            if rng.uniform() < 0.75:
                glide = f0 * (1 + rng.uniform(-0.15, 0.15) * t / max(t[-1], 1e-3))
                inst = glide * (1 + 0.01 * np.sin(2 * np.pi * v["vibrato"] * t + rng.uniform(0, 2 * np.pi)))
                phase = 2 * np.pi * np.cumsum(inst) / sr + rng.uniform(0, 2 * np.pi)
                harmonics = np.arange(1, max(2, int(min(5000.0, 0.45 * sr) // f0)) + 1)
                freqs = harmonics * f0
                env = sum(1.0 / (1.0 + ((freqs - fm) / bw) ** 2) for fm, bw in zip(formants, v["bandwidths"]))
                amp = env * 10 ** (v["tilt_db"] * np.log2(harmonics) / 20)
                seg = (amp[:, None] * np.sin(harmonics[:, None] * phase[None, :])).sum(axis=0)
                seg = seg / (np.abs(seg).max() + 1e-9) + v["breath"] * self._band_noise(rng, seg_len, v, sr)
            else:
                seg = 0.6 * self._band_noise(rng, seg_len, v, sr)
            out[pos : pos + seg_len] = seg * np.hanning(seg_len + 2)[1:-1] ** 0.5
            pos += seg_len + int(rng.uniform(0, 0.08) * sr)
        out *= 10 ** rng.uniform(-1.2, -0.3) / (np.abs(out).max() + 1e-9)
        power = np.mean(out**2)
        out += rng.standard_normal(total) * np.sqrt(power / 10 ** (rng.uniform(15, 35) / 10))
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    @staticmethod
    def _band_noise(rng: np.random.Generator, n: int, v: dict, sr: int) -> np.ndarray:
        """White noise band-passed around the voice's fricative band (Gaussian spectral window), peak 1."""
        centre, width = v["fricative"]
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / sr)
        noise = np.fft.irfft(spec * np.exp(-0.5 * ((f - centre) / width) ** 2), n)
        return noise / (np.abs(noise).max() + 1e-9)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        wave = torch.from_numpy(self.waveform(index))[None]
        if self.crop_samples is not None:
            wave = random_crop(wave, self.crop_samples)
        if self.transform is not None:
            wave = self.transform(wave)
        return wave.contiguous(), int(self.labels[index])


# ----------------------------------------------------------------------------------------------------------------
# build_dataset support

SPEECHOCEAN_ZIP = "speechocean762_train_opus.zip"
SPEECHOCEAN_MANIFEST = "manifest.tsv"
_CLIP_KEYS = ("crop_seconds", "sample_rate", "augment", "chunk_seconds", "chunk_hop", "skip_corrupt")
#: the data keys of each audio dataset name ("name" first)
AUDIO_KEYS = {
    "speechocean": ("name", "root", "train_speakers", "seed", *_CLIP_KEYS),
    "synthetic-audio": (
        "name",
        "train_speakers",
        "test_speakers",
        "utterances_per_speaker",
        "seconds",
        "seed",
        *_CLIP_KEYS,
    ),
    "audio-folder": ("name", "train_root", "test_root", *_CLIP_KEYS),
    "audio-list": ("name", "train_list", "test_list", "audio_root", *_CLIP_KEYS),
}


def _int_key(data: dict, key: str, default: int, low: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"data.{key} must be an integer ≥ {low}, got {value!r}")
    return value


def _seconds_key(data: dict, key: str, default: float | None) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"data.{key} must be a positive number of seconds (or null), got {value!r}")
    return float(value)


def _list_dataset(data: dict, split: str, **kwargs) -> AudioDataset:
    """audio-list: ``data.<split>_list`` is a manifest TSV or a Kaldi data folder (wav.scp + utt2spk)."""
    key = f"{split}_list"
    if data.get(key) is None:
        raise ValueError(
            f"data.{key} is required for 'audio-list' (a manifest .tsv or a folder with wav.scp and utt2spk)"
        )
    path = Path(data[key]).expanduser()
    if path.is_dir():
        return from_kaldi(path / "wav.scp", path / "utt2spk", **kwargs)
    if not path.is_file():
        raise ValueError(f"data.{key} = {str(path)!r} does not exist; expected a manifest .tsv or a Kaldi data folder")
    audio_root = data.get("audio_root")
    return from_manifest(path, Path(audio_root).expanduser() if audio_root is not None else path.parent, **kwargs)


def build_audio_dataset(data: dict[str, Any], split: str) -> Dataset:
    """The audio part of :func:`veriloss.data.build_dataset` (``data`` has ``name`` in :data:`AUDIO_KEYS`).

    Keys of every audio dataset: ``crop_seconds`` (train split only: random crops of this length; null: whole
    utterances), ``sample_rate`` (16000; files at other rates are resampled), ``augment`` (false; true: speed
    0.9/1.0/1.1 and white noise at SNR 5–20 dB with probability 0.5, train split only; synthetic-audio: noise
    only), ``chunk_seconds`` and ``chunk_hop`` (test split only: embed each utterance as the normalized mean of
    the normalized embeddings of chunks this long every ``chunk_hop`` seconds, default half a chunk, see
    :func:`set_embedding_chunks`; null: whole utterances, the default), ``skip_corrupt`` (false; true: drop the
    files whose header check fails, :meth:`AudioDataset.verify`, listed in ``dataset.skipped``; no effect on
    synthetic-audio).

    - speechocean: ``root`` (folder with ``speechocean762_train_opus.zip`` and ``manifest.tsv``),
      ``train_speakers`` (95: of its 125 speakers, chosen by :func:`speaker_split` with ``seed``, default 0; the
      other 30 are the test split), ``crop_seconds`` default 2.0.
    - synthetic-audio: :class:`SyntheticSpeakers` with ``train_speakers`` (100), ``test_speakers`` (20; voices
      after the training ones), ``utterances_per_speaker`` (10), ``seconds`` (2.0), ``seed`` (0);
      ``crop_seconds`` default null.
    - audio-folder: ``train_root``, ``test_root``, folders of :func:`from_folder` (one sub-folder per speaker,
      files at any depth, as VoxCeleb); ``crop_seconds`` default 2.0.
    - audio-list: ``train_list``, ``test_list``, each a manifest TSV (:func:`from_manifest`; its ``file`` column
      relative to ``audio_root``, a folder or a .zip, default the manifest's folder) or a Kaldi data folder
      holding ``wav.scp`` and ``utt2spk`` (:func:`from_kaldi`); ``crop_seconds`` default 2.0.
    """
    name = data["name"]
    valid = AUDIO_KEYS[name]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ValueError(f"unknown data key(s) {', '.join(unknown)} for {name!r}; valid keys: {', '.join(valid)}")
    augment = data.get("augment", False)
    if not isinstance(augment, bool):
        raise ValueError(f"data.augment must be true or false, got {augment!r}")
    augment = augment and split == "train"
    skip = data.get("skip_corrupt", False)
    if not isinstance(skip, bool):
        raise ValueError(f"data.skip_corrupt must be true or false, got {skip!r}")
    sample_rate = _int_key(data, "sample_rate", 16000, 8000)
    seed = _int_key(data, "seed", 0, 0)
    chunks = (_seconds_key(data, "chunk_seconds", None), _seconds_key(data, "chunk_hop", None))
    noise = AddNoise(sample_rate=sample_rate) if augment else None
    if name == "synthetic-audio":
        train = _int_key(data, "train_speakers", 100, 1)
        crop = _seconds_key(data, "crop_seconds", None) if split == "train" else None
        ds: Dataset = SyntheticSpeakers(
            train if split == "train" else _int_key(data, "test_speakers", 20, 1),
            _int_key(data, "utterances_per_speaker", 10, 1),
            seconds=_seconds_key(data, "seconds", 2.0),
            sample_rate=sample_rate,
            seed=seed,
            speaker_offset=0 if split == "train" else train,
            crop_seconds=crop,
            transform=noise,
        )
        return set_embedding_chunks(ds, *chunks) if split == "test" else ds
    kwargs = {
        "sample_rate": sample_rate,
        "crop_seconds": _seconds_key(data, "crop_seconds", 2.0) if split == "train" else None,
        "speed": SpeedPerturb() if augment else None,
        "noise": noise,
        "skip_corrupt": skip,
    }
    if name == "audio-folder":
        key = f"{split}_root"
        if data.get(key) is None:
            raise ValueError(f"data.{key} is required for 'audio-folder' (one sub-folder of audio files per speaker)")
        ds = from_folder(Path(data[key]).expanduser(), **kwargs)
    elif name == "audio-list":
        ds = _list_dataset(data, split, **kwargs)
    else:
        if data.get("root") is None:
            raise ValueError("data.root is required for 'speechocean' (the folder with the zip and manifest.tsv)")
        root = Path(data["root"]).expanduser()
        zip_path, manifest = root / SPEECHOCEAN_ZIP, root / SPEECHOCEAN_MANIFEST
        for path in (zip_path, manifest):
            if not path.is_file():
                raise ValueError(
                    f"{str(path)!r} does not exist; data.root must hold {SPEECHOCEAN_ZIP} and {SPEECHOCEAN_MANIFEST}"
                )
        rows = read_manifest(manifest)
        train_ids, test_ids = speaker_split((r["speaker"] for r in rows), _int_key(data, "train_speakers", 95, 1), seed)
        ds = from_manifest(manifest, zip_path, speakers=train_ids if split == "train" else test_ids, **kwargs)
    return set_embedding_chunks(ds, *chunks) if split == "test" else ds
