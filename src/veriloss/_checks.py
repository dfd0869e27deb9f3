"""Input validation shared by every loss: fail early with a message that names the argument and the fix.

The losses check their inputs once, at their public entry (a head's or pair loss's forward, the functional α API);
the checks that read tensor values cost one host synchronization each on a GPU and can be switched off for a loop
whose inputs are known good with :func:`unchecked`; code traced by ``torch.compile`` skips them (:func:`validating`).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import operator
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import torch

__all__ = [
    "check_batch",
    "check_batch_structure",
    "check_bool",
    "check_embeddings",
    "check_finite_tensor",
    "check_in_range",
    "check_int",
    "check_label_structure",
    "check_labels",
    "check_positive",
    "check_real",
    "exponent_limit",
    "is_bool",
    "unchecked",
    "validating",
]

_VALIDATING = contextvars.ContextVar("veriloss_validating", default=True)


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Within the block, the losses (heads, pair losses, the functional α loss) skip the input checks that read
    tensor values: finiteness, label range, magnitude limits, batch composition (a host synchronization each on a
    GPU); so does :class:`~veriloss.metrics.SummaryBuilder` its scan of each block of scores for finiteness. Shapes
    and dtypes are still checked (free). For a loop whose inputs are known good, e.g. the trainer's step; a bad input
    then gives a wrong or non-finite result instead of an error. Code traced by ``torch.compile`` skips the losses'
    value checks too (:func:`validating`).

    >>> import torch
    >>> from veriloss import heads
    >>> head = heads.create("cosface", 8, 4)
    >>> with heads.unchecked():
    ...     loss = head(torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 0, 1]))
    """
    token = _VALIDATING.set(False)
    try:
        yield
    finally:
        _VALIDATING.reset(token)


def validating() -> bool:
    """False inside :func:`unchecked` and in code traced by ``torch.compile``: the loss entry points skip their value
    checks (each reads tensors on the host, which would break the compiled graph); shapes and dtypes are checked."""
    if torch.compiler.is_compiling():
        return False
    return _VALIDATING.get()


def _check_embedding_structure(x: torch.Tensor, name: str, dim: int | None) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (batch, dim), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)}); pass at least one sample")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} features per row, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_batch_structure(x: torch.Tensor, y: torch.Tensor, dim: int | None = None) -> None:
    """Embeddings (B×d, d == ``dim`` when given) and labels (B,) of the right types and shapes; reads no values."""
    _check_embedding_structure(x, "embeddings", dim)
    check_label_structure(y, x.shape[0], "labels")


def check_embeddings(x: torch.Tensor, name: str = "embeddings", dim: int | None = None) -> None:
    """``x`` must be a non-empty, finite, floating-point B×d tensor (d == ``dim`` when given)."""
    _check_embedding_structure(x, name, dim)
    check_finite_tensor(x, name)


def check_finite_tensor(x: torch.Tensor, name: str) -> None:
    """Raise if ``x`` holds NaN or ±inf (one reduction over ``x``)."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf); check the inputs upstream")


def check_label_structure(y: torch.Tensor, batch: int, name: str = "labels") -> None:
    """``y`` must be a non-empty 1-D integer tensor of length ``batch``; reads no values."""
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() != 1:
        raise ValueError(f"{name} must be 1-D (batch,), got shape {tuple(y.shape)}")
    if y.shape[0] != batch:
        raise ValueError(f"{name} has {y.shape[0]} entries but the batch has {batch} rows")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor (class indices), got dtype {y.dtype}")
    if batch == 0:
        raise ValueError(f"{name} is empty; pass at least one sample")


def _check_label_range(lo: int, hi: int, num_classes: int | None, name: str) -> None:
    if lo < 0:
        raise ValueError(f"{name} must be non-negative class indices, got minimum {lo}")
    if num_classes is not None and hi >= num_classes:
        raise ValueError(f"{name} must be < num_classes={num_classes}, got maximum {hi}")


def check_labels(y: torch.Tensor, batch: int, num_classes: int | None = None, name: str = "labels") -> None:
    """``y`` must be a 1-D integer tensor of length ``batch`` with values in [0, num_classes)."""
    check_label_structure(y, batch, name)
    lo, hi = torch.stack([y.detach().min(), y.detach().max()]).tolist()  # one host synchronization
    _check_label_range(int(lo), int(hi), num_classes, name)


def check_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int | None = None,
    dim: int | None = None,
    magnitudes: Callable[[], Mapping[str, torch.Tensor]] | None = None,
) -> dict[str, float]:
    """Validate a batch of embeddings (B×d) and labels (B,) together, with one host synchronization.

    ``magnitudes`` (called after the structural checks) returns device scalars that travel in the same transfer
    (e.g. the largest embedding norm, for a loss that must refuse values float32 cannot hold); they are returned as
    Python floats once the batch is known to be finite and the labels in range.
    """
    check_batch_structure(x, y, dim)
    extra = dict(magnitudes()) if magnitudes is not None else {}
    yd = y.detach()
    parts = [torch.isfinite(x.detach()).all(), yd.min(), yd.max(), *extra.values()]
    values = torch.stack([p.detach().reshape(()).to(torch.float64) for p in parts]).tolist()  # the one sync
    if not values[0]:
        check_finite_tensor(x, "embeddings")  # raises, counting the bad values
    _check_label_range(int(values[1]), int(values[2]), num_classes, "labels")
    return dict(zip(extra, values[3:]))


def exponent_limit(dtype: torch.dtype) -> int:
    """The largest binary exponent of ``dtype`` (127 for float32): ``2**exponent_limit`` is about its max."""
    return math.frexp(torch.finfo(dtype).max)[1] - 1


def is_bool(value: object) -> bool:
    """True for Python/numpy booleans and boolean tensors: not numbers as far as parameters go."""
    return isinstance(value, (bool, np.bool_)) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool)


def check_bool(value: object, name: str) -> bool:
    """A strict boolean (``True``/``False``; not 1, "yes" or a numpy bool)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_real(value: object, name: str) -> float:
    """``value`` as a Python float; bools, strings and bytes are rejected (``True`` is not α = 1, "0.5" not 0.5)."""
    if is_bool(value) or isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None


def check_positive(value: float, name: str, strict: bool = True) -> float:
    """A finite real > 0 (or ≥ 0 when ``strict`` is False); bools and strings are rejected."""
    v = check_real(value, name)
    if not math.isfinite(v) or (v <= 0 if strict else v < 0):
        raise ValueError(f"{name} must be {'>' if strict else '≥'} 0 and finite, got {value!r}")
    return v


def check_in_range(value: float, name: str, lo: float, hi: float) -> float:
    """A finite real in the closed interval [lo, hi]; bools and strings are rejected."""
    v = check_real(value, name)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return v


def check_int(
    value: object, name: str, minimum: int | None = None, maximum: int | None = None, what: str | None = None
) -> int:
    """An integer size or count as a Python int: ints, numpy integers and one-element integer tensors are accepted
    (``operator.index``); bools, floats and strings are rejected, as are values outside [minimum, maximum].
    ``what`` replaces the default description ("an integer ≥ 1") in the message."""
    if what is None:
        if minimum is not None and maximum is not None:
            what = f"an integer in [{minimum}, {maximum}]"
        elif minimum is not None:
            what = f"an integer ≥ {minimum}"
        else:
            what = "an integer"
    if is_bool(value):
        raise ValueError(f"{name} must be {what}, got {value!r} (a bool)")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {what}, got {value!r} ({type(value).__name__})") from None
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return v
