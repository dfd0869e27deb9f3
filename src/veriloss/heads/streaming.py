"""Streaming α heads: the exact α-divergence loss on cosine logits without a B×K logit matrix or a dense K×d gradient.

For α > 1 the α-softargmax is sparse: its support is the top few logits of each row (LOSSES.md §2), and the loss
gradient ``p − e_y`` is non-zero only there and at the target. :func:`streaming_alpha_loss` therefore

1. streams the prototypes W in chunks of ``chunk_size`` rows: ``cos = x̂·W_chunkᵀ / ‖W_j‖`` (one B×C buffer, reused
   by every chunk; the chunk's rows are not copied), the head's target margin applied to the target column, a
   running top-k of the logits per row, the largest logit it has left out, the target logit and the margin-free
   top-1 (for the batch accuracy);
2. keeps the running top-k exact by letting k grow: the root of the α-softargmax on the candidates seen so far is a
   lower bound of the final one (more classes only add mass), so a logit at or below the bound's threshold
   ``τ − 1/(α−1)`` is outside the support for good. After each chunk, a row whose largest left-out logit is above its
   bound (re-solved on its candidates when needed) could lose a support class: k doubles (from 32, up to 1024) and
   the chunk, still in the buffer, is selected again. Hence every left-out logit is outside the support, and
   the solve on the candidates is exact: W is read once whatever the support size up to 1024;
3. solves the α-softargmax on the candidates with the exact solver of :mod:`veriloss.functional.alpha`; a row whose
   largest left-out logit is above the candidates' threshold (only when k has reached its cap) gets a second stream
   over W that collects every class above the candidates' threshold, a lower bound of the true one, and is solved
   on those: exact whatever the support size (the dense solver's two-pass scheme, with both passes chunked);
4. keeps only the sparse solution: per row the support classes other than the target, plus the target, their
   logits and their probabilities (B×(r+1), r the widest support of the batch).

The backward pass recomputes the logits of those r+1 classes per row from ``x`` and the gathered rows ``W[cls]``
and differentiates them by autograd with the Fenchel–Young gradient ``p − e_y`` (times the incoming gradient):
through the normalizations of x and W, the clamp of the cosine and the head's target margin, exactly the operations
of the dense head. It runs in blocks of rows (about 512 (row, class) pairs each), so the gathered rows, their
normalization and the autograd intermediates stay bounded; each block's prototype gradient is summed
(``index_add_``) into one compact buffer, a row per distinct class. ``dL/dW`` is that buffer as a coalesced
sparse COO tensor (K×d, one stored row per class in a support or a target of the batch, no further copy); it
accumulates into ``W.grad`` as sparse + sparse = sparse (and sparse + dense = dense if another loss adds a dense
gradient). Use an optimizer that accepts sparse gradients, e.g. :class:`veriloss.train.sparse_optim.LazySGD`.

Memory beyond W itself: one B×C logit buffer (C = chunk_size), the B×k candidates, in the backward pass the
gradient rows of the distinct classes (at most B·(r+1)×d) plus one block of gathered rows with its intermediates;
nothing of size B×K or K×d.
Choices (ours): the margin-free accuracy statistic is the top-1 of the same stream (ties: the lowest class index, as
``argmax`` in the dense heads). Margins are supported on the target column only (all α heads of LOSSES.md §2). The
cosines divide ``x̂·W_jᵀ`` by ``max(‖W_j‖, 10⁻¹²)`` instead of normalizing the chunk first (the dense heads'
:func:`~veriloss.functional.l2_normalize`): the same value up to rounding, without a C×d copy per chunk. The
embeddings are normalized with the overflow-safe :func:`~veriloss.functional.l2_normalize` (any finite scale); the
chunk norms ``‖W_j‖`` are plain ones, exact for prototypes of norm between ~1e-19 and ~1e19 in float32 (their
initialization and training keep them there; the dense heads also cover prototypes outside that range).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import check_int
from ..functional.alpha import AlphaSolution, _candidates_above, _loss_from_solution, solve
from ..functional.normalize import l2_normalize

__all__ = ["check_chunk_size", "streaming_alpha_loss"]

_CANDIDATES = 32  # the initial running top-k (and the fixed k of the sharded heads)
_MAX_CANDIDATES = 1024  # the running top-k grows up to this; a row with a wider support takes the second pass
_BACKWARD_PAIRS = 512  # (row, class) pairs per block of the backward pass
_NORM_EPS = 1e-12  # the zero-row guard of l2_normalize (F.normalize's default eps)

TargetLogit = Callable[[torch.Tensor], torch.Tensor]
Bound = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def check_chunk_size(chunk_size: int | None, alpha: float) -> int | None:
    """``chunk_size`` (prototypes per chunk of the stream) must be None (dense path) or an integer ≥ 1, with α > 1."""
    if chunk_size is None:
        return None
    chunk_size = check_int(chunk_size, "chunk_size", 1, what="a positive integer (prototypes per chunk) or None")
    if alpha <= 1.0:
        raise ValueError(
            f"chunk_size (streaming) needs a sparse α-softargmax, i.e. alpha > 1; got alpha={alpha!r} (α = 1 is the"
            " dense softmax): leave chunk_size=None"
        )
    return chunk_size


def _threshold_bound(tau: torch.Tensor, alpha: float) -> torch.Tensor:
    """The support threshold ``τ − 1/(α−1)`` of the roots ``tau`` (float64), rounded down a little: with τ the root
    on a subset of the classes, a lower bound of the true threshold (more classes only add mass). A class above it
    that is not in the support only adds a zero of p; a support class below it would be an error."""
    thr = tau - 1.0 / (alpha - 1.0)
    return thr - 16 * torch.finfo(torch.float64).eps * (thr.abs() + 1.0 / (alpha - 1.0) + 1.0)


def _chunk_logits(
    xn: torch.Tensor,
    w: torch.Tensor,
    start: int,
    y: torch.Tensor,
    s: float,
    target_logit: TargetLogit,
    buffer: torch.Tensor,
    top1: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """Logits of the classes [start, start + c) (c = len(w)), written into ``buffer`` (≥ B·c elements, reused by
    every chunk): ``s·cos`` with ``cos = x̂·wᵀ/max(‖w‖, ε)`` clamped to [−1, 1] (x already normalized; the dense
    heads' cosine up to rounding), the target column replaced by ``target_logit(cos_y)``. Returns (the logits (B×c,
    a view of ``buffer``), rows whose target is in the chunk, their target logits, and with ``top1`` the
    margin-free (max cos, its column) of each row)."""
    B, c = xn.shape[0], w.shape[0]
    w = w.to(xn.dtype)
    z = torch.mm(xn, w.t(), out=buffer[: B * c].view(B, c))
    z.div_(w.norm(dim=1).clamp_min_(_NORM_EPS)).clamp_(-1.0, 1.0)
    top = z.max(dim=1) if top1 else None  # ties: the first maximal column, as argmax
    rows = ((y >= start) & (y < start + c)).nonzero(as_tuple=True)[0]
    cols = y[rows] - start
    zt = target_logit(z[rows, cols])  # advanced indexing copies: the cosines, before the scaling below
    z.mul_(s)
    z[rows, cols] = zt.to(z.dtype)
    return z, rows, zt, None if top is None else (top.values, top.indices)


def _merge(
    top_v: torch.Tensor, top_i: torch.Tensor, z: torch.Tensor, start: int, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k largest of the running candidates (values ``top_v``, classes ``top_i``) and of the chunk's logits ``z``
    (classes ``start + column``), sorted descending, and per row the largest value left out (−inf if none). Cost:
    a top-(k+1) of B×C and of B×(2k+1)."""
    v, i = torch.topk(z, min(k + 1, z.shape[1]), dim=1, sorted=False)
    v, i = torch.cat([top_v, v], dim=1), torch.cat([top_i, i + start], dim=1)
    v, sel = torch.topk(v, min(k + 1, v.shape[1]), dim=1, sorted=True)
    i = i.gather(1, sel)
    left = v[:, k] if v.shape[1] > k else v.new_full(v.shape[:1], -math.inf)
    return v[:, :k], i[:, :k], left


def _stream_top(
    xn: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    s: float,
    target_logit: TargetLogit,
    chunk: int,
    k: int,
    bound: Bound | None = None,
    max_k: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pass 1: per row the running top-k logits (B×k, sorted descending) and their classes, the largest logit left
    out of them (−inf if none), the target logits and the margin-free top-1 class.

    ``bound`` maps candidates (R×k values, classes) and their rows (R,) to a lower bound (R,) of each row's support
    threshold (the rounded threshold of the root on the candidates). With it, k doubles (up to ``max_k``) while some
    row's largest left-out logit is above its bound (bounds are recomputed, only for those rows, before deciding),
    and the chunk, still in the buffer, is selected again: below ``max_k`` every left-out logit is at or below a
    lower bound of its row's final threshold, i.e. outside the support. Without ``bound``, k is fixed.
    """
    B, K = xn.shape[0], weight.shape[0]
    k = min(k, K)
    max_k = min(max(max_k, k), K)
    top_v = xn.new_empty(B, 0)
    top_i = torch.empty(B, 0, dtype=torch.long, device=xn.device)
    left = xn.new_full((B,), -math.inf)
    thr = torch.full((B,), -math.inf, dtype=torch.float64, device=xn.device)
    zy = xn.new_empty(B)
    best_cos = xn.new_full((B,), -math.inf)
    best_idx = torch.zeros(B, dtype=torch.long, device=xn.device)
    buffer = xn.new_empty(B * min(chunk, K))
    for start in range(0, K, chunk):
        z, rows, zt, (m, arg) = _chunk_logits(
            xn, weight[start : start + chunk], start, y, s, target_logit, buffer, True
        )
        zy[rows] = zt.to(zy.dtype)
        better = m > best_cos  # strict: the first maximal class wins, as argmax over the full row
        best_cos = torch.where(better, m, best_cos)
        best_idx = torch.where(better, arg + start, best_idx)
        while True:
            v, i, out = _merge(top_v, top_i, z, start, k)
            out = torch.maximum(out, left)
            if bound is None or k >= max_k:
                break
            risky = out.double() > thr
            if bool(risky.any()):
                r = risky.nonzero(as_tuple=True)[0]
                thr[r] = torch.maximum(thr[r], bound(v[r], i[r], r))
                risky = out.double() > thr
            if not bool(risky.any()):
                break
            k = min(2 * k, max_k)
        top_v, top_i, left = v, i, out
    return top_v, top_i, left, zy, best_idx


def _stream_candidates(
    xn: torch.Tensor, weight: torch.Tensor, y: torch.Tensor, s: float, target_logit: TargetLogit, chunk: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pass 1 with a fixed k = 32 (the sharded heads): the top-k logits (B×k, sorted) and their classes, the
    target logits, the margin-free top-1."""
    top_v, top_i, _, zy, best = _stream_top(xn, weight, y, s, target_logit, chunk, _CANDIDATES)
    return top_v, top_i, zy, best


def _stream_above(
    xn: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    thr: torch.Tensor,
    s: float,
    target_logit: TargetLogit,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass 2 (for some rows): every class with logit > thr, packed left into (R, n) values (−inf padding) and
    classes (−1 padding), ascending classes per row, n the largest count of a row. Each chunk contributes its
    (row, class, value) triples; they are packed once at the end."""
    R, K = xn.shape[0], weight.shape[0]
    # compare in the logits' dtype with the bound rounded down: an extra class only adds a zero of p
    t = torch.nextafter(thr.to(xn.dtype), torch.full_like(thr, -math.inf, dtype=xn.dtype))[:, None]
    buffer = xn.new_empty(R * min(chunk, K))
    rows, classes, values = [], [], []
    for start in range(0, K, chunk):
        z = _chunk_logits(xn, weight[start : start + chunk], start, y, s, target_logit, buffer)[0]
        r, c = (z > t).nonzero(as_tuple=True)
        rows.append(r)
        classes.append(c + start)
        values.append(z[r, c])
    r, c, v = torch.cat(rows), torch.cat(classes), torch.cat(values)
    order = torch.argsort(r, stable=True)  # by row; within a row, chunk order: ascending classes
    r, c, v = r[order], c[order], v[order]
    counts = torch.bincount(r, minlength=R)
    pos = torch.arange(r.numel(), device=r.device) - (torch.cumsum(counts, 0) - counts)[r]
    width = max(int(counts.max()), 1)
    vals = xn.new_full((R, width), -math.inf)
    cls = torch.full((R, width), -1, dtype=torch.long, device=xn.device)
    vals[r, pos] = v
    cls[r, pos] = c
    return vals, cls


def _pack(valid: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pack the ``valid`` entries of each row left (width = the largest count); returns (valid, *values) packed."""
    pos, ok = _candidates_above(valid.to(torch.float32), torch.full(valid.shape[:1], 0.5, device=valid.device))
    return (ok, *(v.gather(1, pos) for v in values))


def _pad(t: torch.Tensor, width: int, fill: float | int) -> torch.Tensor:
    return torch.cat([t, t.new_full((t.shape[0], width - t.shape[1]), fill)], dim=1) if t.shape[1] < width else t


def _solve_streaming(
    xn: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    s: float,
    target_logit: TargetLogit,
    target_q: torch.Tensor | None,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The exact α-softargmax of every row from the stream: (classes, logits, p) of the candidates (B×w, p = 0 on
    padding and on candidates outside the support), the target logits and the margin-free top-1."""

    def solve_on(v, c, rows):
        tpos = None
        if target_q is not None:
            hit = c == y[rows, None]
            tpos = torch.where(hit.any(dim=1), hit.long().argmax(dim=1), -1)  # −1: the target is not a candidate
        sol = solve(v, alpha, None, tpos, None if target_q is None else target_q[rows])
        return sol, c.gather(1, sol.index), v.gather(1, sol.index)

    def bound(v, c, rows):
        return _threshold_bound(solve_on(v, c, rows)[0].tau, alpha)

    vals, cls, left, zy, best = _stream_top(xn, weight, y, s, target_logit, chunk, _CANDIDATES, bound, _MAX_CANDIDATES)
    sol, index, logits = solve_on(vals, cls, torch.arange(y.shape[0], device=y.device))
    prob = sol.prob
    # exact iff every class left out of the candidates is at or below the threshold (then its p is 0)
    thr = _threshold_bound(sol.tau, alpha)
    rows = (left.double() > thr).nonzero(as_tuple=True)[0]
    if rows.numel() > 0:
        v2, c2 = _stream_above(xn[rows], weight, y[rows], thr[rows], s, target_logit, chunk)
        sol2, index2, logits2 = solve_on(v2, c2, rows)
        width = max(index.shape[1], index2.shape[1])
        index, logits, prob = _pad(index, width, 0), _pad(logits, width, 0.0), _pad(prob, width, 0.0)
        index[rows] = _pad(index2, width, 0)
        logits[rows] = _pad(logits2, width, 0.0)
        prob[rows] = _pad(sol2.prob, width, 0.0)
    return index, logits, prob, zy, best


def _gathered_logits(x: torch.Tensor, rows_w: torch.Tensor, s: float, target_logit: TargetLogit) -> torch.Tensor:
    """Logits of the classes whose prototypes are ``rows_w`` (B×n×d), the last one of each row being its target:
    ``s·cos`` for the others, ``target_logit(cos_y)`` for the target (the dense head's formulas)."""
    xn = l2_normalize(x, dim=1)
    cos = torch.einsum("bd,bnd->bn", xn, l2_normalize(rows_w, dim=2)).clamp(-1.0, 1.0)
    return torch.cat([s * cos[:, :-1], target_logit(cos[:, -1])[:, None].to(cos.dtype)], dim=1)


class _StreamingGradient(torch.autograd.Function):
    """Returns the precomputed per-sample losses; backward ``Σ_j coef_ij ∂z_ij/∂(x, W)`` with ``coef = (p − e_y)·g``
    on the gathered classes ``cls`` (B×(r+1), target last), recomputed from x and ``W[cls]`` in blocks of rows;
    ``dL/dW`` is sparse (one stored row per distinct class of ``cls``)."""

    @staticmethod
    def forward(ctx, x, weight, values, cls, prob, s, target_logit):
        ctx.save_for_backward(x, weight, cls, prob)
        ctx.s, ctx.target_logit = s, target_logit
        return values.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_values):
        x, weight, cls, prob = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_x or need_w):
            return None, None, None, None, None, None, None
        coef = prob.clone()
        coef[:, -1] -= 1.0  # p − e_y: the target is the last column
        coef = (coef * grad_values.to(prob.dtype)[:, None]).to(x.dtype)
        (B, n), d = cls.shape, weight.shape[1]
        w = weight.detach()
        gx = torch.empty_like(x) if need_x else None
        if need_w:
            classes, inverse = torch.unique(cls, return_inverse=True)  # sorted: the COO below is coalesced
            gw = x.new_zeros(classes.numel(), d)
        rows = max(1, _BACKWARD_PAIRS // n)
        for a in range(0, B, rows):
            b = min(B, a + rows)
            with torch.enable_grad():
                xl = x[a:b].detach().requires_grad_(need_x)
                wl = w[cls[a:b]].to(x.dtype).requires_grad_(need_w)
                z = _gathered_logits(xl, wl, ctx.s, ctx.target_logit)
                grads = list(torch.autograd.grad(z, [t for t in (xl, wl) if t.requires_grad], coef[a:b]))
            if need_x:
                gx[a:b] = grads.pop(0)
            if need_w:
                gw.index_add_(0, inverse[a:b].reshape(-1), grads.pop(0).reshape(-1, d))
        gw_sparse = None
        if need_w:
            gw_sparse = torch.sparse_coo_tensor(
                classes[None], gw.to(weight.dtype), weight.shape, check_invariants=False, is_coalesced=True
            )
        return gx, gw_sparse, None, None, None, None, None


def streaming_alpha_loss(
    x: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    s: float,
    target_logit: TargetLogit,
    target_q: torch.Tensor | None = None,
    chunk_size: int = 65536,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-sample α-divergence loss ``L = Σ_j p_j (z_j − z_y) + (q_y^{1−α} − Σ_j q_j^{1−α} p_j^α)/(α(α−1))`` on the
    logits ``z_j = s·cos θ_j`` (j ≠ y), ``z_y = target_logit(cos θ_y)``, computed by streaming W (K×d) in chunks.

    Args:
        x: embeddings (B×d), float32 or float64 (the compute dtype; W is cast chunk by chunk).
        weight: the prototypes W (K×d); receives a sparse COO gradient.
        y: target classes (B,), validated by the caller.
        alpha: α > 1.
        s: the scale of the non-target logits.
        target_logit: maps the target cosines (n,) to the target logits (n,), differentiably (the head's margin).
        target_q: optional (B,) reference weight of each row's target (Q-Margin's κ); q = 1 elsewhere.
        chunk_size: prototypes per chunk.

    Returns the (B,) losses (differentiable in x and W) and the head statistics ``accuracy`` (margin-free top-1),
    ``support_size`` (mean |supp p|) and ``py_zero`` (fraction with p_y = 0). Equal to the dense head's loss and
    gradients up to rounding (same formulas; the solver is exact); see the module docstring.
    """
    check_chunk_size(chunk_size, alpha)
    with torch.no_grad():
        xd = x.detach()
        xn = l2_normalize(xd, dim=1)
        index, logits, prob, zy, best = _solve_streaming(
            xn, weight.detach(), y, alpha, s, target_logit, target_q, chunk_size
        )
        p_y = ((index == y[:, None]) * prob).sum(dim=1)
        # compact: the support classes other than the target, then the target (last column)
        ok, cls_s, z_s, p_s = _pack((prob > 0) & (index != y[:, None]), index, logits, prob)
        cls = torch.cat([torch.where(ok, cls_s, y[:, None]), y[:, None]], dim=1)
        zc = torch.cat([torch.where(ok, z_s, zy[:, None].to(z_s.dtype)), zy[:, None].to(z_s.dtype)], dim=1)
        pc = torch.cat([torch.where(ok, p_s, 0.0), p_y[:, None]], dim=1)
        n = cls.shape[1]
        compact = AlphaSolution(
            index=torch.arange(n, device=y.device).expand(y.shape[0], n), prob=pc, tau=torch.zeros_like(p_y)
        )
        target_col = torch.full_like(y, n - 1)
        values = _loss_from_solution(zc, target_col, alpha, None, target_q, compact).to(x.dtype)
        stats = {
            "accuracy": (best == y).float().mean(),
            "support_size": (prob > 0).sum(dim=1).float().mean(),
            "py_zero": (p_y <= 0).float().mean(),
        }
    per = _StreamingGradient.apply(x, weight, values, cls, pc, s, target_logit)
    return per, stats
