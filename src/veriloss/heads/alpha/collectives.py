"""The collectives of the sharded α heads over the default torch.distributed group (one process when it is not
initialized): world size and rank, all-gathers of rows of different counts per rank, the reduce-scatter of the
embedding gradient, the gather of checkpoint rows to rank 0, and integers carried bit-exactly in a float tensor."""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..._dist import rank
from ..._dist import world_size as world

__all__ = [
    "all_gather",
    "all_gather_rows",
    "all_reduce_max",
    "all_reduce_sum",
    "as_bits",
    "from_bits",
    "gather_rows_to_first",
    "rank",
    "reduce_scatter_rows",
    "world",
]

_INT_OF = {torch.float32: torch.int32, torch.float64: torch.int64}


def as_bits(ints: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Integers bit-cast into the float ``dtype`` of the same width (exact; undone by :func:`from_bits`), so that
    classes travel in the same collective as the values."""
    return ints.to(_INT_OF[dtype]).view(dtype)


def from_bits(t: torch.Tensor) -> torch.Tensor:
    """The integers (int64) that :func:`as_bits` carried in ``t``."""
    return t.contiguous().view(_INT_OF[t.dtype]).long()


def all_gather(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` (the same shape on every rank), concatenated along dim 0 in rank order."""
    if world() == 1:
        return t
    out = t.new_empty((world() * t.shape[0], *t.shape[1:]))
    dist.all_gather_single(out, t.contiguous())
    return out


def _pad_rows(t: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cat([t, t.new_zeros((n - t.shape[0], *t.shape[1:]))]) if t.shape[0] < n else t


def all_gather_rows(t: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Every rank's ``t`` (``counts[r]`` rows on rank r), concatenated in rank order."""
    m = max(counts)
    out = all_gather(_pad_rows(t, m))
    if min(counts) == m:
        return out
    return torch.cat([out[r * m : r * m + n] for r, n in enumerate(counts)])


def reduce_scatter_rows(t: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Sum ``t`` (the global batch's rows, rank order) over ranks; return this rank's ``counts[rank]`` rows."""
    if world() == 1:
        return t
    m = max(counts)
    blocks = t.split(counts)
    full = torch.cat([_pad_rows(blk, m) for blk in blocks]) if min(counts) < m else t
    out = t.new_empty((m, *t.shape[1:]))
    dist.reduce_scatter_single(out, full.contiguous())
    return out[: counts[rank()]]


def gather_rows_to_first(t: torch.Tensor, counts: list[int]) -> torch.Tensor | None:
    """Every rank's rows of ``t`` concatenated on rank 0 (None elsewhere)."""
    if world() == 1:
        return t
    m = max(counts)
    padded = _pad_rows(t, m).contiguous()
    parts = [torch.empty_like(padded) for _ in counts] if rank() == 0 else None
    dist.gather(padded, parts, dst=0)
    return torch.cat([p[:n] for p, n in zip(parts, counts)]) if parts is not None else None


def all_reduce_max(t: torch.Tensor) -> torch.Tensor:
    """The elementwise maximum of ``t`` over ranks (in place)."""
    if world() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The elementwise sum of ``t`` over ranks (in place)."""
    if world() > 1:
        dist.all_reduce(t)
    return t
