"""Sharded α heads (``sharded=True``): W split over the processes of torch.distributed, the loss exact.

Every rank sees the global batch (one all-gather), streams its own slice of W (:mod:`.stream`), and contributes its
top-k candidates and its targets to one pooled all-gather; every rank then solves every row with the exact solver
of :mod:`veriloss.functional.alpha_solver` on the same data (rows whose support may reach past some rank's candidates
take a second, exact pass). The backward pass differentiates each rank's own support classes and targets; the
embedding gradient is reduce-scattered and scaled by the world size (DDP averages it back). Design, gradient convention,
communication and memory: docs/alpha-heads.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...functional.alpha import loss_from_solution
from ...functional.alpha_solver import solve
from ...functional.normalize import l2_normalize
from . import collectives as C
from . import stream
from .logits import AlphaLogits
from .shards import Shard

__all__ = ["sharded_alpha_loss"]


def _row_cosines(xn: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x̂_i·Ŵ_i`` row by row (x already normalized), clamped to [−1, 1] as :func:`veriloss.heads.base.cosine`."""
    return (xn * l2_normalize(w, dim=1)).sum(dim=1).clamp(-1.0, 1.0)


@dataclass(frozen=True)
class _Pairs:
    """(row of the global batch, class of this rank's slice, p) triples: this rank's share of ``p − e_y``."""

    rows: torch.Tensor
    cls: torch.Tensor
    p: torch.Tensor


@dataclass(frozen=True)
class _Backward:
    """What the backward pass needs besides W: the global batch, this rank's support classes (other than the
    targets) and targets, the ranks' batch sizes, the head's logits, and whether W's gradient is sparse."""

    xg: torch.Tensor
    support: _Pairs
    targets: _Pairs
    counts: list[int]
    link: AlphaLogits
    sparse: bool


class _ShardedGradient(torch.autograd.Function):
    """Returns the precomputed per-row losses of the global batch. Backward: ``coef = (p − e_y)·g`` on this rank's
    support classes and targets; their logits are recomputed from the global batch and the gathered rows of the
    slice and differentiated; the embeddings' gradient is summed over ranks onto each rank's rows and scaled by the
    world size (the DDP convention of docs/alpha-heads.md)."""

    @staticmethod
    def forward(ctx, x, weight, values, plan: _Backward):
        ctx.save_for_backward(weight)
        ctx.plan, ctx.x_dtype = plan, x.dtype
        return values.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_values):
        (weight,) = ctx.saved_tensors
        plan: _Backward = ctx.plan
        e, t, xg = plan.support, plan.targets, plan.xg
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        g = grad_values.to(xg.dtype)
        with torch.enable_grad():
            xl = xg.detach().requires_grad_(need_x)
            we = weight.detach()[e.cls].to(xg.dtype).requires_grad_(need_w)
            wt = weight.detach()[t.cls].to(xg.dtype).requires_grad_(need_w)
            xn = l2_normalize(xl, dim=1)
            ze = plan.link.s * _row_cosines(xn[e.rows], we)
            zt = plan.link.target_logit(_row_cosines(xn[t.rows], wt)).to(xg.dtype)
            # Σ coef·z: its gradient is the vector-Jacobian product with coef (a scalar output: no grad_outputs)
            total = (ze * (e.p.to(xg.dtype) * g[e.rows])).sum() + (zt * ((t.p.to(xg.dtype) - 1.0) * g[t.rows])).sum()
            inputs = [v for v in (xl, we, wt) if v.requires_grad]
            grads = list(torch.autograd.grad(total, inputs, allow_unused=True)) if inputs else []
        grads = [torch.zeros_like(v) if gr is None else gr for v, gr in zip(inputs, grads)]
        gx = gw = None
        if need_x:
            gx = (C.reduce_scatter_rows(grads.pop(0), plan.counts) * C.world()).to(ctx.x_dtype)
        if need_w:
            idx = torch.cat([e.cls, t.cls])
            rows = torch.cat(grads).to(weight.dtype)
            if plan.sparse:
                gw = torch.sparse_coo_tensor(idx[None], rows, weight.shape, check_invariants=False).coalesce()
            else:
                gw = torch.zeros_like(weight).index_add_(0, idx, rows)
        return gx, gw, None, None


def _pooled(pack: torch.Tensor, rows: int) -> torch.Tensor:
    """All-gather a (rows × n) pack; returns (rows × W × n): each row's contributions of every rank."""
    return C.all_gather(pack).view(C.world(), rows, -1).transpose(0, 1)


def _solve_pooled(values: torch.Tensor, classes: torch.Tensor, y: torch.Tensor, alpha: float, tq):
    """The exact α-softargmax of each row on pooled candidates (the target is among them exactly once)."""
    tpos = (classes == y[:, None]).long().argmax(dim=1)
    return solve(values, alpha, None, None if tq is None else tpos, tq), tpos


def sharded_alpha_loss(
    x: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    link: AlphaLogits,
    shard: Shard,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-row α-divergence losses ``L = Σ_j p_j (z_j − z_y) + (q_y^{1−α} − Σ_j q_j^{1−α} p_j^α)/(α(α−1))`` of the
    *global* batch (all ranks' rows, rank order) on the logits of ``link`` (α > 1), with W split over the ranks: this
    rank holds ``weight = W[shard.start:shard.end]`` (a kernel: the inputs are the head's, already checked).

    ``x`` (b_r×d, compute dtype) and ``y`` (b_r,, global classes) are this rank's batch. ``chunk_size`` None: one
    B×K_r logit block and a dense gradient of ``weight``; an integer: streamed in chunks, sparse COO gradient.
    Returns the (B,) losses, identical on every rank (differentiable in ``x`` and ``weight``), and the statistics
    ``accuracy``, ``support_size`` and ``py_zero`` of the global batch. A collective: every rank must call it.
    """
    world, alpha = C.world(), link.alpha
    n_local = weight.shape[0]
    start, end = shard.start, shard.end
    widths = shard.sizes()
    with torch.no_grad():
        xd = x.detach()
        dtype = xd.dtype
        counts = [xd.shape[0]]
        if world > 1:  # the ranks' batch sizes: a data-dependent size, read once
            counts = C.all_gather(torch.tensor([xd.shape[0]], device=xd.device)).tolist()
        both = C.all_gather_rows(torch.cat([xd, C.as_bits(y, dtype)[:, None]], dim=1), counts)
        xg, yg = both[:, :-1], C.from_bits(both[:, -1])
        B = xg.shape[0]
        tq = link.target_q(yg)
        xn = l2_normalize(xg, dim=1)
        y_rel = yg - start
        local_t = (y_rel >= 0) & (y_rel < n_local)
        chunk = chunk_size or n_local
        w = weight.detach()

        # pass 1: local candidates (top-k, plus the target where not among them), pooled over ranks
        top_v, top_i, zy, best = stream.stream_candidates(xn, w, y_rel, link, chunk)
        zy = torch.where(local_t, zy, -math.inf)  # the stream leaves the other rows' target logit unset
        kk = min(stream.CANDIDATES, max(widths))
        extra = torch.where((top_i == y_rel[:, None]).any(dim=1), -math.inf, zy)
        vals = torch.cat([stream.pad(top_v, kk, -math.inf), extra[:, None]], dim=1)
        cls = torch.cat([stream.pad(top_i + start, kk, -1), torch.where(local_t, yg, -1)[:, None]], dim=1)
        best_cos = _row_cosines(xn, w[best].to(dtype))
        pack = torch.cat([vals, C.as_bits(cls, dtype), best_cos[:, None], (best == y_rel).to(dtype)[:, None]], dim=1)
        pooled = _pooled(pack, B)
        n1 = kk + 1
        V = pooled[..., :n1].reshape(B, world * n1)
        CL = C.from_bits(pooled[..., n1 : 2 * n1]).reshape(B, world * n1)
        accuracy = pooled[..., 2 * n1 + 1].gather(1, pooled[..., 2 * n1].argmax(dim=1, keepdim=True)).mean()
        sol, tpos = _solve_pooled(V, CL, yg, alpha, tq)
        values = loss_from_solution(V, tpos, alpha, None, tq, sol)
        classes, prob, p_y = CL.gather(1, sol.index), sol.prob, sol.at(tpos)

        # pass 2: rows whose support may reach past some rank's candidates
        last = [r * n1 + kk - 1 for r in range(world) if widths[r] > stream.CANDIDATES]
        if last:
            undone = (sol.dense(V.shape[1])[:, last] > 0).any(dim=1)
            # the same rows on every rank, whatever the rounding of each rank's solve
            undone = C.all_reduce_max(undone.to(torch.uint8)).bool()
            rows = undone.nonzero(as_tuple=True)[0]
            if rows.numel() > 0:
                R = rows.numel()
                thr = stream.threshold_bound(sol.tau[rows], alpha)  # the pooled root is a lower bound of the true one
                v2, c2 = stream.stream_above(xn[rows], w, y_rel[rows], thr, link, chunk)
                drop = (c2 == y_rel[rows, None]) | (v2 == -math.inf)  # the target comes once, as the extra column
                v2 = torch.cat([torch.where(drop, -math.inf, v2), zy[rows, None]], dim=1)
                c2 = torch.cat(
                    [torch.where(drop, -1, c2 + start), torch.where(local_t[rows], yg[rows], -1)[:, None]], 1
                )
                width = v2.shape[1]
                if world > 1:  # the widest contribution: a data-dependent size
                    width = int(C.all_gather(torch.tensor([width], device=xd.device)).max())
                packed = torch.cat([stream.pad(v2, width, -math.inf), C.as_bits(stream.pad(c2, width, -1), dtype)], 1)
                pooled2 = _pooled(packed, R)
                V2 = pooled2[..., :width].reshape(R, world * width)
                C2 = C.from_bits(pooled2[..., width:]).reshape(R, world * width)
                tq2 = None if tq is None else tq[rows]
                sol2, tpos2 = _solve_pooled(V2, C2, yg[rows], alpha, tq2)
                values[rows] = loss_from_solution(V2, tpos2, alpha, None, tq2, sol2)
                n = max(classes.shape[1], sol2.index.shape[1])
                classes, prob = stream.pad(classes, n, -1), stream.pad(prob, n, 0.0)
                classes[rows] = stream.pad(C2.gather(1, sol2.index), n, -1)
                prob[rows] = stream.pad(sol2.prob, n, 0.0)
                p_y[rows] = sol2.at(tpos2)

        # this rank's share of the gradient: its support classes other than the target, and its targets
        mine = (prob > 0) & (classes >= start) & (classes < end) & (classes != yg[:, None])
        e_rows, e_col = mine.nonzero(as_tuple=True)
        t_rows = local_t.nonzero(as_tuple=True)[0]
        plan = _Backward(
            xg=xg,
            support=_Pairs(e_rows, classes[e_rows, e_col] - start, prob[e_rows, e_col]),
            targets=_Pairs(t_rows, y_rel[t_rows], p_y[t_rows]),
            counts=counts,
            link=link,
            sparse=chunk_size is not None,
        )
        stats = {
            "accuracy": accuracy.float(),
            "support_size": (prob > 0).sum(dim=1).float().mean(),
            "py_zero": (p_y <= 0).float().mean(),
        }
    per = _ShardedGradient.apply(x, weight, values.to(dtype), plan)
    return per, stats
