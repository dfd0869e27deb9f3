"""The chunked pass over W shared by the streaming and the sharded α heads: logits of a chunk of prototypes with the
target margin, a running top-k of each row that grows until no left-out logit can be in the support, and the
second pass that collects every class above a lower bound of the threshold (see docs/alpha-heads.md)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .logits import AlphaLogits

__all__ = [
    "CANDIDATES",
    "MAX_CANDIDATES",
    "chunk_logits",
    "merge_top",
    "pad",
    "stream_above",
    "stream_candidates",
    "stream_top",
    "threshold_bound",
]

#: the initial running top-k (and the fixed k of the sharded heads)
CANDIDATES = 32
#: the running top-k grows up to this; a row with a wider support takes the second pass
MAX_CANDIDATES = 1024
_NORM_EPS = 1e-12  # the zero-row guard of l2_normalize (F.normalize's default eps)

#: (candidate values R×k, their classes R×k, their rows R) → a lower bound (R,) of each row's support threshold
Bound = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def threshold_bound(tau: torch.Tensor, alpha: float) -> torch.Tensor:
    """The support threshold ``τ − 1/(α−1)`` of the roots ``tau`` (float64), rounded down a little: with τ the root
    on a subset of the classes, a lower bound of the true threshold (more classes only add mass). A class above it
    that is not in the support only adds a zero of p; a support class below it would be an error."""
    thr = tau - 1.0 / (alpha - 1.0)
    return thr - 16 * torch.finfo(torch.float64).eps * (thr.abs() + 1.0 / (alpha - 1.0) + 1.0)


def chunk_logits(
    xn: torch.Tensor,
    w: torch.Tensor,
    start: int,
    y: torch.Tensor,
    link: AlphaLogits,
    buffer: torch.Tensor,
    top1: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """Logits of the classes [start, start + c) (c = len(w)), written into ``buffer`` (≥ B·c elements, reused by
    every chunk): ``s·cos`` with ``cos = x̂·wᵀ/max(‖w‖, ε)`` clamped to [−1, 1] (x already normalized; the dense
    heads' cosine up to rounding), the target column replaced by ``link.target_logit(cos_y)``. Returns (the logits
    (B×c, a view of ``buffer``), rows whose target is in the chunk, their target logits, and with ``top1`` the
    margin-free (max cos, its column) of each row)."""
    B, c = xn.shape[0], w.shape[0]
    w = w.to(xn.dtype)
    z = torch.mm(xn, w.t(), out=buffer[: B * c].view(B, c))
    z.div_(w.norm(dim=1).clamp_min_(_NORM_EPS)).clamp_(-1.0, 1.0)
    top = z.max(dim=1) if top1 else None  # ties: the first maximal column, as argmax
    rows = ((y >= start) & (y < start + c)).nonzero(as_tuple=True)[0]
    cols = y[rows] - start
    zt = link.target_logit(z[rows, cols])  # advanced indexing copies: the cosines, before the scaling below
    z.mul_(link.s)
    z[rows, cols] = zt.to(z.dtype)
    return z, rows, zt, None if top is None else (top.values, top.indices)


def merge_top(
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


def stream_top(
    xn: torch.Tensor,
    weight: torch.Tensor,
    y: torch.Tensor,
    link: AlphaLogits,
    chunk: int,
    k: int,
    bound: Bound | None = None,
    max_k: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pass 1: per row the running top-k logits (B×k, sorted descending) and their classes, the largest logit left
    out of them (−inf if none), the target logits and the margin-free top-1 class.

    With ``bound``, k doubles (up to ``max_k``) while some row's largest left-out logit is above its bound (bounds
    are recomputed, only for those rows, before deciding), and the chunk, still in the buffer, is selected again:
    below ``max_k`` every left-out logit is at or below a lower bound of its row's final threshold, i.e. outside the
    support. Without ``bound``, k is fixed. (Deciding reads one flag per chunk from the device: the maths needs it.)
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
        z, rows, zt, (m, arg) = chunk_logits(xn, weight[start : start + chunk], start, y, link, buffer, True)
        zy[rows] = zt.to(zy.dtype)
        better = m > best_cos  # strict: the first maximal class wins, as argmax over the full row
        best_cos = torch.where(better, m, best_cos)
        best_idx = torch.where(better, arg + start, best_idx)
        while True:
            v, i, out = merge_top(top_v, top_i, z, start, k)
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


def stream_candidates(
    xn: torch.Tensor, weight: torch.Tensor, y: torch.Tensor, link: AlphaLogits, chunk: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pass 1 with a fixed k = :data:`CANDIDATES` (the sharded heads): the top-k logits (B×k, sorted) and their
    classes, the target logits, the margin-free top-1."""
    top_v, top_i, _, zy, best = stream_top(xn, weight, y, link, chunk, CANDIDATES)
    return top_v, top_i, zy, best


def stream_above(
    xn: torch.Tensor, weight: torch.Tensor, y: torch.Tensor, thr: torch.Tensor, link: AlphaLogits, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass 2 (for some rows): every class with logit > thr, packed left into (R, n) values (−inf padding) and
    classes (−1 padding), ascending classes per row, n the largest count of a row (read from the device: a
    data-dependent size). Each chunk contributes its (row, class, value) triples; they are packed once at the end."""
    R, K = xn.shape[0], weight.shape[0]
    # compare in the logits' dtype with the bound rounded down: an extra class only adds a zero of p
    t = torch.nextafter(thr.to(xn.dtype), torch.full_like(thr, -math.inf, dtype=xn.dtype))[:, None]
    buffer = xn.new_empty(R * min(chunk, K))
    rows, classes, values = [], [], []
    for start in range(0, K, chunk):
        z = chunk_logits(xn, weight[start : start + chunk], start, y, link, buffer)[0]
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


def pad(t: torch.Tensor, width: int, fill: float | int) -> torch.Tensor:
    """``t`` (R×n) padded on the right with ``fill`` to ``width`` columns (unchanged if already as wide)."""
    return torch.cat([t, t.new_full((t.shape[0], width - t.shape[1]), fill)], dim=1) if t.shape[1] < width else t
