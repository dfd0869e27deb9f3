import pytest
import torch
import torch.nn.functional as F

from veriloss.heads import Head
from veriloss.pairwise import CenterLoss, TripletLoss, TSELoss, WeightedSum, combine


class PlainSoftmax(Head):
    """CE on W x (a minimal head for these tests)."""

    def compute_loss(self, x, y):
        logits = x @ self.weight.t()
        self._record_accuracy(logits, y)
        return F.cross_entropy(logits, y)


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 4, generator=g), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def test_forward_is_main_plus_weighted_terms_and_statistics_are_prefixed():
    torch.manual_seed(0)
    x, y = data()
    head, center, triplet = PlainSoftmax(4, 4), CenterLoss(4, 4), TripletLoss(mining="all")
    center.centers.copy_(torch.randn(4, 4))
    # compute the expected value on copies (the centre update must not leak into the reference)
    ref_center = CenterLoss(4, 4).eval()
    ref_center.centers.copy_(center.centers)
    expected = head(x, y).item() + 0.1 * ref_center(x, y).item() + 0.5 * triplet(x, y).item()
    total = WeightedSum(head, [(0.1, center), (0.5, triplet)])
    value = total(x, y)
    assert value.item() == pytest.approx(expected, rel=1e-6)
    stats = total.statistics()
    assert set(stats) >= {
        "main/loss",
        "main/accuracy",
        "aux0/loss",
        "aux0/center_distance",
        "aux1/loss",
        "aux1/active_fraction",
    }
    assert stats["main/loss"] == pytest.approx(head(x, y).item(), rel=1e-6)
    assert stats["aux1/loss"] == pytest.approx(triplet(x, y).item(), rel=1e-6)
    assert stats["main/accuracy"] == pytest.approx(head.statistics()["accuracy"])


def test_children_parameters_and_buffers_are_registered():
    head, tse, center = PlainSoftmax(4, 3), TSELoss(4, 2), CenterLoss(4, 3)
    total = combine(head, tse=(0.5, tse), center=(0.01, center))
    names = dict(total.named_parameters())
    assert set(names) == {"main.weight", "terms.tse.projection"}
    assert "terms.center.centers" in dict(total.named_buffers())
    total.eval()
    assert not center.training and not head.training
    total.double()
    assert center.centers.dtype == torch.float64


def test_gradient_reaches_every_parameter_with_the_weights():
    x, y = data()
    head, tse = PlainSoftmax(4, 4), TSELoss(4, 3, margin=0.5)
    total = WeightedSum(head, {"tse": (0.25, tse)})
    x32 = x.clone().requires_grad_()
    total(x32, y).backward()
    gx = x32.grad.clone()
    g_proj = tse.projection.grad.clone()
    head.zero_grad()
    tse.zero_grad()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    head(xa, y).backward()
    tse(xb, y).backward()
    torch.testing.assert_close(gx, xa.grad + 0.25 * xb.grad)
    torch.testing.assert_close(g_proj, 0.25 * tse.projection.grad)
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


def test_zero_weight_and_no_terms():
    x, y = data()
    head = PlainSoftmax(4, 4)
    assert WeightedSum(head)(x, y).item() == pytest.approx(head(x, y).item())
    assert WeightedSum(head, [(0.0, TripletLoss())])(x, y).item() == pytest.approx(head(x, y).item())


@pytest.mark.parametrize(
    ("main", "terms", "match"),
    [
        ("not a module", [], "main"),
        (PlainSoftmax(4, 4), [(-1.0, TripletLoss())], "weight"),
        (PlainSoftmax(4, 4), [(float("nan"), TripletLoss())], "weight"),
        (PlainSoftmax(4, 4), [(1.0, "triplet")], "nn.Module"),
        (PlainSoftmax(4, 4), [TripletLoss()], "pair"),
        (PlainSoftmax(4, 4), {"main": (1.0, TripletLoss())}, "main"),
        (PlainSoftmax(4, 4), {"a b": (1.0, TripletLoss())}, "identifier"),
    ],
)
def test_bad_arguments(main, terms, match):
    with pytest.raises(ValueError, match=match):
        WeightedSum(main, terms)
