"""softmax, l2softmax, normface, coco: values and gradients against float64 references written from the
formulas."""

from __future__ import annotations

import math

import pytest
import torch

from veriloss.heads import create
from veriloss.heads.classic import CoCo, L2Softmax, NormFace, Softmax


def _cos(x, w):
    return (x / x.norm(dim=1, keepdim=True)) @ (w / w.norm(dim=1, keepdim=True)).t()


def test_softmax_matches_reference(batch, ce, compare):
    x, y = batch()
    head = Softmax(16, 7)
    with torch.no_grad():
        head.bias.normal_()
    compare(head, x, y, lambda x, y, weight, bias: ce(x @ weight.t() + bias, y), params=("weight", "bias"))
    assert torch.allclose(head.logits(x), x @ head.weight.t() + head.bias, atol=1e-5)


@pytest.mark.parametrize("learnable", [False, True])
def test_l2softmax_matches_reference(batch, ce, compare, learnable):
    x, y = batch(seed=1)
    head = L2Softmax(16, 7, alpha=5.0, learnable=learnable)
    with torch.no_grad():
        head.bias.normal_()

    def ref(x, y, weight, bias, alpha=5.0):
        xs = alpha * x / x.norm(dim=1, keepdim=True)
        return ce(xs @ weight.t() + bias, y)

    params = ("weight", "bias", "alpha") if learnable else ("weight", "bias")
    compare(head, x, y, ref, params=params)
    if learnable:
        assert head.alpha.grad is not None and float(head.alpha.grad.abs()) > 0
    else:
        assert "alpha" not in dict(head.named_parameters())


def test_l2softmax_alpha_bound():
    # α_low = log(p(K−2)/(1−p)), Ranjan et al. 2017
    assert L2Softmax.alpha_lower_bound(10, 0.9) == pytest.approx(math.log(0.9 * 8 / 0.1))
    assert L2Softmax.alpha_lower_bound(1000, 0.99) == pytest.approx(math.log(0.99 * 998 / 0.01))
    with pytest.raises(ValueError, match="num_classes"):
        L2Softmax.alpha_lower_bound(2)
    with pytest.raises(ValueError, match="p"):
        L2Softmax.alpha_lower_bound(10, 1.0)


@pytest.mark.parametrize("learnable", [False, True])
def test_normface_matches_reference(batch, ce, compare, learnable):
    x, y = batch(seed=2)
    head = NormFace(16, 7, s=20.0, learnable=learnable)

    def ref(x, y, weight, scale=20.0):
        return ce(scale * _cos(x, weight), y)

    compare(head, x, y, ref, params=("weight", "scale") if learnable else ("weight",))
    assert head.bias is None
    if learnable:
        assert float(head.scale.grad.abs()) > 0


def test_learnable_scale_is_trained():
    """One SGD step changes a learnable s (and leaves a fixed one alone)."""
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    y = torch.arange(8) % 3
    for learnable in (True, False):
        head = NormFace(4, 3, s=10.0, learnable=learnable)
        opt = torch.optim.SGD(head.parameters(), lr=0.1)
        head(x, y).backward()
        opt.step()
        assert (float(head.scale.detach()) != 10.0) == learnable


def test_coco_matches_reference_and_default_alpha(batch, ce, compare):
    x, y = batch(seed=3)
    head = CoCo(16, 7)  # α from the bound with ε = 0.01
    alpha = 0.5 * math.log(6 / (math.exp(0.01) - 1))
    assert float(head.scale) == pytest.approx(alpha, rel=1e-6)
    compare(head, x, y, lambda x, y, weight: ce(alpha * _cos(x, weight), y))
    explicit = CoCo(16, 7, alpha=3.0)
    assert float(explicit.scale) == 3.0
    assert "scale" not in dict(explicit.named_parameters())  # α is fixed


def test_coco_bound_is_tight():
    """At α = ½ log((K−1)/(e^ε−1)) the best configuration (x̂ = ĉ_y, every other ĉ_j = −x̂) has loss exactly
    ε."""
    k, eps = 5, 0.05
    head = CoCo(3, k, epsilon=eps)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0, 0]] + [[-1.0, 0, 0]] * (k - 1)))
    loss = head(torch.tensor([[2.0, 0, 0]]), torch.tensor([0]))
    assert float(loss) == pytest.approx(eps, rel=1e-4)
    # a larger α goes below ε
    bigger = CoCo(3, k, alpha=float(head.scale) + 1)
    bigger.load_state_dict(head.state_dict())
    assert float(bigger(torch.tensor([[2.0, 0, 0]]), torch.tensor([0]))) < eps


def test_bad_parameters():
    with pytest.raises(ValueError, match="alpha"):
        L2Softmax(4, 3, alpha=0.0)
    with pytest.raises(ValueError, match="s must be"):
        NormFace(4, 3, s=-1.0)
    with pytest.raises(ValueError, match="epsilon"):
        CoCo(4, 2, epsilon=5.0)  # bound ≤ 0
    with pytest.raises(ValueError, match="alpha"):
        CoCo(4, 3, alpha=float("nan"))
    with pytest.raises(ValueError, match="unknown parameter"):
        create("softmax", 4, 3, s=10)
