"""Waveform windows: random training crops (short utterances tiled) and test-time chunks."""

from __future__ import annotations

import torch

__all__ = ["chunk_waveform", "random_crop"]


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
