"""Input validation, float32 computation and finiteness, for every registered pairwise loss."""

import pytest
import torch

from veriloss import pairwise

DIM = 4
EXTRA = {  # required constructor arguments
    "center": {"embedding_dim": DIM, "num_classes": 5},
    "center-invariant": {"embedding_dim": DIM, "num_classes": 5},
    "tse": {"embedding_dim": DIM},
    "tpe": {"embedding_dim": DIM},
}
NAMES = pairwise.available()
PAIR_LOSSES = [n for n in NAMES if n not in ("center", "center-invariant")]


def make(name):
    return pairwise.create(name, **EXTRA.get(name, {}))


def good_batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, DIM, generator=g), torch.tensor([0, 0, 1, 1, 2, 2])


def test_every_loss_of_the_spec_is_registered():
    assert set(NAMES) == {"contrastive", "marginal", "triplet", "tse", "tpe", "center", "center-invariant", "range"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (torch.randn(6), torch.zeros(6, dtype=torch.long), "shape"),
        (torch.randn(0, DIM), torch.zeros(0, dtype=torch.long), "empty"),
        (torch.tensor([[float("nan")] * DIM] * 4), torch.tensor([0, 0, 1, 1]), "non-finite"),
        (torch.tensor([[float("inf")] * DIM] * 4), torch.tensor([0, 0, 1, 1]), "non-finite"),
        (torch.randn(4, DIM), torch.tensor([0, 0, -1, -1]), "non-negative"),
        (torch.randn(4, DIM), torch.tensor([0.0, 0.0, 1.0, 1.0]), "integer"),
        (torch.randn(4, DIM), torch.tensor([0, 0, 1]), "3 entries"),
        (torch.randn(4, DIM), torch.tensor([[0, 0, 1, 1]]), "1-D"),
        (torch.randint(0, 3, (4, DIM)), torch.tensor([0, 0, 1, 1]), "floating-point"),
    ],
)
def test_bad_batches_raise_value_error_naming_the_problem(name, x, y, match):
    with pytest.raises(ValueError, match=match):
        make(name)(x, y)


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_single_identity_or_no_positive_pair_suggests_the_sampler(name):
    loss_fn = make(name)
    with pytest.raises(ValueError, match=r"single identity.*PKSampler"):
        loss_fn(torch.randn(4, DIM), torch.tensor([3, 3, 3, 3]))
    with pytest.raises(ValueError, match=r"no positive pair.*PKSampler"):
        loss_fn(torch.randn(4, DIM), torch.tensor([0, 1, 2, 3]))


@pytest.mark.parametrize("name", NAMES)
def test_float32_under_autocast_and_for_low_precision_inputs(name):
    x, y = good_batch()
    reference = make(name).eval()
    state = reference.state_dict()
    expected = reference(x.bfloat16().float(), y)
    loss_fn = make(name).eval()
    loss_fn.load_state_dict(state)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        value = loss_fn(x.bfloat16(), y)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [1e-20, 1e-3, 1e3, 1e15])
def test_finite_value_and_gradient_at_extreme_scales(name, scale):
    x, y = good_batch()
    x = (x * scale).requires_grad_()
    loss_fn = make(name)
    value = loss_fn(x, y)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(x.grad).all()
    assert set(loss_fn.statistics())  # every loss reports something
