"""Shared helpers for the head tests: a seeded batch and a float64 reference comparison (value and
gradients)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


def _batch(b: int = 12, d: int = 16, k: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g)
    y = torch.randint(0, k, (b,), generator=g)
    y[:k] = torch.arange(min(k, b))  # every class appears when b ≥ k
    return x, y


@pytest.fixture
def batch() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``batch(b, d, k, seed) -> (x float32 B×d, y int64 B)``."""
    return _batch


def ref_ce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy, mean over rows, written out: ``logsumexp(z_i) − z_{i,y_i}``."""
    return (torch.logsumexp(z, dim=1) - z[torch.arange(len(y)), y]).mean()


@pytest.fixture
def ce() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return ref_ce


def _compare(
    head: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    ref: Callable[..., torch.Tensor],
    params: tuple[str, ...] = ("weight",),
    rtol: float = 2e-4,
    atol: float = 2e-5,
) -> torch.Tensor:
    """Run ``head`` (float32) and ``ref(x64, y, **params64)`` (float64 autograd); compare loss and gradients
    of x and of each named parameter. Returns the head's loss."""
    xa = x.float().clone().requires_grad_(True)
    head.zero_grad()
    loss = head(xa, y)
    loss.backward()
    x64 = x.double().clone().requires_grad_(True)
    p64 = {n: getattr(head, n).detach().double().clone().requires_grad_(True) for n in params}
    ref_loss = ref(x64, y, **p64)
    ref_loss.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), ref_loss.detach(), rtol=rtol, atol=atol)
    gscale = float(x64.grad.abs().max())
    torch.testing.assert_close(xa.grad.double(), x64.grad, rtol=rtol, atol=atol * max(1.0, gscale))
    for n in params:
        g = getattr(head, n).grad
        assert g is not None, f"{n} got no gradient"
        gs = float(p64[n].grad.abs().max())
        torch.testing.assert_close(g.double(), p64[n].grad, rtol=rtol, atol=atol * max(1.0, gs))
    return loss


@pytest.fixture
def compare() -> Callable[..., torch.Tensor]:
    return _compare
