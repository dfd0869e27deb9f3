import itertools

import pytest
import torch

from veriloss.pairwise import RangeLoss, create


def reference(x, y, k, margin, w_intra, w_inter, normalize) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float64 loops: per class the harmonic mean of its k largest squared distances (mean over classes), and
    max(0, m − min_{i<j} ‖c_i − c_j‖²) over the batch class means."""
    if normalize:
        x = torch.stack([r / r.norm() for r in x])
    classes = sorted(set(y.tolist()))
    harmonics, centres = [], []
    for c in classes:
        members = [i for i in range(len(y)) if y[i] == c]
        centres.append(sum(x[i] for i in members) / len(members))
        if len(members) < 2:
            continue
        dists = [((x[i] - x[j]) ** 2).sum() for i, j in itertools.combinations(members, 2)]
        top = sorted(dists, key=lambda d: -float(d.detach()))[:k]
        harmonics.append(len(top) / sum(1.0 / d for d in top))
    intra = sum(harmonics) / len(harmonics)
    closest = min(
        (((a - b) ** 2).sum() for a, b in itertools.combinations(centres, 2)), key=lambda d: float(d.detach())
    )
    inter = torch.clamp(margin - closest, min=0.0)
    return w_intra * intra + w_inter * inter, intra, inter


CASES = [
    # labels, k, margin, weights, normalize
    ([0, 0, 0, 1, 1, 1, 2, 2, 2], 2, 1.0, (1.0, 1.0), True),
    ([0, 0, 0, 0, 1, 1, 2, 3, 3, 3], 3, 2.5, (0.5, 2.0), True),  # class 1 has one pair < k; class 2 one sample
    ([0, 1, 0, 1, 2, 2, 0], 1, 6.0, (1.0, 0.1), False),
]


@pytest.mark.parametrize(("labels", "k", "margin", "weights", "normalize"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_value_gradient_and_statistics_match_brute_force(labels, k, margin, weights, normalize, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(labels), 4, generator=g)
    y = torch.tensor(labels)
    loss_fn = RangeLoss(k=k, margin=margin, intra_weight=weights[0], inter_weight=weights[1], normalize=normalize)
    x32 = x.clone().requires_grad_()
    loss = loss_fn(x32, y)
    loss.backward()
    x64 = x.double().requires_grad_()
    ref, intra, inter = reference(x64, y, k, margin, *weights, normalize)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-5)
    stats = loss_fn.statistics()
    assert stats["intra"] == pytest.approx(intra.item(), rel=1e-5)
    assert stats["inter"] == pytest.approx(inter.item(), rel=1e-5, abs=1e-6)
    assert inter.item() > 0  # the inter term is exercised


def test_known_values():
    # class 0: points at 0, 1, 3 on a line (squared distances 1, 9, 4); class 1: points at 10, 12 (distance 4)
    x = torch.tensor([[0.0], [1.0], [3.0], [10.0], [12.0]])
    y = torch.tensor([0, 0, 0, 1, 1])
    loss_fn = RangeLoss(k=2, margin=100.0, normalize=False)
    value = loss_fn(x, y)
    intra = (2 / (1 / 9 + 1 / 4) + 4.0) / 2  # class 0: harmonic mean of 9 and 4; class 1: its single pair
    centres = 4 / 3, 11.0
    inter = 100.0 - (centres[1] - centres[0]) ** 2
    assert value.item() == pytest.approx(intra + inter, rel=1e-5)


def test_duplicate_samples_give_finite_values_and_gradients():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    loss = RangeLoss()(x, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert loss.item() == pytest.approx(0.0, abs=1e-9)  # intra ≈ 0, centres at squared distance 2 > m = 1


def test_created_by_name_and_bad_parameters():
    assert create("range", k=3).k == 3
    for kwargs, match in [
        ({"k": 0}, "k"),
        ({"margin": -1}, "margin"),
        ({"intra_weight": -1}, "intra_weight"),
        ({"inter_weight": float("inf")}, "inter_weight"),
        ({"normalize": None}, "normalize"),
    ]:
        with pytest.raises(ValueError, match=match):
            RangeLoss(**kwargs)
