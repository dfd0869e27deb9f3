"""Shared helpers for the backbone tests: BatchNorm calibration and a float64 functional neck reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics to the exact batch statistics of one train-mode pass over ``x``
    (momentum=None: cumulative average of a single batch), so eval-mode outputs are well scaled. Returns ``model``
    in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    model(x)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()


def bn_eval(x: torch.Tensor, bn: nn.Module) -> torch.Tensor:
    """Eval-mode BatchNorm written out: ``(x − μ_run) / sqrt(σ²_run + ε) · γ + β`` per channel (dim 1)."""
    shape = [1, -1] + [1] * (x.dim() - 2)
    mu, var = bn.running_mean.double().view(shape), bn.running_var.double().view(shape)
    g, b = bn.weight.double().view(shape), bn.bias.double().view(shape)
    return (x - mu) / torch.sqrt(var + bn.eps) * g + b


def neck_eval(x: torch.Tensor, neck: nn.Module) -> torch.Tensor:
    """The embedding neck in eval mode (dropout off), float64: BN → flatten → Linear → BN1d."""
    z = bn_eval(x, neck.bn).flatten(1)
    z = F.linear(z, neck.fc.weight.double(), neck.fc.bias.double())
    return bn_eval(z, neck.features)


def check_gradients_reach_all(model: nn.Module, x: torch.Tensor) -> None:
    """Train-mode backward of a random projection of the output: every trainable parameter gets a finite, non-zero
    gradient; frozen ones (requires_grad False) get none."""
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x)
    g = torch.Generator().manual_seed(1)
    # a random projection: the output BN1d makes the plain sum constant in everything before it
    (out * torch.randn(out.shape, generator=g)).sum().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
