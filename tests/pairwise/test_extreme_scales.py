"""Pairwise and centre losses at extreme embedding scales: losses on normalized embeddings are scale-invariant,
the others are exact while representable and raise a clear ValueError beyond; one outlier batch cannot poison the
centres of the centre losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veriloss import heads, pairwise
from veriloss.pairwise import CenterInvariantLoss, CenterLoss, RangeLoss, TSELoss, WeightedSum

DIM = 6
SCALES = [1e-30, 1e-12, 1.0, 1e19, 1e30]
NORMALIZED = {  # losses on L2-normalized embeddings (the default of those that have the option)
    "triplet": {},
    "marginal": {},
    "contrastive": {},
    "range": {},
    "tse": {"embedding_dim": DIM},
    "tpe": {"embedding_dim": DIM},
}


def _batch(seed=0, b=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, DIM, generator=g), torch.arange(b) % 4


def _run(loss_fn, x, y, c):
    xc = (x * c).requires_grad_()
    value = loss_fn(xc, y)
    value.backward()
    return value.detach(), xc.grad * c


@pytest.mark.parametrize("name", sorted(NORMALIZED))
def test_losses_on_normalized_embeddings_are_scale_invariant(name):
    x, y = _batch()
    torch.manual_seed(0)
    loss_fn = pairwise.create(name, **NORMALIZED[name])
    ref, ref_grad = _run(loss_fn, x, y, 1.0)
    for c in SCALES:
        value, grad = _run(loss_fn, x, y, c)
        torch.testing.assert_close(value, ref, rtol=1e-5, atol=1e-6, msg=f"loss at c={c:g}")
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6, msg=f"gradient at c={c:g}")


def _contrastive_reference(x, y, margin=1.0):
    d = torch.cdist(x, x)
    same = y[:, None] == y[None, :]
    iu = torch.triu_indices(len(y), len(y), 1)
    d, same = d[iu[0], iu[1]], same[iu[0], iu[1]]
    return 0.5 * torch.where(same, d * d, (margin - d).clamp_min(0) ** 2).mean()


@pytest.mark.parametrize(("c", "margin"), [(1e-19, 2e-19), (1e15, 2e15), (1e-30, 1.0)])
def test_unnormalized_contrastive_is_exact_at_small_and_large_scales(c, margin):
    x, y = _batch(1)
    loss_fn = pairwise.create("contrastive", normalize=False, margin=margin)
    value, grad = _run(loss_fn, x, y, c)
    x64 = (x.double() * c).requires_grad_()
    ref = _contrastive_reference(x64, y, margin)
    ref.backward()
    torch.testing.assert_close(value.double(), ref.detach(), rtol=1e-4, atol=0)
    torch.testing.assert_close(grad.double(), x64.grad * c, rtol=1e-4, atol=1e-6 * float(x64.grad.abs().max() * c))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("contrastive", {"normalize": False}),
        ("range", {"normalize": False}),
        ("tse", {"embedding_dim": DIM, "normalize": False}),
        ("tpe", {"embedding_dim": DIM, "normalize": False}),
        ("center", {"embedding_dim": DIM, "num_classes": 4}),
        ("center-invariant", {"embedding_dim": DIM, "num_classes": 4}),
    ],
)
def test_squared_norm_losses_raise_where_float32_cannot_hold_the_value(name, params):
    x, y = _batch(2)
    loss_fn = pairwise.create(name, **params)
    with pytest.raises(ValueError, match=r"cannot be represented in torch\.float32"):
        loss_fn(x * 1e19, y)
    small = (x * 1e-19).requires_grad_()
    value = loss_fn(small, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(small.grad).all()


def _normal_losses(loss_fn, batches):
    return [float(loss_fn(x, y)) for x, y in batches]


@pytest.mark.parametrize("cls", [CenterLoss, CenterInvariantLoss])
def test_a_batch_that_overflows_raises_and_leaves_the_centres_untouched(cls):
    batches = [_batch(s) for s in range(6)]
    ref = cls(embedding_dim=DIM, num_classes=4)
    expected = _normal_losses(ref, batches)
    loss_fn = cls(embedding_dim=DIM, num_classes=4)
    first = _normal_losses(loss_fn, batches[:2])
    before = loss_fn.centers.clone()
    x, y = _batch(99)
    with pytest.raises(ValueError, match="centres were not updated"):
        loss_fn(x * 1e20, y)
    assert torch.equal(loss_fn.centers, before)
    assert first + _normal_losses(loss_fn, batches[2:]) == expected


@pytest.mark.parametrize("cls", [CenterLoss, CenterInvariantLoss])
@pytest.mark.parametrize("scale", [10.0, 1e3, 1e8])
def test_one_outlier_batch_cannot_poison_the_centres(cls, scale):
    """One large but representable batch mid-run moves the centres by at most twice their scale; the next normal
    batches stay finite and of the usual size (before: NaN for center-invariant already at ×10)."""
    loss_fn = cls(embedding_dim=DIM, num_classes=4)
    normal = _normal_losses(loss_fn, [_batch(s) for s in range(3)])
    rho = float(loss_fn.centers.norm(dim=1).max())
    x, y = _batch(50)
    outlier = loss_fn(x * scale, y)
    assert torch.isfinite(outlier)
    assert float(loss_fn.centers.norm(dim=1).max()) <= 3.0 * rho * (1 + 1e-5)
    after = _normal_losses(loss_fn, [_batch(s) for s in range(10, 20)])
    assert all(np.isfinite(after))
    assert max(after[3:]) < 5 * max(normal) + 5


def test_center_invariant_step_stays_bounded_on_unequal_norms():
    # centres with very unequal norms: α·G far above 1, the plain step flips and explodes a centre
    loss_fn = CenterInvariantLoss(embedding_dim=2, num_classes=3, alpha=0.5)
    loss_fn.centers.copy_(torch.tensor([[30.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    y = torch.tensor([0, 1, 2])
    for _ in range(30):
        value = loss_fn(loss_fn.centers.clone(), y)
        assert torch.isfinite(value)
        assert float(loss_fn.centers.norm(dim=1).max()) <= 60.0
    spread = (loss_fn.centers**2).sum(dim=1)
    assert float(spread.max() - spread.min()) < 1.0  # the norms were equalized, not blown up


def test_integer_and_real_parameters_are_type_checked():
    assert CenterLoss(np.int64(4), np.int32(3)).num_classes == 3
    assert RangeLoss(k=np.int64(3)).k == 3
    assert TSELoss(torch.tensor(4), projection_dim=np.int64(2)).projection_dim == 2
    for make, match in [
        (lambda: CenterLoss(True, 3), "embedding_dim"),
        (lambda: CenterLoss(4, 3.0), "num_classes"),
        (lambda: RangeLoss(k=True), "k must be"),
        (lambda: CenterLoss(4, 3, alpha=True), "alpha must be a real number"),
        (lambda: pairwise.create("triplet", margin=True), "margin must be a real number"),
        (lambda: pairwise.create("marginal", xi="0.3"), "xi must be a real number"),
    ]:
        with pytest.raises(ValueError, match=match):
            make()


def test_combined_loss_is_finite_at_extreme_scales():
    x, y = _batch(3)
    torch.manual_seed(0)
    total = WeightedSum(heads.create("arcface", DIM, 4), [(0.5, pairwise.create("triplet"))])
    ref = total(x, y)
    for c in (1e-30, 1e30):
        torch.testing.assert_close(total(x * c, y), ref, rtol=1e-5, atol=1e-5)
