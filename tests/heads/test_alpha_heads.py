"""The α heads (alpha, qmargin, a3m, a3m-i) against float64 oracles of LOSSES.md §2 and their special cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.functional import alpha_reference as ref
from veriloss import heads
from veriloss.heads.alpha import normalized_class_means, qmargin_kappa


def _batch(b=6, d=5, k=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (b,), generator=g)
    return x, y


def _cos(x, w):
    return F.normalize(x, dim=1) @ F.normalize(w, dim=1).t()


def _arc(cos, m):
    return torch.cos(torch.acos(cos) + m)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0])
def test_alpha_head_is_the_alpha_loss_on_scaled_cosines(alpha):
    head = heads.create("alpha", 5, 7, alpha=alpha, s=6.0).double()
    x, y = _batch()
    loss = head(x, y)
    expected = ref.loss(6.0 * _cos(x, head.weight.detach()), y, alpha).mean()
    assert torch.allclose(loss, expected, atol=1e-10)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0])
def test_qmargin_uses_kappa_on_the_target_only(alpha):
    head = heads.create("qmargin", 5, 7, alpha=alpha, s=10.0, m=0.5).double()
    kappa = ((alpha - 1) * 10.0 * 0.5) ** (-1 / (alpha - 1))
    assert math.isclose(head.kappa, kappa, rel_tol=1e-12)
    x, y = _batch()
    q = torch.ones(6, 7, dtype=torch.float64)
    q[torch.arange(6), y] = kappa
    expected = ref.loss(10.0 * _cos(x, head.weight.detach()), y, alpha, q).mean()
    assert torch.allclose(head(x, y), expected, atol=1e-10)
    given = heads.create("qmargin", 5, 7, alpha=alpha, s=10.0, kappa=0.2).double()
    given.weight.data.copy_(head.weight.data)
    q[torch.arange(6), y] = 0.2
    expected = ref.loss(10.0 * _cos(x, head.weight.detach()), y, alpha, q).mean()
    assert torch.allclose(given(x, y), expected, atol=1e-10)


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0])
def test_qmargin_zero_loss_exactly_beyond_a_cosine_gap_of_m(alpha):
    """κ derived from m makes the zero-loss separation exactly s·m logits, i.e. a cosine gap of m."""
    s, m = 8.0, 0.4
    head = heads.create("qmargin", 3, 3, alpha=alpha, s=s, m=m).double()
    head.weight.data = torch.eye(3, dtype=torch.float64)
    y = torch.tensor([0])
    for delta, zero in ((1e-4, True), (-1e-2, False)):
        # x = (cos φ, sin φ, 0): cos θ_0 − cos θ_1 = cos φ − sin φ = m + delta
        phi = math.pi / 4 - math.asin((m + delta) / math.sqrt(2))
        x = torch.tensor([[math.cos(phi), math.sin(phi), 0.0]], dtype=torch.float64)
        loss = float(head(x, y).detach())
        assert (loss <= 1e-12) if zero else (loss > 0)
        assert (head.statistics()["support_size"] == 1.0) == zero


def test_qmargin_at_alpha_one_is_exactly_cosface():
    s, m = 30.0, 0.35
    q = heads.create("qmargin", 5, 7, alpha=1.0, s=s, m=m).double()
    assert math.isclose(q.kappa, math.exp(-s * m))
    cos_head = heads.create("cosface", 5, 7, s=s, m=m).double()
    cos_head.weight.data.copy_(q.weight.data)
    x, y = _batch()
    cos = _cos(x, q.weight.detach())
    expected = F.cross_entropy(s * (cos - m * F.one_hot(y, 7)), y)
    assert torch.allclose(q(x, y), expected, atol=1e-12)
    assert torch.allclose(cos_head(x, y), expected, atol=1e-12)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0])
def test_a3m_is_the_alpha_loss_on_arcface_logits(alpha):
    # overflow="none": the reference _arc is the plain cos(θ + m) (W is drawn from the global RNG, and a target angle
    # past π − m, where the default "fallback" policy differs, occurs for about 1 draw in 100)
    head = heads.create("a3m", 5, 7, alpha=alpha, s=12.0, m=0.3, overflow="none").double()
    x, y = _batch()
    cos = _cos(x, head.weight.detach())
    z = 12.0 * cos.scatter(1, y[:, None], _arc(cos.gather(1, y[:, None]), 0.3))
    assert torch.allclose(head(x, y), ref.loss(z, y, alpha).mean(), atol=1e-10)
    no_margin = heads.create("a3m", 5, 7, alpha=alpha, s=12.0, m=0.0).double()
    plain = heads.create("alpha", 5, 7, alpha=alpha, s=12.0).double()
    no_margin.weight.data.copy_(head.weight.data)
    plain.weight.data.copy_(head.weight.data)
    assert torch.allclose(no_margin(x, y), plain(x, y), atol=1e-12)


@pytest.mark.parametrize("name", ["alpha", "qmargin", "a3m", "a3m-i"])
def test_head_gradients_match_autograd_of_the_reference(name):
    head = heads.create(name, 5, 7, alpha=1.5).double()
    x, y = _batch()
    x.requires_grad_(True)
    head(x, y).backward()
    w = head.weight.detach().clone().requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    cos = _cos(x2, w)
    q = None
    if name == "qmargin":
        q = torch.ones(6, 7, dtype=torch.float64)
        q[torch.arange(6), y] = head.kappa
    if name.startswith("a3m"):
        cos = cos.scatter(1, y[:, None], _arc(cos.gather(1, y[:, None]), head.m))
    z = head.s * cos
    # the reference loss is differentiated through its bisection with p held fixed: ∂L/∂z = p − e_y
    p = ref.softargmax(z.detach(), 1.5, q)
    (z * (p - F.one_hot(y, 7))).sum().div(6).backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-10)
    assert torch.allclose(head.weight.grad, w.grad, atol=1e-10)


@pytest.mark.parametrize("name", ["alpha", "qmargin", "a3m"])
def test_gradcheck_through_the_head(name):
    head = heads.create(name, 4, 5, alpha=1.5, s=8.0).double()
    x, y = _batch(3, 4, 5, seed=3)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: head(t, y), (x,))


def test_statistics_accuracy_support_and_target_out_of_support():
    head = heads.create("alpha", 3, 3, alpha=2.0, s=10.0).double()
    head.weight.data = torch.eye(3, dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 2, 1])
    head(x, y)
    stats = head.statistics()
    assert stats["accuracy"] == pytest.approx(2 / 3)  # row 2 ties 1 and 2: argmax picks 1
    p = ref.softargmax(10.0 * _cos(x, torch.eye(3, dtype=torch.float64)), 2.0)
    assert stats["support_size"] == pytest.approx(float((p > 0).sum(1).double().mean()))
    assert stats["py_zero"] == pytest.approx(float((p[torch.arange(3), y] == 0).double().mean()))


def test_a3m_i_reinitializes_prototypes_and_resets_optimizer_state():
    head = heads.create("a3m-i", 4, 3)
    opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(12, 4)
    y = torch.tensor([0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1])  # class 2 has no samples
    head(x, y).backward()
    opt.step()
    assert head.weight in opt.state
    old_w2 = head.weight[2].detach().clone()
    means = normalized_class_means(x, y, 3)
    expected0 = F.normalize(F.normalize(x[y == 0], dim=1).mean(0), dim=0)
    assert torch.allclose(means[0], F.normalize(x[y == 0], dim=1).mean(0), atol=1e-6)
    assert head.reinitialize_prototypes(means, opt) == 2
    assert torch.allclose(head.prototypes[0], expected0, atol=1e-6)
    assert torch.equal(head.prototypes[2], old_w2)
    assert head.weight not in opt.state
    with pytest.raises(ValueError, match="shape"):
        head.reinitialize_prototypes(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="non-finite"):
        head.reinitialize_prototypes(torch.full((3, 4), float("nan")))


def test_half_precision_embeddings_compute_in_float32():
    head = heads.create("qmargin", 8, 10)
    x = torch.randn(4, 8).bfloat16()
    y = torch.tensor([1, 2, 3, 4])
    loss = head(x, y)
    assert loss.dtype == torch.float32
    assert torch.equal(loss, head(x.float(), y))


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("alpha", {"alpha": 0.9}, "alpha"),
        ("alpha", {"s": 0.0}, "s must"),
        ("qmargin", {"m": 0.3, "kappa": 0.1}, "either m"),
        ("qmargin", {"kappa": 1.5}, "kappa"),
        ("qmargin", {"alpha": 1.5, "s": 4.0, "m": 0.1}, "smallest useful margin"),
        ("a3m", {"m": 4.0}, "π"),
        ("a3m", {"overflow": "wrap"}, "overflow"),
        ("a3m-i", {"lambda": 1.0}, "unknown parameter"),
    ],
)
def test_bad_parameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        heads.create(name, 4, 5, **params)


@pytest.mark.parametrize(
    "x, y, match",
    [
        (torch.randn(3, 4), torch.tensor([0, 1, 5]), "< num_classes"),
        (torch.randn(3, 4), torch.tensor([0, -1, 2]), "non-negative"),
        (torch.randn(3, 5), torch.tensor([0, 1, 2]), "4 features"),
        (torch.full((3, 4), float("nan")), torch.tensor([0, 1, 2]), "non-finite"),
        (torch.randn(0, 4), torch.zeros(0, dtype=torch.long), "empty"),
    ],
)
def test_bad_batches(x, y, match):
    head = heads.create("a3m", 4, 5)
    with pytest.raises(ValueError, match=match):
        head(x, y)


def test_qmargin_kappa_formula_and_limit():
    assert math.isclose(qmargin_kappa(1.5, 16, 0.35), (0.5 * 16 * 0.35) ** -2)
    assert math.isclose(qmargin_kappa(1.0, 16, 0.35), math.exp(-16 * 0.35))
    # OMNIGLOT-BASELINES.md: qmargin s16 m0.35 at α = 1.5 has κ ≈ 0.128... as (α−1)sm = 2.8 → κ = 2.8^−2
    assert math.isclose(qmargin_kappa(1.5, 16, 0.35), 0.12755, rel_tol=1e-3)
