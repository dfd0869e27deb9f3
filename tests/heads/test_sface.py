"""SFace: value and gradients against a float64 loop reference; the sigmoid weights carry no gradient."""

from __future__ import annotations

import math

import pytest
import torch

from veriloss.heads import create
from veriloss.heads.sface import SFace


def _ref(x, y, weight, s, k, a, b, detach=True):
    """Loop over samples: ``−w_y s cos θ_y + Σ_{j≠y} w_j s cos θ_j`` with w_y = σ(k(θ_y − a)),
    w_j = 1/(1 + e^{k(θ_j − b)})."""
    xn = x / x.norm(dim=1, keepdim=True)
    wn = weight / weight.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(len(y)):
        c = wn @ xn[i]
        theta = torch.acos(c)
        t = theta.detach() if detach else theta
        yi = int(y[i])
        li = -(1.0 / (1.0 + torch.exp(-k * (t[yi] - a)))) * s * c[yi]
        for j in range(len(c)):
            if j != yi:
                li = li + (1.0 / (1.0 + torch.exp(k * (t[j] - b)))) * s * c[j]
        total = total + li
    return total / len(y)


def _near_batch(b=16, d=8, k=5, seed=0):
    """Embeddings at angles around a and b from the prototypes, where the sigmoid weights are not
    saturated."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(k, d, generator=g)
    y = torch.arange(b) % k
    x = w[y] / w[y].norm(dim=1, keepdim=True) + 0.9 * torch.randn(b, d, generator=g) / math.sqrt(d)
    return x, y, w


@pytest.mark.parametrize("params", [{}, {"s": 16.0, "k": 10.0, "a": 0.6, "b": 1.3}])
def test_sface_matches_reference(compare, params):
    x, y, w = _near_batch()
    head = SFace(8, 5, **params)
    with torch.no_grad():
        head.weight.copy_(w)
    p = {"s": 64.0, "k": 80.0, "a": 0.87, "b": 1.2, **params}
    compare(head, x, y, lambda x, y, weight: _ref(x, y, weight, **p), rtol=1e-4, atol=1e-5)


def test_sface_weights_are_constants():
    """Gradients equal the reference with detached weights and differ from the one differentiating them."""
    x, y, w = _near_batch(seed=1)
    head = SFace(8, 5, s=16.0, k=10.0, a=0.8, b=1.3)
    with torch.no_grad():
        head.weight.copy_(w)
    xa = x.clone().requires_grad_(True)
    head(xa, y).backward()
    grads = {}
    for detach in (True, False):
        x64 = x.double().clone().requires_grad_(True)
        _ref(x64, y, w.double(), 16.0, 10.0, 0.8, 1.3, detach=detach).backward()
        grads[detach] = x64.grad
    torch.testing.assert_close(xa.grad.double(), grads[True], rtol=1e-4, atol=1e-6)
    assert float((grads[True] - grads[False]).abs().max()) > 0.1 * float(grads[True].abs().max())


def test_sface_weights_switch_off():
    """A sample within angle a of its prototype gets (almost) no pull; a class farther than b (almost) no
    push."""
    head = SFace(2, 2, s=1.0, k=80.0, a=0.87, b=1.2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))  # class 1 at θ = π from class 0
    x = torch.tensor([[math.cos(0.3), math.sin(0.3)]], requires_grad=True)  # θ_y = 0.3 < a
    loss = head(x, torch.tensor([0]))
    loss.backward()
    assert float(x.grad.abs().max()) < 1e-10
    assert head.statistics()["intra"] == pytest.approx(-1 / (1 + math.exp(-80 * (0.3 - 0.87))) * math.cos(0.3))


def test_sface_defaults_logits_and_validation():
    h = create("sface", 4, 3)
    assert (h.s, h.k, h.a, h.b) == (64.0, 80.0, 0.87, 1.2)
    x = torch.randn(5, 4)
    c = (x / x.norm(dim=1, keepdim=True)) @ (h.weight / h.weight.norm(dim=1, keepdim=True)).t()
    torch.testing.assert_close(h.logits(x), 64.0 * c.detach(), rtol=1e-5, atol=1e-5)
    for bad, match in [({"s": 0.0}, "s must be"), ({"k": -1.0}, "k must be"), ({"a": 4.0}, "a must be"),
                       ({"b": -0.1}, "b must be"), ({"m": 0.5}, "unknown parameter")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            create("sface", 4, 3, **bad)
