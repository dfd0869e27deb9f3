"""Streaming α heads: the exact α-divergence loss on cosine logits without a B×K logit matrix or a dense K×d gradient.

For α > 1 the α-softargmax is sparse: its support is the top few logits of each row (LOSSES.md §2), and the loss
gradient ``p − e_y`` is non-zero only there and at the target. :func:`streaming_alpha_loss` therefore

1. streams the prototypes W in chunks of ``chunk_size`` rows: ``cos = x̂·Ŵ_chunkᵀ`` (each chunk's rows normalized on
   the fly), the head's target margin applied to the target column, a running top-k (k = 32) of the logits per row,
   the target logit and the margin-free top-1 (for the batch accuracy);
2. solves the α-softargmax on the candidates with the exact solver of :mod:`veriloss.functional.alpha`; a row whose
   candidates may not hold its whole support (the smallest candidate still has p > 0) gets a second stream over W
   that collects every class above the candidates' root, a lower bound of the true threshold, and is solved on
   those: exact whatever the support size (the dense solver's two-pass scheme, with both passes chunked);
3. keeps only the sparse solution: per row the support classes other than the target, plus the target, their
   logits and their probabilities (B×(r+1), r the widest support of the batch).

The backward pass recomputes the logits of those r+1 classes per row from ``x`` and the gathered rows ``W[cls]``
(B×(r+1)×d) and differentiates them by autograd with the Fenchel–Young gradient ``p − e_y`` (times the incoming
gradient): through the normalizations of x and W, the clamp of the cosine and the head's target margin, exactly the
operations of the dense head. ``dL/dW`` is returned as a coalesced sparse COO tensor (K×d, one stored row per class
in a support or a target of the batch); it accumulates into ``W.grad`` as sparse + sparse = sparse (and
sparse + dense = dense if another loss adds a dense gradient). Use an optimizer that accepts sparse gradients, e.g.
:class:`veriloss.train.sparse_optim.LazySGD`.

Memory beyond W itself: one B×C logit chunk and one C×d normalized chunk per step of the stream (C = chunk_size), the
B×k candidates, and B×(r+1)×d gathered rows in the backward pass; nothing of size B×K or K×d. Each forward reads W
once, or twice when some row's support exceeds the 32 candidates (only those rows are recomputed).
Choice (ours): the margin-free accuracy statistic is the top-1 of the same stream (ties: the lowest class index, as
``argmax`` in the dense heads). Margins are supported on the target column only (all α heads of LOSSES.md §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..functional.alpha import AlphaSolution, _candidates_above, _loss_from_solution, solve

__all__ = ["check_chunk_size", "streaming_alpha_loss"]

_CANDIDATES = 32

TargetLogit = Callable[[torch.Tensor], torch.Tensor]


def check_chunk_size(chunk_size: int | None, alpha: float) -> int | None:
    """``chunk_size`` (prototypes per chunk of the stream) must be None (dense path) or an integer ≥ 1, with α > 1."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer (prototypes per chunk) or None, got {chunk_size!r}")
    if alpha <= 1.0:
        raise ValueError(
            f"chunk_size (streaming) needs a sparse α-softargmax, i.e. alpha > 1; got alpha={alpha!r} (α = 1 is the"
            " dense softmax): leave chunk_size=None"
        )
    return chunk_size


def _chunk_cosines(xn: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x̂·Ŵ_chunkᵀ`` clamped to [−1, 1], as :func:`veriloss.heads.base.cosine` (x already normalized)."""
    return (xn @ F.normalize(w.to(xn.dtype), dim=1).t()).clamp(-1.0, 1.0)


def _chunk_logits(
    xn: torch.Tensor, w: torch.Tensor, start: int, y: torch.Tensor, s: float, target_logit: TargetLogit
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits of one chunk of classes [start, start + len(w)): ``s·cos``, the target column replaced by
    ``target_logit(cos_y)``. Returns (cos, z, rows whose target is in the chunk, their target logits)."""
    cos = _chunk_cosines(xn, w)
    z = s * cos
    rows = ((y >= start) & (y < start + w.shape[0])).nonzero(as_tuple=True)[0]
    cols = y[rows] - start
    zt = target_logit(cos[rows, cols])
    z[rows, cols] = zt.to(z.dtype)
    return cos, z, rows, zt


def _pack(valid: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pack the ``valid`` entries of each row left (width = the largest count); returns (valid, *values) packed."""
    pos, ok = _candidates_above(valid.to(torch.float32), torch.full(valid.shape[:1], 0.5, device=valid.device))
    return (ok, *(v.gather(1, pos) for v in values))


def _stream_candidates(
    xn: torch.Tensor, weight: torch.Tensor, y: torch.Tensor, s: float, target_logit: TargetLogit, chunk: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pass 1: the running top-k logits (B×k, sorted) and their classes, the target logits, the margin-free top-1."""
    B, K = xn.shape[0], weight.shape[0]
    k = min(K, _CANDIDATES)
    top_v = xn.new_empty(B, 0)
    top_i = torch.empty(B, 0, dtype=torch.long, device=xn.device)
    zy = xn.new_empty(B)
    best_cos = xn.new_full((B,), -math.inf)
    best_idx = torch.zeros(B, dtype=torch.long, device=xn.device)
    for start in range(0, K, chunk):
        cos, z, rows, zt = _chunk_logits(xn, weight[start : start + chunk], start, y, s, target_logit)
        zy[rows] = zt.to(zy.dtype)
        arg = cos.argmax(dim=1)
        m = cos.gather(1, arg[:, None])[:, 0]
        better = m > best_cos  # strict: the first maximal class wins, as argmax over the full row
        best_cos = torch.where(better, m, best_cos)
        best_idx = torch.where(better, arg + start, best_idx)
        v, i = torch.topk(z, min(k, z.shape[1]), dim=1, sorted=False)
        v, i = torch.cat([top_v, v], dim=1), torch.cat([top_i, i + start], dim=1)
        v, sel = torch.topk(v, min(k, v.shape[1]), dim=1, sorted=True)
        top_v, top_i = v, i.gather(1, sel)
    return top_v, top_i, zy, best_idx


def _stream_above(
    xn: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    thr: torch.Tensor,
    s: float,
    target_logit: TargetLogit,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass 2 (for some rows): every class with logit > thr, packed into (R, n) values (−inf padding) and classes."""
    R = xn.shape[0]
    vals = xn.new_empty(R, 0)
    cls = torch.empty(R, 0, dtype=torch.long, device=xn.device)
    for start in range(0, weight.shape[0], chunk):
        _, z, _, _ = _chunk_logits(xn, weight[start : start + chunk], start, y, s, target_logit)
        above = z > thr[:, None]
        if not bool(above.any()):
            continue
        cols = torch.arange(start, start + z.shape[1], device=xn.device).expand(R, -1)
        ok, v, c = _pack(
            torch.cat([vals > -math.inf, above], dim=1), torch.cat([vals, z], 1), torch.cat([cls, cols], 1)
        )
        vals, cls = torch.where(ok, v, -math.inf), c
    return vals, cls


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
    K = weight.shape[0]
    vals, cls, zy, best = _stream_candidates(xn, weight, y, s, target_logit, chunk)
    k = vals.shape[1]

    def solve_on(v, c, rows):
        tpos = None
        if target_q is not None:
            hit = c == y[rows, None]
            tpos = torch.where(hit.any(dim=1), hit.long().argmax(dim=1), -1)  # −1: the target is not a candidate
        sol = solve(v, alpha, None, tpos, None if target_q is None else target_q[rows])
        return sol, c.gather(1, sol.index), v.gather(1, sol.index)

    all_rows = torch.arange(y.shape[0], device=y.device)
    sol, index, logits = solve_on(vals, cls, all_rows)
    prob = sol.prob
    if k < K:
        # exact iff the smallest candidate is outside the support (then so is every class below it)
        last = torch.full_like(y, k - 1)
        rows = (sol.at(last) > 0).nonzero(as_tuple=True)[0]
        if rows.numel() > 0:
            # the candidates' root is a lower bound of the true threshold τ − 1/(α−1); round it down a little:
            # an extra class above it only adds a zero of p, a missing one would be an error
            thr = sol.tau[rows] - 1.0 / (alpha - 1.0)
            thr = thr - 16 * torch.finfo(torch.float64).eps * (thr.abs() + 1.0 / (alpha - 1.0) + 1.0)
            v2, c2 = _stream_above(xn[rows], weight, y[rows], thr, s, target_logit, chunk)
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
    xn = F.normalize(x, dim=1)
    cos = torch.einsum("bd,bnd->bn", xn, F.normalize(rows_w, dim=2)).clamp(-1.0, 1.0)
    return torch.cat([s * cos[:, :-1], target_logit(cos[:, -1])[:, None].to(cos.dtype)], dim=1)


class _StreamingGradient(torch.autograd.Function):
    """Returns the precomputed per-sample losses; backward ``Σ_j coef_ij ∂z_ij/∂(x, W)`` with ``coef = (p − e_y)·g``
    on the gathered classes ``cls`` (B×(r+1), target last), recomputed from x and ``W[cls]``; ``dL/dW`` is sparse."""

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
        coef = prob.clone()
        coef[:, -1] -= 1.0  # p − e_y: the target is the last column
        coef = (coef * grad_values.to(prob.dtype)[:, None]).to(x.dtype)
        with torch.enable_grad():
            xl = x.detach().requires_grad_(need_x)
            wl = weight.detach()[cls].to(x.dtype).requires_grad_(need_w)
            z = _gathered_logits(xl, wl, ctx.s, ctx.target_logit)
            inputs = [t for t in (xl, wl) if t.requires_grad]
            grads = list(torch.autograd.grad(z, inputs, coef)) if inputs else []
        gx = grads.pop(0) if need_x else None
        gw = None
        if need_w:
            d = weight.shape[1]
            gw = torch.sparse_coo_tensor(
                cls.reshape(1, -1), grads.pop(0).reshape(-1, d).to(weight.dtype), weight.shape, check_invariants=False
            ).coalesce()
        return gx, gw, None, None, None, None, None


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
        xn = F.normalize(xd, dim=1)
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
