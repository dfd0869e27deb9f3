import itertools

import pytest
import torch
from pytorch_metric_learning.regularizers import CenterInvariantRegularizer

from veriloss.pairwise import CenterInvariantLoss, CenterLoss, create


def center_reference(x: torch.Tensor, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Float64 loop: (1/B) ½ Σ_i ‖x_i − c_{y_i}‖²."""
    return sum(0.5 * ((x[i] - c[y[i]]) ** 2).sum() for i in range(len(y))) / len(y)


def invariant_reference(y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Float64 loop: (1/B) ¼ Σ_i (‖c_{y_i}‖² − (1/K) Σ_j ‖c_j‖²)²."""
    k = c.shape[0]
    mean = sum((c[j] ** 2).sum() for j in range(k)) / k
    return sum(0.25 * ((c[y[i]] ** 2).sum() - mean) ** 2 for i in range(len(y))) / len(y)


def wen_update(x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, alpha: float) -> torch.Tensor:
    """Wen et al. Eq. 4 by hand: Δc_j = Σ_{i: y_i=j} (c_j − x_i) / (1 + n_j); c_j ← c_j − α Δc_j."""
    new = c.clone()
    for j in range(c.shape[0]):
        members = [i for i in range(len(y)) if y[i] == j]
        delta = sum((c[j] - x[i] for i in members), torch.zeros_like(c[j])) / (1 + len(members))
        new[j] = c[j] - alpha * delta
    return new


def setup(seed: int, k: int = 5, d: int = 3, b: int = 8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g)
    y = torch.randint(0, k - 1, (b,), generator=g)  # class k−1 is absent from the batch
    centers = torch.randn(k, d, generator=g)
    return x, y, centers


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.5, 0.1])
def test_center_loss_value_gradient_and_update(seed, alpha):
    x, y, centers = setup(seed)
    loss_fn = CenterLoss(embedding_dim=3, num_classes=5, alpha=alpha)
    loss_fn.centers.copy_(centers)
    x32 = x.clone().requires_grad_()
    loss = loss_fn(x32, y)
    loss.backward()
    x64 = x.double().requires_grad_()
    ref = center_reference(x64, y, centers.double())
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(x32.grad, (x - centers[y]) / len(y))
    expected = wen_update(x.double(), y, centers.double(), alpha)
    torch.testing.assert_close(loss_fn.centers.double(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss_fn.centers[4], centers[4])  # absent class unchanged
    distances = (x - centers[y]).norm(dim=1).mean()
    assert loss_fn.statistics()["center_distance"] == pytest.approx(float(distances), rel=1e-5)


def test_centres_get_no_gradient_and_are_not_parameters():
    loss_fn = CenterLoss(embedding_dim=3, num_classes=4)
    assert list(loss_fn.parameters()) == []
    assert "centers" in dict(loss_fn.named_buffers())
    assert not loss_fn.centers.requires_grad
    assert torch.equal(loss_fn.centers, torch.zeros(4, 3))  # zero init


def test_second_step_uses_updated_centres_and_eval_does_not_update():
    x, y, _ = setup(5)
    loss_fn = CenterLoss(embedding_dim=3, num_classes=5, alpha=0.5)
    loss_fn(x, y)
    after_first = loss_fn.centers.clone()
    second = loss_fn(x, y)
    assert second.item() == pytest.approx(center_reference(x.double(), y, after_first.double()).item(), rel=1e-6)
    loss_fn.eval()
    frozen = loss_fn.centers.clone()
    loss_fn(x, y)
    assert torch.equal(loss_fn.centers, frozen)


def test_centres_converge_to_class_means_on_a_fixed_batch():
    # with α = 1 and a fixed batch the fixed point of Wen's rule is the class mean
    x, y, _ = setup(6, k=3, b=12)  # classes 0 and 1 present, class 2 absent
    loss_fn = CenterLoss(embedding_dim=3, num_classes=3, alpha=1.0)
    for _ in range(60):
        loss_fn(x, y)
    for j in range(2):
        torch.testing.assert_close(loss_fn.centers[j], x[y == j].mean(dim=0), atol=1e-5, rtol=0)
    assert torch.equal(loss_fn.centers[2], torch.zeros(3))


def test_center_accepts_any_batch():
    loss_fn = CenterLoss(embedding_dim=2, num_classes=3)
    value = loss_fn(torch.tensor([[1.0, 2.0]]), torch.tensor([2]))  # one sample, one identity
    assert value.item() == pytest.approx(0.5 * 5.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_center_invariant_value_gradient_and_update(seed):
    x, y, centers = setup(seed)
    loss_fn = CenterInvariantLoss(embedding_dim=3, num_classes=5, alpha=0.3)
    loss_fn.centers.copy_(centers)
    x32 = x.clone().requires_grad_()
    loss = loss_fn(x32, y)
    loss.backward()
    x64 = x.double().requires_grad_()
    c64 = centers.double().requires_grad_()
    center_part = center_reference(x64, y, c64.detach())
    invariant_part = invariant_reference(y, c64)
    (center_part + invariant_part).backward()
    assert loss.item() == pytest.approx((center_part + invariant_part).item(), rel=1e-5)
    stats = loss_fn.statistics()
    assert stats["center_term"] == pytest.approx(center_part.item(), rel=1e-5)
    assert stats["invariant_term"] == pytest.approx(invariant_part.item(), rel=1e-5)
    assert invariant_part.item() > 0.01
    # embeddings get the center term's gradient only
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-5, atol=1e-7)
    # centres: Wen's step for the center term plus the autograd gradient of the invariant term, times α
    expected = wen_update(x.double(), y, centers.double(), 0.3) - 0.3 * c64.grad
    torch.testing.assert_close(loss_fn.centers.double(), expected, rtol=1e-5, atol=1e-6)


def test_invariant_term_matches_pytorch_metric_learning_when_each_class_appears_once():
    # with labels 0..K−1 once each, (1/B) ¼ Σ_i (‖c_{y_i}‖² − R)² is PML's regularizer on the centres (mean reducer)
    g = torch.Generator().manual_seed(7)
    centers = torch.randn(6, 4, generator=g) * torch.linspace(0.5, 2.0, 6)[:, None]
    loss_fn = CenterInvariantLoss(embedding_dim=4, num_classes=6).eval()
    loss_fn.centers.copy_(centers)
    loss_fn(torch.randn(6, 4, generator=g), torch.arange(6))
    oracle = CenterInvariantRegularizer()(centers)
    assert loss_fn.statistics()["invariant_term"] == pytest.approx(oracle.item(), rel=1e-5)


def test_invariant_update_equalizes_centre_norms():
    # centres with unequal norms and no data pull (x at the centres): the invariant step shrinks the spread
    centers = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    loss_fn = CenterInvariantLoss(embedding_dim=2, num_classes=3, alpha=0.05)
    loss_fn.centers.copy_(centers)
    y = torch.tensor([0, 1, 2])
    spread = []
    for _ in range(20):
        spread.append(float((loss_fn.centers**2).sum(dim=1).std()))
        loss_fn(loss_fn.centers.clone(), y)
    assert spread[-1] < 0.5 * spread[0]
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(spread))


def test_created_by_name_and_bad_parameters():
    loss_fn = create("center", embedding_dim=4, num_classes=3, alpha=0.2)
    assert isinstance(loss_fn, CenterLoss) and loss_fn.alpha == 0.2
    assert isinstance(create("center-invariant", embedding_dim=4, num_classes=3), CenterInvariantLoss)
    with pytest.raises(ValueError, match="num_classes"):
        create("center", embedding_dim=4)
    for kwargs, match in [
        ({"embedding_dim": 0, "num_classes": 2}, "embedding_dim"),
        ({"embedding_dim": 2, "num_classes": 0}, "num_classes"),
        ({"embedding_dim": 2, "num_classes": 2, "alpha": 0}, "alpha"),
        ({"embedding_dim": 2, "num_classes": 2, "alpha": 1.5}, "alpha"),
    ]:
        with pytest.raises(ValueError, match=match):
            CenterLoss(**kwargs)


def test_labels_out_of_range_and_wrong_dim():
    loss_fn = CenterLoss(embedding_dim=2, num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        loss_fn(torch.randn(2, 2), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="2 features"):
        loss_fn(torch.randn(2, 5), torch.tensor([0, 1]))
