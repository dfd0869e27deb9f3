"""The audio dataset (utterances decoded on access), batching of utterances of different lengths, and the choice of
test-time chunked embedding."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..augment import apply_transform
from ..corrupt import CorruptSampleError, report
from .augment import AddNoise, SpeedPerturb
from .decode import check_audio, decode_audio, load_audio
from .resampling import resample
from .waveform import resampled_crop

__all__ = ["AudioDataset", "embedding_chunks", "pad_collate"]


class AudioDataset(Dataset):
    """Utterances ``items = [(source, label), …]`` decoded on access (items, sources: :mod:`veriloss.data.audio`).

    ``crop_seconds`` set (training): a random ``round(crop_seconds · sample_rate)``-sample crop per access
    (:func:`random_crop`: shorter utterances are repeated) of the utterance after ``speed`` (a
    :class:`SpeedPerturb`), then ``noise`` (an :class:`AddNoise`) and ``transform`` (any callable on (1, T)). The
    crop is chosen first and only it is resampled, in one step from the file's rate to ``sample_rate`` at the drawn
    speed (:func:`resampled_crop`), so a crop costs the same for any utterance length.
    ``crop_seconds=None`` (test): the whole utterance, with ``transform`` only if given.
    :meth:`item` draws every random number from a ``torch.Generator`` (the training loader's per-sample seeds);
    ``dataset[i]`` from torch's global generator.
    Utterances shorter than ``min_seconds`` (default 0.1 s) and missing, empty, truncated or unreadable files raise
    :class:`~veriloss.data.CorruptSampleError` naming the source, the item and its utterance id.
    ``speakers[label]`` is the speaker id of a label when the factories build the dataset;
    ``utterances`` (set by the factories) the key of each item (utterance id or relative path), in item order.

    :meth:`verify` checks every file's header (:func:`check_audio`; ``decode=True``: decodes them). With
    ``skip_corrupt=True`` the construction runs it (the factories: once ``utterances`` is set) and drops the bad
    items (listed in ``skipped``, with a warning; labels and ``num_classes`` unchanged).

    ``cache_mb`` (default 0: off) keeps decoded utterances (float32 at the file's rate, before crop, speed and noise)
    in memory up to that many MiB, so later epochs skip the decoder; the items are the same bits either way. The
    cache belongs to each loading process (with ``num_workers`` > 0, each worker fills its own, up to the limit) and
    is not pickled to workers.
    """

    channels = 1
    image_size = None

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
        cache_mb: int = 0,
    ):
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
            raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        if crop_seconds is not None and not (isinstance(crop_seconds, (int, float)) and crop_seconds > 0):
            raise ValueError(f"crop_seconds must be > 0 or None (whole utterances), got {crop_seconds!r}")
        if not (isinstance(min_seconds, (int, float)) and min_seconds >= 0):
            raise ValueError(f"min_seconds must be ≥ 0, got {min_seconds!r}")
        if isinstance(cache_mb, bool) or not isinstance(cache_mb, (int, np.integer)) or cache_mb < 0:
            raise ValueError(f"cache_mb must be an integer ≥ 0 (MiB of decoded audio kept in memory), got {cache_mb!r}")
        if len(items) == 0:
            raise ValueError("items is empty: an audio dataset needs at least one (source, label) pair")
        sources, labels = [], []
        for i, item in enumerate(items):
            if len(item) != 2 or isinstance(item[1], bool) or not isinstance(item[1], (int, np.integer)) or item[1] < 0:
                raise ValueError(f"items[{i}] must be (source, label) with a non-negative int label, got {item!r}")
            sources.append(os.fspath(item[0]))
            labels.append(int(item[1]))
        if speed is not None and not isinstance(speed, SpeedPerturb):
            raise ValueError(f"speed must be a SpeedPerturb or None, got {type(speed).__name__}")
        for name, value in (("noise", noise), ("transform", transform)):
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
        self.cache_mb = int(cache_mb)
        self._clear_cache()
        if self.skip_corrupt:
            self.verify()

    def __len__(self) -> int:
        return len(self.sources)

    def _clear_cache(self) -> None:
        self._cache: dict[int, tuple[np.ndarray, int]] = {}
        self._cache_bytes = 0  # Σ nbytes of the cached arrays, kept so that an insertion need not sum them

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()  # worker processes start with an empty cache of their own
        state["_cache"], state["_cache_bytes"] = {}, 0
        return state

    def _decoded(self, index: int) -> tuple[np.ndarray, int]:
        """:func:`decode_audio` of item ``index`` (samples at the file's rate, read-only when cached), from the cache
        when it holds it; a decoded utterance is kept while the cache stays within ``cache_mb``."""
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        samples, rate = decode_audio(self.sources[index], self.sample_rate, self.min_samples)
        if self._cache_bytes + samples.nbytes <= self.cache_mb * 2**20:
            samples.setflags(write=False)  # shared by every later access: nothing may write into it
            self._cache[index] = (samples, rate)
            self._cache_bytes += samples.nbytes
        return samples, rate

    def _at(self, exc: CorruptSampleError, index: int) -> CorruptSampleError:
        utterances = getattr(self, "utterances", None)
        utt = utterances[index] if utterances is not None and len(utterances) == len(self) else None
        return exc.at(index, utt, None if utt is None else f"utterance {utt!r}")

    def _keep(self, keep: np.ndarray) -> None:
        n, kept = len(self), keep.tolist()
        self._clear_cache()  # keyed by item index, which changes
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

    @property
    def random_items(self) -> bool:
        """Whether items draw random numbers: training crops (with their speed and noise) or a ``transform``."""
        return self.crop_samples is not None or self.transform is not None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.item(index)

    def item(self, index: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
        """Item ``index`` with its random numbers drawn from ``generator`` (None: torch's global generator)."""
        try:
            samples, rate = self._decoded(index)
        except CorruptSampleError as exc:
            raise self._at(exc, index) from None
        if self.crop_samples is None:
            wave = torch.from_numpy(resample(samples, rate, self.sample_rate).astype(np.float32))[None]
        else:
            p, q = self.speed.draw(generator) if self.speed is not None else (1, 1)
            wave = resampled_crop(samples, rate * p, self.sample_rate * q, self.crop_samples, generator)
            if self.noise is not None:
                wave = apply_transform(self.noise, wave, generator)
        if self.transform is not None:
            wave = apply_transform(self.transform, wave, generator)
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


def embedding_chunks(
    sample_rate: int, chunk_seconds: float | None, chunk_hop: float | None = None
) -> tuple[int, int] | None:
    """Test-time chunks for :func:`veriloss.inference.embed` in samples, ``(chunk, hop)``, from seconds at
    ``sample_rate``: None for whole utterances (``chunk_seconds`` None); else chunks of ``round(chunk_seconds ·
    sample_rate)`` samples every ``round(chunk_hop · sample_rate)`` (default ``chunk_hop = chunk_seconds / 2``, half
    overlapping; at most ``chunk_seconds``, so no audio is skipped).

    >>> embedding_chunks(16000, 3.0)
    (48000, 24000)
    """
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate < 1:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if chunk_seconds is None:
        if chunk_hop is not None:
            raise ValueError(f"chunk_hop ({chunk_hop!r}) needs chunk_seconds (null: whole utterances, no chunks)")
        return None
    for name, value in (("chunk_seconds", chunk_seconds), ("chunk_hop", chunk_hop)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    hop = chunk_seconds / 2 if chunk_hop is None else chunk_hop
    if hop > chunk_seconds:
        raise ValueError(
            f"chunk_hop ({hop} s) must not exceed chunk_seconds ({chunk_seconds} s): audio would be skipped"
        )
    return max(1, round(chunk_seconds * sample_rate)), max(1, round(hop * sample_rate))
