import math

import pytest
import torch

from veriloss.pairwise import TPELoss, TSELoss, create


def reference(x, y, t, kind: str, margin: float = 0.0, normalize: bool = True) -> tuple[torch.Tensor, float]:
    """Float64 loops over all valid triplets; returns (mean loss, share of triplets with s_ap > s_an)."""
    h = [t @ (r / r.norm() if normalize else r) for r in x]
    terms, correct = [], []
    n = len(y)
    for a in range(n):
        for p in range(n):
            for q in range(n):
                if a == p or y[a] != y[p] or y[q] == y[a]:
                    continue
                sap, san = h[a] @ h[p], h[a] @ h[q]
                if kind == "tse":
                    terms.append(torch.clamp(margin + san - sap, min=0.0))
                else:
                    terms.append(-torch.log(torch.exp(sap) / (torch.exp(sap) + torch.exp(san))))
                correct.append(float(sap.detach()) > float(san.detach()))
    return torch.stack(terms).mean(), sum(correct) / len(correct)


@pytest.mark.parametrize("kind", ["tse", "tpe"])
@pytest.mark.parametrize(("dim", "proj", "normalize"), [(6, 4, True), (5, 8, False)])
def test_value_and_gradients_match_brute_force(kind, dim, proj, normalize):
    g = torch.Generator().manual_seed(dim + proj)
    x = torch.randn(9, dim, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 3])
    loss_fn = (
        TSELoss(dim, proj, margin=0.3, normalize=normalize)
        if kind == "tse"
        else TPELoss(dim, proj, normalize=normalize)
    )
    with torch.no_grad():  # a projection away from the orthogonal init, with larger similarities
        loss_fn.projection.mul_(2.0).add_(0.3 * torch.randn(proj, dim, generator=g))
    x32 = x.clone().requires_grad_()
    loss = loss_fn(x32, y)
    loss.backward()
    x64 = x.double().requires_grad_()
    t64 = loss_fn.projection.detach().double().requires_grad_()
    ref, accuracy = reference(x64, y, t64, kind, margin=0.3, normalize=normalize)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss_fn.projection.grad.double(), t64.grad, rtol=1e-4, atol=1e-5)
    assert loss_fn.statistics()["triplet_accuracy"] == pytest.approx(accuracy)
    assert 0 < accuracy < 1


def test_projection_is_a_parameter_and_starts_orthogonal():
    loss_fn = TSELoss(embedding_dim=8, projection_dim=3)
    params = dict(loss_fn.named_parameters())
    assert list(params) == ["projection"] and params["projection"].shape == (3, 8)
    t = loss_fn.projection.detach()
    torch.testing.assert_close(t @ t.t(), torch.eye(3), atol=1e-5, rtol=0)
    assert TPELoss(embedding_dim=5).projection.shape == (5, 5)  # projection_dim defaults to embedding_dim


def test_tpe_is_stable_for_large_similarities():
    loss_fn = TPELoss(embedding_dim=2, normalize=False)
    with torch.no_grad():
        loss_fn.projection.copy_(torch.eye(2))
    # s_ap = 1e4·1e4·1, s_an = 0: loss ≈ 0; the reversed arrangement gives ≈ s_an − s_ap, not inf
    x = torch.tensor([[100.0, 0.0], [100.0, 0.0], [0.0, 100.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1])
    loss = loss_fn(x, y)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(x.grad).all()
    x2 = torch.tensor([[100.0, 0.0], [0.0, 100.0], [100.0, 0.0]])
    # triplets (0,1,2): s_ap = 0, s_an = 1e4 → 1e4; (1,0,2): s_ap = 0, s_an = 0 → log 2
    assert loss_fn(x2, y).item() == pytest.approx((1e4 + math.log(2)) / 2, rel=1e-6)


def test_tse_zero_when_margin_met():
    loss_fn = TSELoss(embedding_dim=2, margin=0.5)
    with torch.no_grad():
        loss_fn.projection.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    assert loss_fn(x, torch.tensor([0, 0, 1])).item() == pytest.approx(0.0, abs=1e-7)
    assert loss_fn.statistics()["active_fraction"] == 0.0


def test_created_by_name():
    loss_fn = create("tse", embedding_dim=4, projection_dim=2, margin=0.1)
    assert isinstance(loss_fn, TSELoss) and loss_fn.margin == 0.1
    assert isinstance(create("tpe", embedding_dim=4), TPELoss)
    with pytest.raises(ValueError, match="embedding_dim"):
        create("tpe")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"embedding_dim": 4, "projection_dim": 0}, "projection_dim"),
        ({"embedding_dim": 4, "margin": -0.1}, "margin"),
        ({"embedding_dim": 4, "normalize": 1}, "normalize"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TSELoss(**kwargs)


def test_embedding_dim_is_checked_in_forward():
    with pytest.raises(ValueError, match="4 features"):
        TPELoss(embedding_dim=4)(torch.randn(4, 3), torch.tensor([0, 0, 1, 1]))
