"""Sharded α heads over torch.distributed: each rank holds a slice of the prototypes, the loss is exact.

The α-divergence heads (alpha, qmargin, a3m, a3m-i; LOSSES.md §2) with W (K×d) split over the ranks of the default
process group. Built by :func:`create` (``loss.params.sharded: true`` in a training config). Design (ours):

- **Classes.** Rank r of W owns the contiguous block ``[start_r, end_r)`` of :func:`shard_range`: the first
  ``K mod W`` ranks own ``⌈K/W⌉`` classes, the others ``⌊K/W⌋`` (W ≤ K: every rank owns at least one class). The
  slice is initialized with rows ``[start_r, end_r)`` of the dense head's initialization (the full K×d matrix is
  drawn once on every rank, then cut): under the same RNG seed on every rank (the trainer seeds every rank alike),
  the sharded head starts from the dense head's W.
- **Forward** (on every rank, in the order below; no B×K logits unless ``chunk_size`` is None, see 2):
  1. all-gather the batch sizes (ranks may hold different batch sizes), then the embeddings with the labels
     (one collective, padded to the largest batch): every rank sees the global batch, rows in rank order (B rows).
  2. the logits of the global batch against the local classes, with the head's target margin on the target column
     (dense B×K_r on the slice, or streamed in chunks of ``chunk_size`` prototypes by the code of
     :mod:`veriloss.heads.streaming`); per row the local top-k (k = 32) logits and their classes, the target logit
     on the rank that owns the target (added as an extra candidate when it is not in the top-k), and the
     margin-free best cosine of the slice (for the accuracy statistic).
  3. one all-gather of those candidates: every row has ``W·(k+1)`` pooled candidates that contain the global top-k
     and the target. Every rank solves every row with the exact solver of :mod:`veriloss.functional.alpha` on the
     same pooled data, so τ and p are the same on every rank.
  4. a row is exact when, on every rank owning more than k classes, the smallest candidate has p = 0 (every class
     left out has a logit at or below it). The other rows (the set is made identical on all ranks by an all-reduce
     of the flags: a safety net, not a correction) take the exact second pass: the pooled root is a lower bound of
     the true threshold (more classes only add mass), every rank contributes every local logit above it; the
     widths are all-gathered, then the values; each row is solved again on that union: exact whatever the support
     size (the dense solver's two-pass scheme, across ranks). Choice: a gather of the classes above the bound
     rather than an all-reduce-based root find (one collective per Newton step): two collectives, and the very
     solver of the dense head.
  5. the per-row loss from the solution (identical on every rank); the head returns the mean over the global
     batch, the same value on every rank.
- **Backward** (``p − e_y`` times the upstream gradient, the Fenchel–Young gradient): each rank differentiates the
  logits of its own support classes and of its own targets (gathered rows of its slice, as the streaming heads):
  the gradient of its slice of W, and a partial gradient of the global batch's embeddings, reduce-scattered (summed
  over ranks) back to each rank's own rows.

**Gradient convention.** The prototype gradient is ``∂L/∂W[start_r:end_r]`` of the global mean L (the slice of the
dense head's gradient on the global batch). The embedding gradient returned to rank r is ``W · ∂L/∂x_r`` (W the
world size): DistributedDataParallel *averages* the backbone's gradients over ranks, so the averaged backbone
gradient is exactly ``∂L/∂θ``, as a single process on the global batch; with equal batches it is also the gradient
a replicated head gives under DDP (each rank's mean over its own rows). The head's parameters must not be averaged
by DDP (each rank owns a different slice): keep them out with
``DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, sharded_parameter_names(model))``
before wrapping (the trainer does). Every rank must call forward and backward alike (collectives inside, also in
backward), with the same upstream gradient (true for ``loss.backward()`` of the common loss).

**Communication per step** (bytes received by each rank; e = 4 in float32, 8 in float64; b_max the largest local
batch, B the global batch, k̂ = min(32, ⌈K/W⌉)): all-gathers of W·8 (batch sizes), W·b_max·(d+1)·e (embeddings
and labels), W·B·(2k̂+4)·e (candidates, classes bit-packed in the value dtype, best cosines), an all-reduce of B
bytes (rows that need the second pass; only when a rank owns more than 32 classes); for R > 0 such rows,
W·8 + W·R·2n̂·e more (n̂ the widest contribution of a rank: its classes above the bound, plus the target); and in
backward a reduce-scatter of W·b_max·d·e (b_max·d·e received). Compute: every rank solves all B rows (cheap: on
W·(k+1) candidates per row).

**Memory.** The local logits are B×K_r (or B×chunk_size when streamed); the backward gathers one prototype row per
(row, local support class): E×d with E ≤ B·r (r the support size). The initialization draws the full K×d matrix
once per rank. ``chunk_size`` makes the prototype gradient a sparse COO tensor (train with
:class:`veriloss.train.sparse_optim.LazySGD`); without it the slice's gradient is dense (K_r×d).

**Checkpoints.** :func:`full_state_dicts` gathers each sharded head's slices (and the per-row optimizer state:
momentum, Adam moments, LazySGD's row clocks) into the whole-K layout of a dense head on rank 0;
:func:`local_state_dicts` cuts a whole-K state back to this rank's rows. A checkpoint is therefore independent of
the world size (resume with another number of processes, or with the dense head).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

from .._checks import check_int
from ..functional.alpha import _loss_from_solution, solve
from ..functional.normalize import l2_normalize
from .alpha import A3MHead, A3MIHead, AlphaHead, QMarginHead
from .registry import describe
from .streaming import _CANDIDATES, _pad, _stream_above, _stream_candidates, _threshold_bound

__all__ = [
    "ShardedA3MHead",
    "ShardedA3MIHead",
    "ShardedAlphaHead",
    "ShardedQMarginHead",
    "create",
    "full_state_dicts",
    "local_state_dicts",
    "shard_range",
    "sharded_alpha_loss",
    "sharded_parameter_names",
    "sharded_parameters",
]

TargetLogit = Callable[[torch.Tensor], torch.Tensor]
TargetMeasure = Callable[[torch.Tensor], "torch.Tensor | None"]

_INT_OF = {torch.float32: torch.int32, torch.float64: torch.int64}


# --------------------------------------------------------------------------------------------------------------
# process group and collectives (the default group; one process when torch.distributed is not initialized)
# --------------------------------------------------------------------------------------------------------------
def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def shard_range(num_classes: int, world_size: int, rank: int) -> tuple[int, int]:
    """The classes ``[start, end)`` of ``rank``: the first ``K mod W`` ranks own ``⌈K/W⌉`` classes, the others
    ``⌊K/W⌋``, in rank order (a balanced contiguous split). Needs ``1 ≤ W ≤ K``."""
    num_classes = check_int(num_classes, "num_classes", 1)
    world_size = check_int(world_size, "world_size", 1, what="a positive integer")
    rank = check_int(rank, "rank", 0, world_size - 1, what=f"an integer in [0, {world_size})")
    if world_size > num_classes:
        raise ValueError(
            f"a sharded head needs at least one class per process: num_classes={num_classes} is smaller than the"
            f" world size {world_size}; use fewer processes or the dense head"
        )
    base, extra = divmod(num_classes, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + int(rank < extra)


def _as_bits(ints: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Integers bit-cast into the float ``dtype`` of the same width (exact; undone by :func:`_from_bits`), so that
    classes travel in the same collective as the values."""
    return ints.to(_INT_OF[dtype]).view(dtype)


def _from_bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(_INT_OF[t.dtype]).long()


def _all_gather(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` (the same shape on every rank), concatenated along dim 0 in rank order."""
    if _world() == 1:
        return t
    out = t.new_empty((_world() * t.shape[0], *t.shape[1:]))
    dist.all_gather_single(out, t.contiguous())
    return out


def _pad_rows(t: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cat([t, t.new_zeros((n - t.shape[0], *t.shape[1:]))]) if t.shape[0] < n else t


def _all_gather_rows(t: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Every rank's ``t`` (``counts[r]`` rows on rank r), concatenated in rank order."""
    m = max(counts)
    out = _all_gather(_pad_rows(t, m))
    if min(counts) == m:
        return out
    return torch.cat([out[r * m : r * m + n] for r, n in enumerate(counts)])


def _reduce_scatter_rows(t: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Sum ``t`` (the global batch's rows, rank order) over ranks; return this rank's ``counts[rank]`` rows."""
    if _world() == 1:
        return t
    m = max(counts)
    blocks = t.split(counts)
    full = torch.cat([_pad_rows(blk, m) for blk in blocks]) if min(counts) < m else t
    out = t.new_empty((m, *t.shape[1:]))
    dist.reduce_scatter_single(out, full.contiguous())
    return out[: counts[_rank()]]


def _gather_rows_to_first(t: torch.Tensor, counts: list[int]) -> torch.Tensor | None:
    """Every rank's rows of ``t`` concatenated on rank 0 (None elsewhere)."""
    if _world() == 1:
        return t
    m = max(counts)
    padded = _pad_rows(t, m).contiguous()
    parts = [torch.empty_like(padded) for _ in counts] if _rank() == 0 else None
    dist.gather(padded, parts, dst=0)
    return torch.cat([p[:n] for p, n in zip(parts, counts)]) if parts is not None else None


# --------------------------------------------------------------------------------------------------------------
# the loss
# --------------------------------------------------------------------------------------------------------------
def _row_cosines(xn: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x̂_i·Ŵ_i`` row by row (x already normalized), clamped to [−1, 1] as :func:`veriloss.heads.base.cosine`."""
    return (xn * l2_normalize(w, dim=1)).sum(dim=1).clamp(-1.0, 1.0)


class _ShardedGradient(torch.autograd.Function):
    """Returns the precomputed per-row losses of the global batch. Backward: ``coef = (p − e_y)·g`` on this rank's
    support classes (rows ``e_rows``, local classes ``e_cls``, probabilities ``e_p``) and targets (``t_rows``,
    ``t_cls``, ``t_p``); the logits of those pairs are recomputed from the global batch ``xg`` and the gathered
    rows of the slice and differentiated; the embeddings' gradient is summed over ranks onto each rank's rows
    and scaled by the world size (the DDP convention of the module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, values, xg, e_rows, e_cls, e_p, t_rows, t_cls, t_p, counts, s, target_logit, sparse):
        ctx.save_for_backward(xg, weight, e_rows, e_cls, e_p, t_rows, t_cls, t_p)
        ctx.counts, ctx.s, ctx.target_logit, ctx.sparse, ctx.x_dtype = counts, s, target_logit, sparse, x.dtype
        return values.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_values):
        xg, weight, e_rows, e_cls, e_p, t_rows, t_cls, t_p = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        g = grad_values.to(xg.dtype)
        with torch.enable_grad():
            xl = xg.detach().requires_grad_(need_x)
            we = weight.detach()[e_cls].to(xg.dtype).requires_grad_(need_w)
            wt = weight.detach()[t_cls].to(xg.dtype).requires_grad_(need_w)
            xn = l2_normalize(xl, dim=1)
            ze = ctx.s * _row_cosines(xn[e_rows], we)
            zt = ctx.target_logit(_row_cosines(xn[t_rows], wt)).to(xg.dtype)
            # Σ coef·z: its gradient is the vector-Jacobian product with coef (a scalar output: no grad_outputs)
            total = (ze * (e_p.to(xg.dtype) * g[e_rows])).sum() + (zt * ((t_p.to(xg.dtype) - 1.0) * g[t_rows])).sum()
            inputs = [t for t in (xl, we, wt) if t.requires_grad]
            grads = list(torch.autograd.grad(total, inputs, allow_unused=True)) if inputs else []
        grads = [torch.zeros_like(t) if gr is None else gr for t, gr in zip(inputs, grads)]
        gx = gw = None
        if need_x:
            gx = (_reduce_scatter_rows(grads.pop(0), ctx.counts) * _world()).to(ctx.x_dtype)
        if need_w:
            idx = torch.cat([e_cls, t_cls])
            rows = torch.cat(grads).to(weight.dtype)
            if ctx.sparse:
                gw = torch.sparse_coo_tensor(idx[None], rows, weight.shape, check_invariants=False).coalesce()
            else:
                gw = torch.zeros_like(weight).index_add_(0, idx, rows)
        return gx, gw, *([None] * 12)


def _pooled(pack: torch.Tensor, rows: int) -> torch.Tensor:
    """All-gather a (rows × n) pack; returns (rows × W × n): each row's contributions of every rank."""
    return _all_gather(pack).view(_world(), rows, -1).transpose(0, 1)


def _solve_pooled(values: torch.Tensor, classes: torch.Tensor, y: torch.Tensor, alpha: float, tq):
    """The exact α-softargmax of each row on pooled candidates (the target is among them exactly once)."""
    tpos = (classes == y[:, None]).long().argmax(dim=1)
    return solve(values, alpha, None, None if tq is None else tpos, tq), tpos


def sharded_alpha_loss(
    x: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    s: float,
    target_logit: TargetLogit,
    target_measure: TargetMeasure,
    start: int,
    num_classes: int,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-row α-divergence losses ``L = Σ_j p_j (z_j − z_y) + (q_y^{1−α} − Σ_j q_j^{1−α} p_j^α)/(α(α−1))`` of the
    *global* batch (all ranks' rows, rank order) on the logits ``z_j = s·cos θ_j`` (j ≠ y),
    ``z_y = target_logit(cos θ_y)``, with W split over the ranks (see the module docstring).

    Args:
        x: this rank's embeddings (b_r×d) in the compute dtype (float32 or float64); validated by the caller.
        weight: this rank's prototypes ``W[start:start + K_r]``.
        y: this rank's labels (b_r,), global class indices.
        alpha: α > 1.
        s: the scale of the logits.
        target_logit: the head's margin on the target cosines (n,) → logits (n,), differentiable.
        target_measure: global labels (B,) → None (q = 1) or the (B,) reference weight of each target (Q-Margin's κ).
        start: the first class of this rank's slice.
        num_classes: K.
        chunk_size: None (dense B×K_r logits; dense gradient of ``weight``) or prototypes per chunk of the stream
            (sparse COO gradient of ``weight``).

    Returns the (B,) losses, identical on every rank (differentiable in ``x`` and ``weight``), and the statistics
    ``accuracy`` (margin-free top-1), ``support_size`` (mean |supp p|) and ``py_zero`` (fraction with p_y = 0) of
    the global batch. A collective: every rank must call it.
    """
    world = _world()
    n_local = weight.shape[0]
    end = start + n_local
    widths = [b - a for a, b in (shard_range(num_classes, world, r) for r in range(world))]
    if widths[_rank()] != n_local:
        raise ValueError(
            f"weight has {n_local} rows but rank {_rank()} owns {widths[_rank()]} of {num_classes} classes"
        )
    with torch.no_grad():
        xd = x.detach()
        dtype = xd.dtype
        counts = [xd.shape[0]]
        if world > 1:
            counts = _all_gather(torch.tensor([xd.shape[0]], device=xd.device)).tolist()
        both = _all_gather_rows(torch.cat([xd, _as_bits(y, dtype)[:, None]], dim=1), counts)
        xg, yg = both[:, :-1], _from_bits(both[:, -1])
        B = xg.shape[0]
        tq = target_measure(yg)
        xn = l2_normalize(xg, dim=1)
        y_rel = yg - start
        local_t = (y_rel >= 0) & (y_rel < n_local)
        chunk = chunk_size or n_local
        w = weight.detach()

        # pass 1: local candidates (top-k, plus the target where not among them), pooled over ranks
        top_v, top_i, zy, best = _stream_candidates(xn, w, y_rel, s, target_logit, chunk)
        zy = torch.where(local_t, zy, -math.inf)  # the stream leaves the other rows' target logit unset
        kk = min(_CANDIDATES, max(widths))
        extra = torch.where((top_i == y_rel[:, None]).any(dim=1), -math.inf, zy)
        vals = torch.cat([_pad(top_v, kk, -math.inf), extra[:, None]], dim=1)
        cls = torch.cat([_pad(top_i + start, kk, -1), torch.where(local_t, yg, -1)[:, None]], dim=1)
        best_cos = _row_cosines(xn, w[best].to(dtype))
        pack = torch.cat([vals, _as_bits(cls, dtype), best_cos[:, None], (best == y_rel).to(dtype)[:, None]], dim=1)
        pooled = _pooled(pack, B)
        n1 = kk + 1
        V = pooled[..., :n1].reshape(B, world * n1)
        C = _from_bits(pooled[..., n1 : 2 * n1]).reshape(B, world * n1)
        accuracy = pooled[..., 2 * n1 + 1].gather(1, pooled[..., 2 * n1].argmax(dim=1, keepdim=True)).mean()
        sol, tpos = _solve_pooled(V, C, yg, alpha, tq)
        values = _loss_from_solution(V, tpos, alpha, None, tq, sol)
        classes, prob, p_y = C.gather(1, sol.index), sol.prob, sol.at(tpos)

        # pass 2: rows whose support may reach past some rank's candidates
        last = [r * n1 + kk - 1 for r in range(world) if widths[r] > _CANDIDATES]
        if last:
            undone = (sol.dense(V.shape[1])[:, last] > 0).any(dim=1)
            if world > 1:  # the same rows on every rank, whatever the rounding of each rank's solve
                flags = undone.to(torch.uint8)
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                undone = flags.bool()
            rows = undone.nonzero(as_tuple=True)[0]
            if rows.numel() > 0:
                R = rows.numel()
                thr = _threshold_bound(sol.tau[rows], alpha)  # the pooled root is a lower bound of the true one
                v2, c2 = _stream_above(xn[rows], w, y_rel[rows], thr, s, target_logit, chunk)
                drop = (c2 == y_rel[rows, None]) | (v2 == -math.inf)  # the target comes once, as the extra column
                v2 = torch.cat([torch.where(drop, -math.inf, v2), zy[rows, None]], dim=1)
                c2 = torch.cat(
                    [torch.where(drop, -1, c2 + start), torch.where(local_t[rows], yg[rows], -1)[:, None]], 1
                )
                width = v2.shape[1]
                if world > 1:
                    width = int(_all_gather(torch.tensor([width], device=xd.device)).max())
                pooled2 = _pooled(torch.cat([_pad(v2, width, -math.inf), _as_bits(_pad(c2, width, -1), dtype)], 1), R)
                V2 = pooled2[..., :width].reshape(R, world * width)
                C2 = _from_bits(pooled2[..., width:]).reshape(R, world * width)
                tq2 = None if tq is None else tq[rows]
                sol2, tpos2 = _solve_pooled(V2, C2, yg[rows], alpha, tq2)
                values[rows] = _loss_from_solution(V2, tpos2, alpha, None, tq2, sol2)
                n = max(classes.shape[1], sol2.index.shape[1])
                classes, prob = _pad(classes, n, -1), _pad(prob, n, 0.0)
                classes[rows] = _pad(C2.gather(1, sol2.index), n, -1)
                prob[rows] = _pad(sol2.prob, n, 0.0)
                p_y[rows] = sol2.at(tpos2)

        # this rank's share of the gradient: its support classes other than the target, and its targets
        mine = (prob > 0) & (classes >= start) & (classes < end) & (classes != yg[:, None])
        e_rows, e_col = mine.nonzero(as_tuple=True)
        e_cls, e_p = classes[e_rows, e_col] - start, prob[e_rows, e_col]
        t_rows = local_t.nonzero(as_tuple=True)[0]
        stats = {
            "accuracy": accuracy.float(),
            "support_size": (prob > 0).sum(dim=1).float().mean(),
            "py_zero": (p_y <= 0).float().mean(),
        }
    per = _ShardedGradient.apply(
        x,
        weight,
        values.to(dtype),
        xg,
        e_rows,
        e_cls,
        e_p,
        t_rows,
        y_rel[t_rows],
        p_y[t_rows],
        counts,
        s,
        target_logit,
        chunk_size is not None,
    )
    return per, stats


# --------------------------------------------------------------------------------------------------------------
# the heads
# --------------------------------------------------------------------------------------------------------------
class ShardedAlphaHead(AlphaHead):
    """An α head (alpha; the bases of the sharded qmargin, a3m, a3m-i) whose prototypes are split over the ranks of
    torch.distributed: rank r holds ``weight = W[shard_start:shard_end]`` (see :func:`shard_range` and the module
    docstring). Same parameters as the dense head; α > 1. The loss is the mean over the *global* batch (every
    rank's rows), equal to the dense head's on that batch, on every rank; gradients follow the module docstring's
    convention (embeddings: world size × ∂L/∂x_r; prototypes: the slice of ∂L/∂W).

    Built after ``init_process_group`` (one process without it: then it is the dense head). :meth:`logits` and
    :attr:`prototypes` cover the local classes only.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.alpha <= 1.0:
            raise ValueError(
                f"a sharded head needs a sparse α-softargmax, i.e. alpha > 1; got alpha={self.alpha!r} (α = 1 is the"
                " dense softmax, whose normalizer spans every class): use the dense head"
            )
        self.world_size = _world()
        self.shard_start, self.shard_end = shard_range(self.num_classes, self.world_size, _rank())
        self.weight = nn.Parameter(self.weight.detach()[self.shard_start : self.shard_end].clone())

    def shard_sizes(self) -> list[int]:
        """The number of classes of every rank, in rank order."""
        return [b - a for a, b in (shard_range(self.num_classes, self.world_size, r) for r in range(self.world_size))]

    def compute_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if _world() != self.world_size:
            raise ValueError(
                f"this sharded head was built for {self.world_size} process(es) but torch.distributed now has"
                f" {_world()}: build the head after init_process_group, in every process"
            )

        per, stats = sharded_alpha_loss(
            x,
            self.weight,
            y,
            self.alpha,
            self.s,
            self._target_logit(),
            self._target_q,
            self.shard_start,
            self.num_classes,
            self.chunk_size,
        )
        self._record(**stats)
        return per.mean()

    def extra_repr(self) -> str:
        shard = f"[{self.shard_start}, {self.shard_end})"
        return f"{super().extra_repr()}, sharded: classes {shard} of world size {self.world_size}"


class ShardedQMarginHead(ShardedAlphaHead, QMarginHead):
    """Q-Margin (:class:`veriloss.heads.alpha.QMarginHead`) with sharded prototypes (:class:`ShardedAlphaHead`)."""


class ShardedA3MHead(ShardedAlphaHead, A3MHead):
    """A3M (:class:`veriloss.heads.alpha.A3MHead`) with sharded prototypes (:class:`ShardedAlphaHead`)."""


class ShardedA3MIHead(ShardedAlphaHead, A3MIHead):
    """A3M-I (:class:`veriloss.heads.alpha.A3MIHead`) with sharded prototypes (:class:`ShardedAlphaHead`)."""

    @torch.no_grad()
    def reinitialize_prototypes(self, class_means: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> int:
        """``class_means`` is the whole (K, d) matrix (the same on every rank); this rank sets its rows
        ``[shard_start, shard_end)`` as :meth:`veriloss.heads.alpha.A3MIHead.reinitialize_prototypes`. Returns the
        number of prototypes set over all ranks (a collective: call it on every rank)."""
        shape = (self.num_classes, self.embedding_dim)
        if not isinstance(class_means, torch.Tensor) or class_means.shape != shape:
            got = tuple(class_means.shape) if isinstance(class_means, torch.Tensor) else type(class_means)
            raise ValueError(f"class_means must have shape {shape} (all K classes, on every rank), got {got}")
        n = super().reinitialize_prototypes(class_means[self.shard_start : self.shard_end], optimizer)
        if _world() > 1:
            total = torch.tensor([n], device=self.weight.device)
            dist.all_reduce(total)
            n = int(total)
        return n


_SHARDED: dict[str, type[ShardedAlphaHead]] = {
    "alpha": ShardedAlphaHead,
    "qmargin": ShardedQMarginHead,
    "a3m": ShardedA3MHead,
    "a3m-i": ShardedA3MIHead,
}


def create(name: str, embedding_dim: int, num_classes: int, **params) -> ShardedAlphaHead:
    """The sharded version of the α head registered as ``name`` (alpha, qmargin, a3m, a3m-i), with the parameters
    of that head (``veriloss.heads.describe(name)``). Call it after ``init_process_group``, on every rank, under
    the same RNG state (see the module docstring)."""
    info = describe(name)
    if info["name"] not in _SHARDED:
        raise ValueError(
            f"sharded: only the α heads ({', '.join(_SHARDED)}) can be sharded, not {name!r}; remove sharded"
        )
    unknown = sorted(set(params) - set(info["parameters"]))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for head {info['name']!r}; "
            f"accepted: {', '.join(info['parameters'])}, sharded"
        )
    return _SHARDED[info["name"]](embedding_dim, num_classes, **params)


# --------------------------------------------------------------------------------------------------------------
# DDP and checkpoints
# --------------------------------------------------------------------------------------------------------------
def _sharded_heads(module: nn.Module) -> list[tuple[str, ShardedAlphaHead]]:
    return [(name, m) for name, m in module.named_modules() if isinstance(m, ShardedAlphaHead)]


def sharded_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of every sharded head inside ``module`` (a different slice on each rank)."""
    return [p for _, m in _sharded_heads(module) for p in m.parameters()]


def sharded_parameter_names(module: nn.Module) -> list[str]:
    """Fully qualified names of the parameters of every sharded head inside ``module``: the names to keep out of
    DistributedDataParallel (``_set_params_and_buffers_to_ignore_for_model``)."""
    return [f"{name}.{p}" if name else p for name, m in _sharded_heads(module) for p, _ in m.named_parameters()]


def _param_index(optimizer: torch.optim.Optimizer) -> dict[int, int]:
    """id(parameter) → its index in ``optimizer.state_dict()`` (torch numbers parameters group by group)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return {id(p): i for i, p in enumerate(params)}


def _is_row_state(value: object, rows: int) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == rows


def full_state_dicts(module: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> tuple[dict, dict | None]:
    """``module.state_dict()`` and ``optimizer.state_dict()`` with every sharded head's prototypes, and the per-row
    optimizer state of those prototypes (tensors whose first dimension is the slice's rows), gathered in the
    whole-K layout of the dense head. A collective: call it on every rank; rank 0 gets the whole state, the
    others their local state."""
    module_state = module.state_dict()
    optim_state = optimizer.state_dict() if optimizer is not None else None
    index = _param_index(optimizer) if optimizer is not None else {}
    for name, head in _sharded_heads(module):
        sizes = head.shard_sizes()
        key = f"{name}.weight" if name else "weight"
        module_state[key] = _gather_rows_to_first(module_state[key], sizes)
        i = index.get(id(head.weight))
        if optim_state is not None and i in optim_state["state"]:
            entry = dict(optim_state["state"][i])  # a copy: the optimizer's live state is not touched
            for k in sorted(entry):
                if _is_row_state(entry[k], head.weight.shape[0]):
                    entry[k] = _gather_rows_to_first(entry[k], sizes)
            optim_state["state"][i] = entry
    if _rank() != 0:
        return module.state_dict(), optimizer.state_dict() if optimizer is not None else None
    return module_state, optim_state


def local_state_dicts(
    module: nn.Module, optimizer: torch.optim.Optimizer | None, module_state: dict, optim_state: dict | None
) -> tuple[dict, dict | None]:
    """From whole-K state dicts (a checkpoint of a sharded run of any world size, or of a dense run), the state
    dicts to load on this rank: each sharded head's rows ``[shard_start, shard_end)`` of its prototypes and of
    their per-row optimizer state. No communication."""
    module_state = dict(module_state)
    if optim_state is not None:
        optim_state = {**optim_state, "state": dict(optim_state["state"])}
    index = _param_index(optimizer) if optimizer is not None else {}
    for name, head in _sharded_heads(module):
        key = f"{name}.weight" if name else "weight"
        full = module_state.get(key)
        if not isinstance(full, torch.Tensor) or full.shape != (head.num_classes, head.embedding_dim):
            got = tuple(full.shape) if isinstance(full, torch.Tensor) else None
            raise ValueError(
                f"the state's {key!r} must hold all {head.num_classes} prototypes of dimension {head.embedding_dim},"
                f" got shape {got}"
            )
        a, b = head.shard_start, head.shard_end
        module_state[key] = full[a:b].clone()
        i = index.get(id(head.weight))
        if optim_state is not None and i in optim_state["state"]:
            entry = optim_state["state"][i]
            optim_state["state"][i] = {
                k: v[a:b].clone() if _is_row_state(v, head.num_classes) else v for k, v in entry.items()
            }
    return module_state, optim_state
