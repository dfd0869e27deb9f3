"""Waveform windows: random training crops (short utterances tiled), resampled crops computed from the samples
they need, and test-time chunks."""

from __future__ import annotations

import numpy as np
import torch

from .resampling import resample, resampled_length

__all__ = ["chunk_waveform", "crop_start", "random_crop", "resampled_crop", "window"]


def crop_start(total: int, length: int, generator: torch.Generator | None = None) -> int:
    """Where a random ``length``-sample window of a ``total``-sample signal starts: U{0, …, total − length}, or for
    a shorter signal U{0, …, total − 1} in its tiling (:func:`window`). Drawn from ``generator`` (None: torch's
    global generator)."""
    high = total - length + 1 if total >= length else total
    return int(torch.randint(0, high, (), generator=generator))


def window(wave: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """Samples ``start … start + length − 1`` of ``wave`` (…, T), repeated end to end (tiled) where they pass T."""
    t = wave.shape[-1]
    if start + length <= t:
        return wave[..., start : start + length]
    tiled = wave.repeat(*([1] * (wave.dim() - 1)), -(-(start + length) // t))
    return tiled[..., start : start + length]


def random_crop(wave: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random ``length``-sample window of ``wave`` (1, T) (:func:`crop_start`); a shorter ``wave`` is tiled and
    cropped at a start ~ U{0, …, T − 1}. Drawn from ``generator`` (None: torch's global generator)."""
    return window(wave, crop_start(wave.shape[-1], length, generator), length)


def resampled_crop(
    samples: np.ndarray, orig_rate: int, new_rate: int, length: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``random_crop(resample(samples, orig_rate, new_rate), length, generator)`` as float32 (1, ``length``), with
    only the window resampled (:func:`resample` with ``start``): the cost follows ``length``, not the utterance."""
    total = resampled_length(len(samples), orig_rate, new_rate)
    start = crop_start(total, length, generator)
    if start + length <= total:
        return torch.from_numpy(resample(samples, orig_rate, new_rate, start, length).astype(np.float32))[None]
    whole = torch.from_numpy(resample(samples, orig_rate, new_rate).astype(np.float32))[None]
    return window(whole, start, length)  # shorter than the crop: tiled


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
