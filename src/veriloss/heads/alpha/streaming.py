"""Streaming α heads (``chunk_size``): the exact α loss without a B×K logit matrix or a dense K×d gradient.

W is read in chunks (:mod:`.stream`): a running top-k per row that grows until every left-out logit is outside the
support, then the exact solver of :mod:`veriloss.functional.alpha_solver` on the candidates (a second stream for rows
whose support outgrows the cap); only the support classes and the target are kept. The backward pass recomputes
their logits from ``x`` and ``W[classes]`` in blocks of rows and returns a sparse COO gradient for W (train it with
:class:`veriloss.train.sparse_optim.LazySGD`). Design and memory bounds: docs/alpha-heads.md.
"""

from __future__ import annotations

import torch

from ...functional.alpha import loss_from_solution
from ...functional.alpha_solver import AlphaSolution, candidates_above, solve
from ...functional.normalize import l2_normalize
from . import stream
from .logits import AlphaLogits

__all__ = ["streaming_alpha_loss"]

#: (row, class) pairs per block of the backward pass on the CPU (the block's gathered prototypes stay in cache); on
#: an accelerator, where each block costs some 30 kernel launches, blocks of 2**25 gathered elements (128 MiB in
#: float32): one block for B = 256 and supports of hundreds at d = 512
_BACKWARD_PAIRS = 512
_DEVICE_BACKWARD_ELEMENTS = 2**25


def _pack(valid: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pack the ``valid`` entries of each row left (width = the largest count); returns (valid, *values) packed."""
    pos, ok = candidates_above(valid.to(torch.float32), torch.full(valid.shape[:1], 0.5, device=valid.device))
    return (ok, *(v.gather(1, pos) for v in values))


def _solve_streaming(
    xn: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    link: AlphaLogits,
    target_q: torch.Tensor | None,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The exact α-softargmax of every row from the stream: (classes, logits, p) of the candidates (B×w, p = 0 on
    padding and on candidates outside the support), the target logits and the margin-free top-1."""
    alpha = link.alpha

    def solve_on(v, c, rows):
        tpos = None
        if target_q is not None:
            hit = c == y[rows, None]
            tpos = torch.where(hit.any(dim=1), hit.long().argmax(dim=1), -1)  # −1: the target is not a candidate
        sol = solve(v, alpha, None, tpos, None if target_q is None else target_q[rows])
        return sol, c.gather(1, sol.index), v.gather(1, sol.index)

    def bound(v, c, rows):
        return stream.threshold_bound(solve_on(v, c, rows)[0].tau, alpha)

    vals, cls, left, zy, best = stream.stream_top(
        xn, weight, y, link, chunk, stream.CANDIDATES, bound, stream.MAX_CANDIDATES
    )
    sol, index, logits = solve_on(vals, cls, torch.arange(y.shape[0], device=y.device))
    prob = sol.prob
    # exact iff every class left out of the candidates is at or below the threshold (then its p is 0)
    thr = stream.threshold_bound(sol.tau, alpha)
    rows = (left.double() > thr).nonzero(as_tuple=True)[0]
    if rows.numel() > 0:
        v2, c2 = stream.stream_above(xn[rows], weight, y[rows], thr[rows], link, chunk)
        sol2, index2, logits2 = solve_on(v2, c2, rows)
        width = max(index.shape[1], index2.shape[1])
        index, logits, prob = stream.pad(index, width, 0), stream.pad(logits, width, 0.0), stream.pad(prob, width, 0.0)
        index[rows] = stream.pad(index2, width, 0)
        logits[rows] = stream.pad(logits2, width, 0.0)
        prob[rows] = stream.pad(sol2.prob, width, 0.0)
    return index, logits, prob, zy, best


def _rows_per_block(device: torch.device, n: int, d: int) -> int:
    """Batch rows per block of the backward pass, ``n`` gathered classes a row of dimension ``d``."""
    pairs = _BACKWARD_PAIRS if device.type == "cpu" else max(_BACKWARD_PAIRS, _DEVICE_BACKWARD_ELEMENTS // d)
    return max(1, pairs // n)


def _gathered_logits(x: torch.Tensor, rows_w: torch.Tensor, link: AlphaLogits) -> torch.Tensor:
    """Logits of the classes whose prototypes are ``rows_w`` (B×n×d), the last one of each row being its target:
    ``s·cos`` for the others, ``target_logit(cos_y)`` for the target (the dense head's formulas)."""
    xn = l2_normalize(x, dim=1)
    cos = torch.einsum("bd,bnd->bn", xn, l2_normalize(rows_w, dim=2)).clamp(-1.0, 1.0)
    return torch.cat([link.s * cos[:, :-1], link.target_logit(cos[:, -1])[:, None].to(cos.dtype)], dim=1)


class _StreamingGradient(torch.autograd.Function):
    """Returns the precomputed per-sample losses; backward ``Σ_j coef_ij ∂z_ij/∂(x, W)`` with ``coef = (p − e_y)·g``
    on the gathered classes ``cls`` (B×(r+1), target last), recomputed from x and ``W[cls]`` in blocks of rows;
    ``dL/dW`` is sparse (one stored row per distinct class of ``cls``)."""

    @staticmethod
    def forward(ctx, x, weight, values, cls, prob, link):
        ctx.save_for_backward(x, weight, cls, prob)
        ctx.link = link
        return values.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_values):
        x, weight, cls, prob = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_x or need_w):
            return None, None, None, None, None, None
        coef = prob.clone()
        coef[:, -1] -= 1.0  # p − e_y: the target is the last column
        coef = (coef * grad_values.to(prob.dtype)[:, None]).to(x.dtype)
        (B, n), d = cls.shape, weight.shape[1]
        w = weight.detach()
        gx = torch.empty_like(x) if need_x else None
        if need_w:
            classes, inverse = torch.unique(cls, return_inverse=True)  # sorted: the COO below is coalesced
            gw = x.new_zeros(classes.numel(), d)
        rows = _rows_per_block(x.device, n, d)
        for a in range(0, B, rows):
            b = min(B, a + rows)
            with torch.enable_grad():
                xl = x[a:b].detach().requires_grad_(need_x)
                wl = w[cls[a:b]].to(x.dtype).requires_grad_(need_w)
                z = _gathered_logits(xl, wl, ctx.link)
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
        return gx, gw_sparse, None, None, None, None


def streaming_alpha_loss(
    x: torch.Tensor, weight: torch.Tensor, y: torch.Tensor, link: AlphaLogits, chunk_size: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-sample α-divergence loss ``L = Σ_j p_j (z_j − z_y) + (q_y^{1−α} − Σ_j q_j^{1−α} p_j^α)/(α(α−1))`` on the
    logits of ``link`` (α > 1), computed by streaming W (K×d) in chunks of ``chunk_size`` prototypes (a kernel: the
    inputs are the head's, already checked).

    ``x`` (B×d) is in the compute dtype (W is cast chunk by chunk); W receives a sparse COO gradient. Returns the (B,)
    losses (differentiable in x and W) and the statistics ``accuracy`` (margin-free top-1), ``support_size`` (mean
    |supp p|) and ``py_zero`` (fraction with p_y = 0), as device tensors. Equal to the dense head's loss and
    gradients up to rounding (same formulas; the solver is exact).
    """
    target_q = link.target_q(y)
    with torch.no_grad():
        xn = l2_normalize(x.detach(), dim=1)
        index, logits, prob, zy, best = _solve_streaming(xn, weight.detach(), y, link, target_q, chunk_size)
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
        values = loss_from_solution(zc, target_col, link.alpha, None, target_q, compact).to(x.dtype)
        stats = {
            "accuracy": (best == y).float().mean(),
            "support_size": (prob > 0).sum(dim=1).float().mean(),
            "py_zero": (p_y <= 0).float().mean(),
        }
    per = _StreamingGradient.apply(x, weight, values, cls, pc, link)
    return per, stats
