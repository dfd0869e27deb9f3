"""The α-softargmax and α-divergence loss against float64 oracles, entmax, and the special cases of LOSSES.md §2."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from entmax import EntmaxBisectLoss, entmax_bisect
from hypothesis import given, settings
from hypothesis import strategies as st

from veriloss.functional import alpha_divergence_loss, alpha_softargmax
from veriloss.functional.alpha import alpha_divergence_loss_with_stats

from . import alpha_reference as ref

ALPHAS = [1.1, 1.25, 1.5, 2.0, 3.0]


def _logits(b, k, scale=3.0, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, k, generator=g, dtype=torch.float64) * scale).to(dtype)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("measure", ["unit", "class", "sample"])
def test_softargmax_matches_bisection_reference(alpha, measure):
    z = _logits(7, 40, dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    q = {
        "unit": None,
        "class": torch.rand(40, generator=g) * 3 + 0.05,
        "sample": torch.rand(7, 40, generator=g) * 3 + 0.05,
    }[measure]
    p = alpha_softargmax(z, alpha, q)
    assert p.dtype == torch.float32
    expected = ref.softargmax(z.double(), alpha, q)
    assert torch.allclose(p.double(), expected, atol=1e-6, rtol=0)
    assert torch.allclose(p.sum(-1), torch.ones(7), atol=2e-6)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0])
def test_unit_measure_equals_entmax_bisect_in_p_and_loss(alpha):
    z = _logits(6, 30)
    y = torch.tensor([0, 5, 7, 29, 3, 3])
    p = alpha_softargmax(z, alpha)
    assert torch.allclose(p, entmax_bisect(z, alpha=alpha, n_iter=200), atol=1e-10)
    ours = alpha_divergence_loss(z, y, alpha, reduction="none")
    theirs = EntmaxBisectLoss(alpha=alpha, n_iter=200, reduction="none")(z, y)
    assert torch.allclose(ours, theirs, atol=1e-10)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_loss_matches_divergence_definition(alpha):
    z = _logits(8, 25)
    y = torch.arange(8) * 3
    g = torch.Generator().manual_seed(2)
    for q in (None, torch.rand(25, generator=g) + 0.1, torch.rand(8, 25, generator=g) + 0.1):
        ours = alpha_divergence_loss(z, y, alpha, q, reduction="none")
        assert torch.allclose(ours, ref.loss(z, y, alpha, q), atol=1e-9, rtol=1e-9)
        assert (ours >= 0).all()


def test_alpha_one_is_exactly_softmax_and_cross_entropy_with_log_prior():
    z = _logits(5, 12, dtype=torch.float32)
    y = torch.tensor([1, 0, 11, 4, 4])
    q = torch.rand(12, generator=torch.Generator().manual_seed(3)) + 0.2
    assert torch.equal(alpha_softargmax(z, 1.0, q), torch.softmax(z + q.log(), dim=-1))
    loss = alpha_divergence_loss(z, y, 1.0, q)
    assert torch.equal(loss, F.cross_entropy(z + q.log(), y))
    # and it is the α → 1 limit of the α family (the reference evaluates the definitions at α = 1 + 1e-6)
    assert torch.allclose(loss.double(), ref.loss(z, y, 1.0, q).mean(), atol=1e-6)
    near = alpha_divergence_loss(z.double(), y, 1.0 + 1e-4, q)
    assert abs(float(near) - float(loss)) < 1e-3


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
def test_scaling_the_measure_scales_the_logits(alpha):
    """p(z; c·q) = p(c^{α−1} z; q)."""
    z = _logits(4, 20)
    q = torch.rand(20, generator=torch.Generator().manual_seed(4)) + 0.1
    for c in (0.3, 2.0, 7.5):
        left = alpha_softargmax(z, alpha, c * q)
        right = alpha_softargmax(c ** (alpha - 1) * z, alpha, q)
        assert torch.allclose(left, right, atol=1e-12)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("kappa", [1.0, 0.3, 0.05])
def test_zero_loss_separation(alpha, kappa):
    """With q_y = κ and q_j = 1 otherwise, L = 0 iff z_y − max_{j≠y} z_j ≥ κ^{1−α}/(α−1)."""
    gap = ref.separation(kappa, alpha)
    base = torch.tensor([[0.3, -1.0, 0.0, -2.0, 0.1]], dtype=torch.float64)
    y = torch.tensor([2])
    dense = torch.ones(1, 5, dtype=torch.float64)
    dense[0, 2] = kappa
    for delta in (1e-6, 0.0, -1e-3, -0.5):
        z = base.clone()
        z[0, 2] = base[0, [0, 1, 3, 4]].max() + gap + delta
        loss = alpha_divergence_loss(z, y, alpha, target_q=kappa)
        assert torch.allclose(loss, alpha_divergence_loss(z, y, alpha, dense), atol=1e-12)
        support = int((alpha_softargmax(z, alpha, dense) > 0).sum())
        if delta >= 0:
            assert float(loss) <= 1e-12
            assert delta == 0 or support == 1  # exactly on the boundary rounding may leave a 1e-32 entry
        else:  # inside the gap the runner-up enters the support; the loss grows like violation^(α/(α−1)), so a
            # 1e-3 violation at α = 1.25 is a loss at rounding level: test it positive only for the larger one
            assert support > 1
            assert float(loss) > 0 or delta > -0.1


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
def test_target_measure_override_equals_dense_measure(alpha):
    z = _logits(6, 15)
    y = torch.tensor([0, 1, 14, 7, 7, 3])
    kappa = torch.tensor([0.1, 0.5, 1.0, 0.02, 0.7, 0.3], dtype=torch.float64)
    q = torch.rand(15, generator=torch.Generator().manual_seed(5), dtype=torch.float64) + 0.5
    dense = q.expand(6, 15).clone()
    dense[torch.arange(6), y] = kappa
    a = alpha_divergence_loss(z, y, alpha, q, reduction="none", target_q=kappa)
    b = alpha_divergence_loss(z, y, alpha, dense, reduction="none")
    assert torch.allclose(a, b, atol=1e-12)
    assert torch.allclose(a, ref.loss(z, y, alpha, dense), atol=1e-9)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
def test_gradcheck_loss(alpha):
    z = _logits(4, 9).requires_grad_()
    y = torch.tensor([0, 3, 8, 3])
    q = torch.rand(9, generator=torch.Generator().manual_seed(6), dtype=torch.float64) + 0.2
    kappa = torch.tensor([0.2, 0.9, 0.5, 0.05], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: alpha_divergence_loss(t, y, alpha, reduction="none"), (z,))
    assert torch.autograd.gradcheck(lambda t: alpha_divergence_loss(t, y, alpha, q, "sum", target_q=kappa), (z,))


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
def test_gradcheck_softargmax(alpha):
    z = _logits(3, 8).requires_grad_()
    q = torch.rand(3, 8, generator=torch.Generator().manual_seed(7), dtype=torch.float64) + 0.2
    assert torch.autograd.gradcheck(lambda t: alpha_softargmax(t, alpha), (z,))
    assert torch.autograd.gradcheck(lambda t: alpha_softargmax(t, alpha, q), (z,))


def test_loss_gradient_is_p_minus_onehot():
    z = _logits(5, 11).requires_grad_()
    y = torch.tensor([2, 2, 0, 10, 5])
    alpha_divergence_loss(z, y, 1.5, reduction="sum").backward()
    expected = ref.softargmax(z.detach(), 1.5) - F.one_hot(y, 11).double()
    assert torch.allclose(z.grad, expected, atol=1e-12)


def test_softargmax_along_other_dims_and_batched_shapes():
    z = _logits(24, 10).reshape(2, 3, 4, 10)
    p = alpha_softargmax(z, 1.5, dim=1)
    expected = ref.softargmax(z.movedim(1, -1), 1.5).movedim(-1, 1)
    assert torch.allclose(p, expected, atol=1e-12)
    q = torch.rand(3, 1, 1, dtype=torch.float64) + 0.5  # one weight per class along dim 1
    p = alpha_softargmax(z, 2.0, q, dim=1)
    expected = ref.softargmax(z.movedim(1, -1), 2.0, q.expand(2, 3, 4, 10).movedim(1, -1)).movedim(-1, 1)
    assert torch.allclose(p, expected, atol=1e-12)


@pytest.mark.parametrize("alpha", [1.1, 1.25, 1.5])
def test_wide_supports_grow_the_candidate_set(alpha):
    """Rows whose support exceeds the first candidates (32, then 128, …) are still exact; mixed rows too."""
    K = 3000
    z = _logits(6, K, scale=1.0, dtype=torch.float32)
    z[0] *= 0.001  # nearly flat: support of thousands
    z[1] *= 0.05
    z[2] *= 20  # peaked: support of a few
    z[3, 100:1100] = z[3].max()  # 1000 tied maxima
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    p = alpha_softargmax(z, alpha)
    expected = ref.softargmax(z.double(), alpha)
    assert torch.allclose(p.double(), expected, atol=1e-6)
    support = (expected > 0).sum(-1)
    assert support[0] > 1000 and support[2] < 32
    _, stats = alpha_divergence_loss_with_stats(z, y, alpha)
    assert math.isclose(float(stats["support_size"]), float(support.double().mean()), rel_tol=1e-6)
    loss = alpha_divergence_loss(z, y, alpha, reduction="none")
    assert torch.allclose(loss.double(), ref.loss(z.double(), y, alpha), atol=1e-5, rtol=1e-5)


def test_statistics_support_size_and_target_out_of_support():
    z = torch.tensor([[5.0, 0.0, -5.0, -6.0], [1.0, 0.9, 0.8, -3.0]])
    y = torch.tensor([3, 1])
    _, stats = alpha_divergence_loss_with_stats(z, y, 2.0)
    expected = ref.softargmax(z.double(), 2.0)
    assert float(stats["support_size"]) == float((expected > 0).sum(-1).double().mean())
    assert float(stats["py_zero"]) == 0.5  # row 0: the target (−6) is far below the support; row 1 inside it


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_target_out_of_support_equals_p_y_zero_of_the_dense_softargmax(alpha, weighted):
    """``py_zero`` is the fraction of rows whose target has p_y = 0 in the dense α-softargmax, on narrow and wide rows
    (K = 9,000: the second pass) and with a per-class measure."""
    g = torch.Generator().manual_seed(int(alpha * 100) + weighted)
    for scale in (0.05, 1.0, 4.0):
        z = torch.randn(64, 9000, generator=g) * scale
        y = torch.randint(0, 9000, (64,), generator=g)
        y[:8] = z[:8].argmax(dim=1)  # targets surely in the support
        q = torch.rand(9000, generator=g, dtype=torch.float64) + 0.1 if weighted else None
        _, stats = alpha_divergence_loss_with_stats(z, y, alpha, q=q)
        p = alpha_softargmax(z, alpha, q=q)
        expected = (p[torch.arange(64), y] == 0).double().mean()
        assert float(stats["py_zero"]) == pytest.approx(float(expected), abs=1e-12)
        assert 0.0 < float(expected) < 1.0 or scale == 0.05  # both kinds of rows occur (all in at the smallest scale)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_computed_in_float32(dtype):
    z = _logits(4, 20, dtype=dtype).requires_grad_()
    y = torch.tensor([0, 1, 2, 3])
    loss = alpha_divergence_loss(z, y, 1.5)
    assert loss.dtype == torch.float32
    assert torch.equal(loss, alpha_divergence_loss(z.detach().float(), y, 1.5))
    loss.backward()
    assert z.grad.dtype == dtype
    p = alpha_softargmax(z, 1.5)
    assert p.dtype == torch.float32
    assert torch.allclose(p.sum(-1), torch.ones(4), atol=1e-6)


def test_minus_infinity_marks_an_excluded_class():
    z = torch.tensor([[1.0, -math.inf, 0.5, 0.0]], requires_grad=True)
    y = torch.tensor([0])
    p = alpha_softargmax(z, 1.5)
    assert p[0, 1] == 0 and torch.isfinite(p).all()
    loss = alpha_divergence_loss(z, y, 1.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    expected = ref.loss(torch.tensor([[1.0, 0.5, 0.0]]), y, 1.5)
    assert torch.allclose(loss.double(), expected, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 0.5}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"alpha": 1.5, "q": torch.zeros(5)}, "> 0"),
        ({"alpha": 1.5, "q": -torch.ones(5)}, "> 0"),
        ({"alpha": 1.5, "q": torch.full((5,), float("nan"))}, "non-finite"),
        ({"alpha": 1.5, "q": torch.ones(4)}, "shape"),
        ({"alpha": 1.5, "reduction": "avg"}, "reduction"),
        ({"alpha": 1.5, "target_q": 0.0}, "target_q"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    z = _logits(3, 5)
    y = torch.tensor([0, 1, 4])
    with pytest.raises(ValueError, match=match):
        alpha_divergence_loss(z, y, **kwargs)


@pytest.mark.parametrize("alpha", [1.0, 1.5])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_logits_raise(alpha, bad):
    z = _logits(3, 5)
    z[1, 2] = bad
    with pytest.raises(ValueError, match="finite"):
        alpha_divergence_loss(z, torch.tensor([0, 1, 2]), alpha)
    with pytest.raises(ValueError, match="finite"):
        alpha_softargmax(z, alpha)


@pytest.mark.parametrize(
    "z, y, match",
    [
        (torch.zeros(3, 5), torch.tensor([0, 1, 5]), "< num_classes"),
        (torch.zeros(3, 5), torch.tensor([0, -1, 2]), "non-negative"),
        (torch.zeros(3, 5), torch.tensor([0, 1]), "entries"),
        (torch.zeros(3, 5), torch.tensor([0.0, 1.0, 2.0]), "integer"),
        (torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), "empty"),
        (torch.zeros(5), torch.tensor([0]), "batch, classes"),
    ],
)
def test_bad_shapes_and_labels_raise(z, y, match):
    with pytest.raises(ValueError, match=match):
        alpha_divergence_loss(z, y, 1.5)


@settings(max_examples=60, deadline=None)
@given(
    b=st.integers(1, 4),
    k=st.integers(1, 70),
    log_scale=st.floats(-2, 4),
    alpha=st.floats(1.05, 4.0),
    measure=st.sampled_from(["unit", "class", "sample"]),
    seed=st.integers(0, 2**16),
)
def test_property_solver_is_exact_over_shapes_scales_alphas_and_measures(b, k, log_scale, alpha, measure, seed):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(b, k, generator=g) * 10**log_scale).float()
    q = {
        "unit": None,
        "class": torch.exp(torch.empty(k).uniform_(-4, 2, generator=g)),
        "sample": torch.exp(torch.empty(b, k).uniform_(-4, 2, generator=g)),
    }[measure]
    p = alpha_softargmax(z, alpha, q)
    assert torch.isfinite(p).all()
    assert torch.allclose(p.sum(-1).double(), torch.ones(b, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(p.double(), ref.softargmax(z.double(), alpha, q), atol=1e-6)
    y = torch.randint(0, k, (b,), generator=g)
    loss = alpha_divergence_loss(z, y, alpha, q, reduction="none")
    assert torch.isfinite(loss).all() and (loss >= 0).all()
