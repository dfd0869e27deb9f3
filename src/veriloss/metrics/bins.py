"""The bins of the impostor summary: float32 bit patterns cut into ordered intervals (docs/evaluation.md §Speed).

The bins follow the float32 bit pattern: the pattern, read as a sign-magnitude integer, is monotone in the value, so
its top bits (sign, exponent and ``mantissa_bits`` mantissa bits; 11 by default, i.e. 2^20 bins, each 2^-11 of its
octave wide) give a bin that is non-decreasing in the score, for any score range and no clamping. Every score
(genuine or impostor, any dtype) goes through the same function: cast to float32 (monotone), then the bit bin. So
the bins split the real line into ordered intervals, "above a bin" counts are exact, and computing them is a few
integer operations (no sort).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "INF_BITS",
    "MANTISSA_BITS",
    "bin_index",
    "bin_low_edge",
    "bin_runs",
    "float32_keys",
    "in_ranges",
    "key_values",
    "mantissa_shift",
    "n_bins",
]

MANTISSA_BITS = 11
INF_BITS = 0x7F800000  # float32 +inf: the largest finite-or-infinite magnitude


def mantissa_shift(mantissa_bits: int) -> int:
    """The bin function's shift for ``mantissa_bits`` mantissa bits per bin: 23 − mantissa_bits."""
    return 23 - int(mantissa_bits)


def n_bins(shift: int) -> int:
    """Number of bins for a given shift (−inf … +inf)."""
    return 2 * (INF_BITS >> shift) + 1


def bin_index(x: np.ndarray | torch.Tensor, shift: int) -> np.ndarray:
    """Bin of each score (int32 array in [0, n_bins)), non-decreasing in the score.

    key = sign-magnitude integer of float32(x) (−0.0 and +0.0 both give 0); bin = (key >> shift) + offset. A few
    single-threaded integer passes in numpy (memory-bound; no thread contention).
    """
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    v = np.ascontiguousarray(a.reshape(-1), dtype=np.float32).view(np.int32)
    m = v >> 31  # 0 for +, −1 for −
    key = v & 0x7FFFFFFF
    key ^= m
    key -= m  # −magnitude for negative scores
    key >>= shift
    key += INF_BITS >> shift
    return key


def bin_low_edge(b: np.ndarray, shift: int) -> np.ndarray:
    """The lowest float32 value of each bin (float64), used as the nominal threshold of a bin boundary."""
    key = (np.asarray(b, dtype=np.int64) - (INF_BITS >> shift)) << shift  # the smallest key of the bin
    bits = np.where(key < 0, (-key) | 0x80000000, key).astype(np.uint32)
    return bits.view(np.float32).astype(np.float64)


def float32_keys(x: np.ndarray) -> np.ndarray:
    """Sign-magnitude integer of each float32 value (int64): monotone, −0.0 and +0.0 both 0."""
    v = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(v < 0, -(v & 0x7FFFFFFF), v)


def key_values(k: np.ndarray) -> np.ndarray:
    """The float32 value (as float64) of each sign-magnitude key."""
    k = np.asarray(k, dtype=np.int64)
    return np.where(k < 0, (-k) | 0x80000000, k).astype(np.uint32).view(np.float32).astype(np.float64)


def bin_runs(bins: np.ndarray) -> list[tuple[int, int]]:
    """The runs of consecutive bins in the sorted, distinct ``bins``: [(first, last), …]."""
    bins = np.asarray(bins, dtype=np.int64)
    starts = np.flatnonzero(np.diff(bins, prepend=-2) != 1)
    ends = np.append(starts[1:], bins.size) - 1
    return [(int(bins[a]), int(bins[e])) for a, e in zip(starts, ends)]


FEW_RANGES = 4  # up to this many ranges, comparisons select faster than a lookup in a whole-histogram table


def in_ranges(x: np.ndarray, ranges: list[tuple[int, int]]) -> np.ndarray:
    """Whether each x lies in one of the half-open ``ranges`` [a, b) (a few comparisons per range)."""
    sel = np.zeros(x.shape, dtype=bool)
    for a, b in ranges:
        sel |= (x >= a) & (x < b)
    return sel
