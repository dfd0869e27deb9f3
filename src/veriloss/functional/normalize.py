"""Overflow-safe L2 norms, normalization and cosine similarities (each exists once; every caller uses these).

``F.normalize`` squares the entries: in float32 a row with norm above ~1.8e19 overflows to inf and one below ~1e-19
underflows (and the ``eps = 1e-12`` clamp then dominates), so the cosine of ``c·x`` stops being that of ``x``. Here
each row is first multiplied by an exact power of two, ``2^k`` with k from the exponent of its largest magnitude
(``torch.frexp``), which brings its max-abs into [½, 1): no rounding changes (for rows in the normal range the result
is bitwise ``F.normalize``'s), no overflow or underflow, and the answer is scale-invariant for any finite row. The
scale carries no gradient (it is a constant factor), so gradients are exact. No host synchronization: every step is
a tensor operation. A zero row stays zero (``F.normalize``'s policy, gradient ``g/eps``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["cosine_matrix", "l2_norm", "l2_normalize", "mul_pow2", "pow2", "pow2_scale", "scale_exponent"]

_INT_OF_WIDTH = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def _layout_of(dtype: torch.dtype) -> tuple[torch.dtype, int, int, int]:
    """(integer type of the same width, explicit mantissa bits, largest and smallest normal exponent) of ``dtype``."""
    fi = torch.finfo(dtype)
    return (
        _INT_OF_WIDTH[fi.bits // 8],
        round(-math.log2(fi.eps)),
        math.frexp(fi.max)[1] - 1,
        math.frexp(fi.tiny)[1] - 1,
    )


# made once (a plain dict, which torch.compile reads as a constant; it warns about a functools cache)
_LAYOUTS = {dtype: _layout_of(dtype) for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}


def _layout(dtype: torch.dtype) -> tuple[torch.dtype, int, int, int]:
    layout = _LAYOUTS.get(dtype)
    return layout if layout is not None else _layout_of(dtype)


def pow2(k: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``2**k`` exactly in ``dtype`` for integer ``k`` in the normal exponent range, built from its bits."""
    itype, mant, emax, _ = _layout(dtype)
    return ((k.to(itype) + emax) << mant).view(dtype)


def mul_pow2(t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``t · 2**k`` for integer ``k`` (broadcastable) up to three times the exponent range (e.g. ``4^-k`` of a
    squared quantity), in three exact factors of the same sign: the product rounds (over- or underflows) only if the
    result itself is out of range."""
    a = torch.div(k, 3, rounding_mode="floor")
    b = torch.div(k - a, 2, rounding_mode="floor")
    return t * pow2(a, t.dtype) * pow2(b, t.dtype) * pow2(k - a - b, t.dtype)


def _max_abs(x: torch.Tensor, dim: int | None) -> torch.Tensor:
    """max |x| along ``dim`` (keepdim; the whole tensor for None), without an |x| temporary."""
    d = x.detach()
    if dim is None:
        lo, hi = torch.aminmax(d)
    elif d.is_cuda:  # one pass on the GPU; on the CPU amax and amin are each much faster than aminmax
        lo, hi = torch.aminmax(d, dim=dim, keepdim=True)
    else:
        lo, hi = d.amin(dim=dim, keepdim=True), d.amax(dim=dim, keepdim=True)
    return torch.maximum(hi, lo.neg())


def scale_exponent(x: torch.Tensor, dim: int | None, offset: int = 0) -> torch.Tensor:
    """k such that ``x · 2**k`` has its max-abs along ``dim`` in ``[2^-1-offset, 2^-offset)`` (clamped to the normal
    exponent range; 0 for zero rows), keepdim, int32."""
    _, _, emax, emin = _layout(x.dtype)
    k = torch.frexp(_max_abs(x, dim)).exponent.neg_()
    return (k.sub_(offset) if offset else k).clamp_(emin, emax)


def pow2_scale(x: torch.Tensor, dim: int | None = -1, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x · 2**k, k)``: ``x`` scaled by an exact power of two so that the max-abs along ``dim`` (of the whole tensor
    for ``dim=None``) lies in ``[2^-1-offset, 2^-offset)``.

    k (int32, keepdim shape) is the frexp exponent of the max-abs, negated, shifted by ``offset`` and clamped to the
    normal exponent range (so only rows within a few octaves of the smallest or largest float stop short of the
    target interval, still far from over- and underflow). Zero rows get k = 0. ``k`` carries no gradient.
    """
    if x.numel() == 0:
        return x, torch.zeros((), dtype=torch.int32, device=x.device)
    k = scale_exponent(x, dim, offset)
    return x * pow2(k, x.dtype), k


def _normalize_forward(x: torch.Tensor, dim: int, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y = x·s / n, s, n) with s the power-of-two scale and n = max(‖x·s‖, eps); one output buffer."""
    s = pow2(scale_exponent(x, dim), x.dtype)
    y = x * s
    n = torch.linalg.vector_norm(y, dim=dim, keepdim=True).clamp_min_(eps)
    return y.div_(n), s, n


class _L2Normalize(torch.autograd.Function):
    """``y = x/‖x‖`` along ``dim`` via the power-of-two scaling; one output buffer (scaled, then divided in place).

    Backward: ``g_x = (g − y (y·g)) · s/n`` with s the scale and n = max(‖x·s‖, eps) (the Jacobian of F.normalize; for
    a zero row y = 0 and it is ``g·s/eps``, as F.normalize's). Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, x, dim, eps):
        y, s, n = _normalize_forward(x, dim, eps)
        ctx.dim = dim
        ctx.save_for_backward(y, s / n)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        y, r = ctx.saved_tensors
        dot = (y * g).sum(dim=ctx.dim, keepdim=True)
        return torch.addcmul(g, y, dot, value=-1.0).mul_(r), None, None


def l2_normalize(x: torch.Tensor, dim: int = -1, eps: float = 1e-12) -> torch.Tensor:
    """``x / ‖x‖`` along ``dim`` for any finite ``x``: ``F.normalize`` on the power-of-two-scaled rows.

    Bitwise equal to ``F.normalize(x, dim=dim, eps=eps)`` wherever that does not over- or underflow; zero rows stay
    zero (``eps`` only guards them: a non-zero scaled row has norm ≥ 2^-23). Half precision is computed in float32
    and returned in the input dtype. Differentiable once (custom backward, about F.normalize's cost).
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        return l2_normalize(x.float(), dim, eps).to(x.dtype)
    if x.numel() == 0:
        return x.clone()
    if not (x.requires_grad and torch.is_grad_enabled()):  # scoring, no_grad: no autograd node
        return _normalize_forward(x, dim, eps)[0]
    return _L2Normalize.apply(x, dim, eps)


def l2_norm(x: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    """``‖x‖₂`` along ``dim`` without overflow or underflow of the squares: inf only where the norm itself exceeds the
    dtype's range. Differentiable (``vector_norm``'s gradient, 0 at a zero row)."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return l2_norm(x.float(), dim, keepdim).to(x.dtype)
    xs, k = pow2_scale(x, dim)
    n = torch.linalg.vector_norm(xs, dim=dim, keepdim=True)
    n = mul_pow2(n, -k)
    return n if keepdim else n.squeeze(dim)


def cosine_matrix(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``cos θ_ij = x̂_i·ŵ_j`` for every row of ``x`` (B×d) and of ``w`` (K×d), clamped to [−1, 1]; a zero row gives
    cosine 0. Scale-invariant for any finite rows (see the module docstring)."""
    return (l2_normalize(x, dim=1) @ l2_normalize(w, dim=1).t()).clamp(-1.0, 1.0)
