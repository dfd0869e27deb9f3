import pytest
import torch

from veriloss.pairwise import MarginalLoss


def reference(x: torch.Tensor, y: torch.Tensor, theta: float, xi: float) -> tuple[torch.Tensor, float]:
    """Float64 loops over ordered pairs i ≠ j: max(0, ξ − y_ij (θ − ‖x̂_i − x̂_j‖²)) / (n² − n)."""
    n = len(y)
    xn = [r / r.norm() for r in x]
    total, active = 0.0, 0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            yij = 1.0 if y[i] == y[j] else -1.0
            term = torch.clamp(xi - yij * (theta - ((xn[i] - xn[j]) ** 2).sum()), min=0.0)
            total = total + term
            active += int(term > 0)
    return total / (n * n - n), active / (n * n - n)


@pytest.mark.parametrize(("theta", "xi"), [(1.2, 0.3), (1.0, 0.5), (2.0, 0.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_value_gradient_and_statistics_match_brute_force(theta, xi, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(10, 4, generator=g)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    loss_fn = MarginalLoss(threshold=theta, xi=xi)
    x32 = x.clone().requires_grad_()
    loss = loss_fn(x32, y)
    loss.backward()
    x64 = x.double().requires_grad_()
    ref, active = reference(x64, y, theta, xi)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-7)
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-6)
    assert loss_fn.statistics()["active_fraction"] == pytest.approx(active)


def test_known_value_on_orthogonal_points():
    # unit vectors: same-class pair at squared distance 0, different-class pairs at squared distance 2
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 0, 1, 1])
    # positive pairs: max(0, 0.3 − (1.2 − 0)) = 0; negative pairs: max(0, 0.3 + (1.2 − 2)) = 0
    assert MarginalLoss()(x, y).item() == pytest.approx(0.0, abs=1e-7)
    # θ = 1.9: negatives give max(0, 0.3 − 0.1) = 0.2 on 8 of 12 ordered pairs
    assert MarginalLoss(threshold=1.9)(x, y).item() == pytest.approx(0.2 * 8 / 12, rel=1e-5)


@pytest.mark.parametrize(("kwargs", "match"), [({"threshold": 0}, "threshold"), ({"xi": -0.1}, "xi")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MarginalLoss(**kwargs)
