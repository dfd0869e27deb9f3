"""torch.distributed helpers: process-group setup from the launcher's environment, and BatchNorm over all ranks.

torch's SyncBatchNorm runs only on GPUs; :class:`CrossRankBatchNorm` does the same on any device (gloo on CPU): the
per-channel sums are all-reduced with a differentiable all-reduce, so a data-parallel step sees exactly the batch
statistics of the global batch, as a single process would.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed import nn as dist_nn

from .._dist import is_distributed, rank, world_size

__all__ = [
    "CrossRankBatchNorm",
    "clip_grad_norm",
    "convert_batchnorm",
    "init_from_env",
    "is_distributed",
    "rank",
    "shutdown",
    "world_size",
]


def init_from_env(backend: str = "auto") -> bool:
    """Join the process group described by torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).

    Returns False (single process) when they are absent. ``backend`` "auto" is nccl with CUDA, gloo otherwise.
    """
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return True


def shutdown() -> None:
    """Leave the process group at the end of a job (nothing to do in a single process).

    Call it after the last model under DDP is gone. ProcessGroupGloo's destructor joins its worker threads; run from
    the deallocation of a DDP reducer it holds the GIL, which a worker dropping the last collective's tensors needs,
    and the process hangs (pytorch#56297). Destroyed here, the group's own handle drops the last reference, without
    the GIL. The garbage collector runs first so that no model caught in a reference cycle outlives the group.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()
    dist.destroy_process_group()


class CrossRankBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the batch across all ranks (any device, any backend)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"CrossRankBatchNorm expects (N, C, ...) inputs, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and is_distributed()):
            return super().forward(x)
        if self.momentum is None:
            raise ValueError("CrossRankBatchNorm needs a float momentum (cumulative averaging is not supported)")
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        count = torch.tensor([x.numel() / c], dtype=torch.float32, device=x.device)
        stats = dist_nn.functional.all_reduce(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.detach())
                unbiased = var.detach() * n / (n - 1).clamp_min(1.0)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * unbiased)
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm{1,2,3}d in ``module`` by a :class:`CrossRankBatchNorm` with the same state."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CrossRankBatchNorm):
        new = CrossRankBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        ).to(next(iter(module.state_dict().values()), torch.empty(0)).device)
        new.load_state_dict(module.state_dict())
        if module.affine:
            new.weight.requires_grad_(module.weight.requires_grad)
            new.bias.requires_grad_(module.bias.requires_grad)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_batchnorm(child))
    return module


def clip_grad_norm(parameters, max_norm: float, sharded_params: Sequence[torch.Tensor] = ()) -> float:
    """Scale all gradients so their global L2 norm is at most ``max_norm``; sparse gradients (streaming heads)
    count by their stored values. ``sharded_params`` (a sharded head's slices, different on each rank) count by
    their squares summed over ranks (a collective), so every rank clips by the norm of the whole model. Returns
    the norm before clipping."""
    shard_ids = {id(p) for p in sharded_params}
    params = [p for p in parameters if p.grad is not None]
    grads = [p.grad for p in params]

    def squares(gs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [(g.coalesce().values() if g.is_sparse else g).float().pow(2).sum() for g in gs]

    parts = squares([p.grad for p in params if id(p) not in shard_ids])
    if sharded_params:  # every rank takes part, with 0 where its slice has no gradient
        local = squares([p.grad for p in params if id(p) in shard_ids])
        total = torch.stack(local).sum() if local else torch.zeros((), device=sharded_params[0].device)
        if is_distributed():
            dist.all_reduce(total)
        parts.append(total)
    if not parts:
        return 0.0
    norm = float(torch.stack([t.to(parts[0].device) for t in parts]).sum().sqrt())
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / (norm + 1e-6))
    return norm
