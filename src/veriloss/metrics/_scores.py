"""Score-array plumbing shared by the metrics: input conversion and checks, chunked order statistics.

Everything here works on 1-D numpy arrays in chunks of ``CHUNK`` elements, so that a 10^8-score array is never
copied whole (the TAR@FAR memory budget is the scores plus a few percent).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import torch

from .._checks import check_real

__all__ = [
    "CHUNK",
    "TopAccumulator",
    "as_scores",
    "check_cost",
    "check_fars",
    "check_rate",
    "count_greater",
    "dcf_cost",
    "distinct_sorted",
    "floor_far_count",
    "prefix_sums",
    "suffix_sums",
]

CHUNK = 1 << 20


def as_scores(x: object, name: str) -> np.ndarray:
    """Return ``x`` (tensor, array or sequence) as a 1-D float32/float64 numpy array, without a copy if possible.

    float32 and float64 are kept as they are; float16/bfloat16 become float32; integers and booleans become float64.
    Raises ValueError if ``x`` is not 1-D, is empty or holds NaN/inf (the check is a min/max reduction: no copy).
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.is_complex():
            raise ValueError(f"{name} must hold real scores, got dtype {t.dtype}")
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        elif not t.is_floating_point():
            t = t.double()
        arr = t.cpu().numpy()
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a 1-D tensor or array of scores ({err})") from None
        if arr.dtype == np.float16:
            arr = arr.astype(np.float32)
        elif arr.dtype.kind in "biu":
            arr = arr.astype(np.float64)
        elif arr.dtype.kind != "f":
            raise ValueError(f"{name} must hold real scores, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores, got shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: no {name} scores were given; a verification metric needs both kinds")
    if not (math.isfinite(float(arr.min())) and math.isfinite(float(arr.max()))):
        n_nan = sum(int(np.count_nonzero(np.isnan(arr[i : i + CHUNK]))) for i in range(0, arr.size, CHUNK))
        n_inf = sum(int(np.count_nonzero(np.isinf(arr[i : i + CHUNK]))) for i in range(0, arr.size, CHUNK))
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite score(s) out of {arr.size}; "
            "scores must be finite (check the model outputs or the score file)"
        )
    return arr


def check_rate(value: object, name: str) -> float:
    """A rate (FAR, FPIR, P_target) as a float in the open interval (0, 1); bools, strings and bytes are rejected."""
    f = check_real(value, name)
    if not (math.isfinite(f) and 0.0 < f < 1.0):
        raise ValueError(f"{name} must be in the open interval (0, 1), got {value!r}")
    return f


def check_cost(value: object, name: str) -> float:
    """A detection cost (C_miss, C_fa): a finite real > 0; bools and strings are rejected."""
    c = check_real(value, name)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"{name} must be a finite cost > 0, got {value!r}")
    return c


def check_fars(far: float | Sequence[float], name: str = "far") -> tuple[list[float], bool]:
    """Validate one FAR or a sequence of them; returns (list, was_scalar). Each must lie in the open interval (0, 1).

    A string or bytes (``"0.001"``) is rejected as a whole, not read character by character."""
    if isinstance(far, (str, bytes)):
        raise ValueError(f"{name} must be a real number in (0, 1) or a sequence of them, got the string {far!r}")
    scalar = isinstance(far, (int, float, np.floating, np.integer, np.bool_)) or (
        isinstance(far, (np.ndarray, torch.Tensor)) and far.ndim == 0
    )
    if scalar:
        values = [far]
    else:
        try:
            values = list(far)  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(f"{name} must be a real number in (0, 1) or a sequence of them, got {far!r}") from None
    if not values:
        raise ValueError(f"{name} is an empty sequence; pass at least one false acceptance rate")
    return [check_rate(v, name) for v in values], scalar


def floor_far_count(far: float, n: int) -> int:
    """k = ⌊far·n⌋ with ``far`` read as the decimal it prints as (0.29·100 = 29, not 28.999…)."""
    return math.floor(Fraction(repr(float(far))) * n)


def dcf_cost(
    n_miss: np.ndarray, n_fa: np.ndarray, n_gen: int, n_imp: int, p_target: float, c_miss: float, c_fa: float
) -> np.ndarray:
    """C_det = C_miss·P_miss·P_target + C_fa·P_fa·(1 − P_target), with P_miss = n_miss/G and P_fa = n_fa/I (float64).

    One formula for every code path, so equal counts give bit-identical costs (monotone in each count).
    """
    p_miss = np.asarray(n_miss, dtype=np.float64) / n_gen
    p_fa = np.asarray(n_fa, dtype=np.float64) / n_imp
    return (c_miss * p_target) * p_miss + (c_fa * (1.0 - p_target)) * p_fa


def distinct_sorted(gs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values of the sorted array ``gs`` as float64, the index of each one's first occurrence, i.e.
    #{gs < value}); ``np.unique`` without its sort."""
    new = np.ones(gs.size, dtype=bool)
    np.not_equal(gs[1:], gs[:-1], out=new[1:])
    first = np.flatnonzero(new)
    return gs[first].astype(np.float64), first


def prefix_sums(x: np.ndarray) -> np.ndarray:
    """[0, x₀, x₀ + x₁, …]: the exclusive prefix sums (int64, length x.size + 1), written in place once."""
    out = np.zeros(x.size + 1, dtype=np.int64)
    np.cumsum(x, out=out[1:])
    return out


def suffix_sums(x: np.ndarray) -> np.ndarray:
    """[Σ x, Σ x[1:], …, x[-1], 0]: the sums from each position on (int64, length x.size + 1)."""
    p = prefix_sums(x)
    return p[-1] - p


def count_greater(x: np.ndarray, value: float, strict: bool = True) -> int:
    """#{x > value} (or ≥ when not ``strict``), in chunks (no full-size temporary)."""
    op = np.greater if strict else np.greater_equal
    return sum(int(np.count_nonzero(op(x[i : i + CHUNK], value))) for i in range(0, x.size, CHUNK))


class TopAccumulator:
    """The exact ``m`` largest values of a stream of 1-D arrays, in O(m + chunk) memory.

    Values below the current m-th largest are dropped chunk by chunk; survivors are buffered and reduced with
    ``np.partition`` when the buffer exceeds max(m, CHUNK), so the work is linear in the stream length.
    """

    def __init__(self, m: int) -> None:
        self.m = int(m)
        self._kept: np.ndarray | None = None  # the current top (≤ m values), unsorted, in the input dtype
        self._buf: list[np.ndarray] = []
        self._buf_n = 0
        self._floor = -math.inf  # the m-th largest value so far, once m values were seen

    def add(self, x: np.ndarray) -> None:
        if self.m == 0 or x.size == 0:
            return
        for i in range(0, x.size, CHUNK):
            c = x[i : i + CHUNK]
            c = c[c > self._floor] if self._floor > -math.inf else c.copy()  # ties at the floor change nothing
            if c.size == 0:
                continue
            self._buf.append(c)
            self._buf_n += c.size
            if self._buf_n > max(self.m, CHUNK):
                self._reduce()

    def _reduce(self) -> None:
        if not self._buf:
            return
        parts = self._buf if self._kept is None else [self._kept, *self._buf]
        allv = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._kept, self._buf, self._buf_n = None, [], 0
        del parts
        if allv.size > self.m:
            allv.partition(allv.size - self.m)  # in place: no second full-size buffer
            allv = allv[allv.size - self.m :].copy()
        self._kept = allv
        if allv.size == self.m:
            self._floor = float(allv.min())

    def result(self) -> np.ndarray:
        """The top values, sorted in decreasing order (float64)."""
        self._reduce()
        if self._kept is None:
            return np.empty(0, dtype=np.float64)
        return np.sort(self._kept.astype(np.float64))[::-1].copy()


def top_values(x: np.ndarray, m: int) -> np.ndarray:
    """The exact ``m`` largest values of ``x`` in decreasing order (float64); memory O(m + CHUNK)."""
    m = min(int(m), x.size)
    if x.size <= 4 * CHUNK:
        if m == 0:
            return np.empty(0, dtype=np.float64)
        part = np.partition(x, x.size - m)[x.size - m :]
        return np.sort(part.astype(np.float64))[::-1].copy()
    acc = TopAccumulator(m)
    acc.add(x)
    return acc.result()
