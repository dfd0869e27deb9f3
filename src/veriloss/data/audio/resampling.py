"""Polyphase windowed-sinc resampling of 1-D signals (the algorithm and filter of ``scipy.signal.resample_poly``),
whole or one window of the output computed from the input samples it needs only."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

__all__ = ["resample", "resampled_length"]


def _ratio(orig_rate: int, new_rate: int) -> tuple[int, int]:
    """(up, down) = new/orig in lowest terms, after checking both rates."""
    for name, rate in (("orig_rate", orig_rate), ("new_rate", new_rate)):
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate < 1:
            raise ValueError(f"{name} must be a positive integer (Hz), got {rate!r}")
    g = math.gcd(int(orig_rate), int(new_rate))
    return int(new_rate) // g, int(orig_rate) // g


@functools.lru_cache(maxsize=32)
def _phases(up: int, down: int) -> tuple[torch.Tensor, int, int]:
    """The filter as one row per output phase, ``(up, taps)`` float64 in input order (oldest sample first), with
    its half length H and ``taps``. The filter: Kaiser-windowed sinc low-pass (β = 5, H = 10·max(up, down)) at the
    up-sampled rate, cut at 1/max(up, down) of its Nyquist, DC gain ``up``."""
    max_rate = max(up, down)
    half = 10 * max_rate
    n = np.arange(-half, half + 1, dtype=np.float64)
    h = np.sinc(n / max_rate) * np.kaiser(2 * half + 1, 5.0)
    h *= up / h.sum()
    taps = -(-len(h) // up)  # input samples per output
    h = np.concatenate([h, np.zeros(taps * up - len(h))])
    # output phase r weights input k_max − j by h[r + j·up]; rows reversed so column t is input k_max − taps + 1 + t
    return torch.from_numpy(h.reshape(taps, up).T[:, ::-1].copy()), half, taps


def resampled_length(n: int, orig_rate: int, new_rate: int) -> int:
    """Length of a signal of ``n`` samples resampled from ``orig_rate`` to ``new_rate``: ⌈n·up/down⌉."""
    up, down = _ratio(orig_rate, new_rate)
    return -(-int(n) * up // down)


def resample(x, orig_rate: int, new_rate: int, start: int = 0, length: int | None = None) -> np.ndarray:
    """Resample a 1-D signal from ``orig_rate`` to ``new_rate`` with a polyphase windowed-sinc filter: output
    samples ``start … start + length − 1`` (default: all, :func:`resampled_length`) as float64.

    With ``up/down = new/orig`` in lowest terms, ``y[m] = Σ_k x[k] · h[m·down − k·up + H]``: up-sample by ``up``
    (zero insertion), low-pass at ``1/max(up, down)`` of the up-sampled Nyquist with the Kaiser (β = 5) windowed
    sinc ``h`` of half length H = 10·max(up, down) taps (DC gain ``up``), keep every ``down``-th sample; output
    length ``⌈T·up/down⌉``, zeros outside the input. This is the algorithm and the filter of
    ``scipy.signal.resample_poly`` (defaults), so the two agree to rounding; stop-band attenuation ≈ 50 dB, pass band
    flat to ≈ 0.9 of the lower Nyquist. A window reads only the ≈ ``length·down/up + 20·max(up, down)/up`` input
    samples it depends on and equals that slice of the whole output: crop first, then resample the crop.
    """
    up, down = _ratio(orig_rate, new_rate)
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"resample expects a 1-D signal, got shape {x.shape}")
    n_out = -(-len(x) * up // down)
    length = n_out - start if length is None else length
    if not (0 <= start and 0 <= length and start + length <= n_out):
        raise ValueError(f"output window [{start}, {start + length}) is outside the {n_out} resampled samples")
    if up == down:
        return x[start : start + length].astype(np.float64)
    phases, half, taps = _phases(up, down)
    # input k_max(m) = ⌊(m·down + H)/up⌋ is the newest sample output m reads; it reads taps of them
    first = (start * down + half) // up - taps + 1
    last = ((start + length - 1) * down + half) // up if length else first
    seg = np.zeros(last - first + 1)  # the inputs the window reads, zeros outside the signal
    lo, hi = max(first, 0), min(last + 1, len(x))
    if lo < hi:
        seg[lo - first : hi - first] = x[lo:hi]
    seg = torch.from_numpy(seg)
    out = seg.new_empty(length)
    for c in range(min(up, length)):  # outputs start + c + i·up share a phase; their windows step by down
        m = start + c
        k_max, r = divmod(m * down + half, up)
        count = -(-(length - c) // up)
        windows = seg.as_strided((count, taps), (down, 1), k_max - taps + 1 - first)
        out[c::up] = windows @ phases[r]
    return out.numpy()
