import itertools

import pytest
import torch

from veriloss.pairwise import ContrastiveLoss, create


def reference(x: torch.Tensor, y: torch.Tensor, margin: float, normalize: bool) -> torch.Tensor:
    """Float64 loops over unordered pairs: ½ y d² + ½ (1 − y) max(0, m − d)², mean over pairs."""
    if normalize:
        x = torch.stack([r / r.norm() for r in x])
    terms = []
    for i, j in itertools.combinations(range(len(y)), 2):
        d = (x[i] - x[j]).norm()
        if y[i] == y[j]:
            terms.append(0.5 * d**2)
        else:
            terms.append(0.5 * torch.clamp(margin - d, min=0.0) ** 2)
    return torch.stack(terms).mean()


def batch(seed: int, p: int = 3, k: int = 3, d: int = 5, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(p * k, d, generator=g) * scale
    y = torch.arange(p).repeat_interleave(k)[torch.randperm(p * k, generator=g)]
    return x, y


@pytest.mark.parametrize(("margin", "normalize", "scale"), [(1.0, True, 1.0), (1.6, True, 1.0), (2.5, False, 0.7)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_value_and_gradient_match_brute_force(margin, normalize, scale, seed):
    x, y = batch(seed, scale=scale)
    loss_fn = ContrastiveLoss(margin=margin, normalize=normalize)
    x32 = x.clone().requires_grad_()
    loss = loss_fn(x32, y)
    loss.backward()
    x64 = x.double().requires_grad_()
    ref = reference(x64, y, margin, normalize)
    ref.backward()
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-5)
    # the hinge must be active for some negative pairs, or this test would not exercise it
    assert 0.0 < loss_fn.statistics()["active_negative_fraction"] <= 1.0


def test_statistics_values():
    x, y = batch(3)
    loss_fn = ContrastiveLoss(margin=1.2)
    loss_fn(x, y)
    xn = x / x.norm(dim=1, keepdim=True)
    pos, neg, active = [], [], []
    for i, j in itertools.combinations(range(len(y)), 2):
        d = float((xn[i] - xn[j]).norm())
        (pos if y[i] == y[j] else neg).append(d)
        if y[i] != y[j]:
            active.append(d < 1.2)
    s = loss_fn.statistics()
    assert s["positive_distance"] == pytest.approx(sum(pos) / len(pos), rel=1e-5)
    assert s["negative_distance"] == pytest.approx(sum(neg) / len(neg), rel=1e-5)
    assert s["active_negative_fraction"] == pytest.approx(sum(active) / len(active))


def test_identical_embeddings_give_finite_gradient():
    # a negative pair at distance 0 (sqrt is not differentiable there) and a duplicated positive
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    loss = ContrastiveLoss(margin=1.0)(x, y)
    loss.backward()
    assert torch.isfinite(x.grad).all()
    # pairs: (0,1) pos d=0; (0,2),(1,2) neg d=0 → ½·1; (0,3),(1,3) neg d=√2 → 0; (2,3) pos d²=2 → 1
    assert loss.item() == pytest.approx((0 + 0.5 + 0.5 + 0 + 0 + 1.0) / 6, rel=1e-6)


def test_created_by_name_with_parameters():
    loss_fn = create("contrastive", margin=0.5, normalize=False)
    assert isinstance(loss_fn, ContrastiveLoss)
    assert (loss_fn.margin, loss_fn.normalize) == (0.5, False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"margin": 0}, "margin"), ({"margin": float("nan")}, "margin"), ({"normalize": "yes"}, "normalize")],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContrastiveLoss(**kwargs)
