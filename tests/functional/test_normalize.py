"""The overflow-safe normalization (functional/normalize.py): equal to F.normalize where that works, scale-invariant
for any finite input, exact gradients, zero rows as F.normalize, no host synchronization."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from veriloss.functional import cosine_matrix, l2_norm, l2_normalize
from veriloss.functional.distances import pairwise_distance
from veriloss.functional.normalize import mul_pow2, pow2_scale

SCALES32 = [1e-30, 1e-19, 1e-12, 1.0, 1e19, 1e30, 1e37]


def _x(b=9, d=13, dtype=torch.float32, seed=0):
    return torch.randn(b, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_bitwise_f_normalize_in_the_normal_range(dim):
    x = _x()
    assert torch.equal(l2_normalize(x, dim=dim), F.normalize(x, dim=dim))
    x64 = _x(dtype=torch.float64)
    assert torch.equal(l2_normalize(x64, dim=dim), F.normalize(x64, dim=dim))


@pytest.mark.parametrize("c", SCALES32)
def test_scale_invariant_in_float32_where_f_normalize_is_not(c):
    x = _x()
    expected = F.normalize(x.double(), dim=1)
    got = l2_normalize(x * c, dim=1)
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-7)
    # the norm itself, without overflow of the squares (relative to a float64 reference)
    ref = (x.double() * c).norm(dim=1)
    torch.testing.assert_close(l2_norm(x * c, dim=1).double(), ref, rtol=1e-6, atol=0)


def test_f_normalize_fails_where_l2_normalize_does_not():
    """The bug this module fixes: F.normalize of c·x is 0 (overflow) or wrong (eps clamp) at extreme c."""
    x = _x()
    assert torch.equal(F.normalize(x * 1e19, dim=1), torch.zeros_like(x))
    assert not torch.allclose(F.normalize(x * 1e-13, dim=1), F.normalize(x, dim=1), atol=1e-2)
    assert torch.allclose(l2_normalize(x * 1e19, dim=1), F.normalize(x, dim=1), atol=1e-6)
    assert torch.allclose(l2_normalize(x * 1e-13, dim=1), F.normalize(x, dim=1), atol=1e-6)


@pytest.mark.parametrize("c", [1e-300, 1e-160, 1.0, 1e160, 1e300])
def test_float64_extremes_and_gradcheck(c):
    x = _x(5, 7, torch.float64, seed=1).requires_grad_()
    torch.testing.assert_close(l2_normalize(x.detach() * c, dim=1), F.normalize(x.detach(), dim=1), rtol=1e-13, atol=0)
    assert torch.autograd.gradcheck(lambda t: l2_normalize(t * c, dim=1), (x,))
    assert torch.autograd.gradcheck(lambda t: l2_normalize(t * c, dim=0), (x,))
    assert torch.autograd.gradcheck(lambda t: l2_norm(t * c, dim=1) / c, (x,))


def test_gradient_equals_f_normalize_and_scales_as_one_over_c():
    x = _x().requires_grad_()
    g = _x(seed=3)
    (F.normalize(x, dim=1) * g).sum().backward()
    ref = x.grad.clone()
    for c in (1e-30, 1e30):
        xc = (x.detach() * c).requires_grad_()
        (l2_normalize(xc, dim=1) * g).sum().backward()
        torch.testing.assert_close(xc.grad * c, ref, rtol=1e-5, atol=1e-6)


def test_zero_rows_behave_as_f_normalize():
    x = _x(4, 3)
    x[1] = 0.0
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    ya, yb = l2_normalize(a, dim=1), F.normalize(b, dim=1)
    assert torch.equal(ya, yb) and torch.equal(ya[1], torch.zeros(3))
    g = _x(4, 3, seed=5)
    (ya * g).sum().backward()
    (yb * g).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)  # the zero row's gradient is g / eps in both
    assert torch.equal(l2_norm(x, dim=1)[1], torch.tensor(0.0))


def test_half_precision_and_empty():
    x = _x().bfloat16()
    y = l2_normalize(x * 1e30, dim=1)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), F.normalize(x.float(), dim=1), rtol=1e-2, atol=1e-2)
    assert l2_normalize(torch.empty(0, 4), dim=1).shape == (0, 4)


def test_pow2_scale_is_exact_and_mul_pow2_spans_three_ranges():
    x = _x() * 3e25
    xs, k = pow2_scale(x, dim=1)
    assert torch.equal(mul_pow2(xs, -k), x)  # exact: a power of two
    m = xs.abs().amax(dim=1)
    assert bool(((m >= 0.5) & (m < 1.0)).all())
    t = torch.tensor([2.0**100, 3.0])
    assert torch.equal(mul_pow2(t, torch.tensor(-200)), torch.tensor([2.0**-100, 3.0 * 2.0**-200]))


@pytest.mark.parametrize("c", [1e-30, 1e30])
def test_cosine_matrix_and_cosine_distance_are_scale_invariant(c):
    x, w = _x(6, 5), _x(4, 5, seed=2)
    ref = F.normalize(x.double(), dim=1) @ F.normalize(w.double(), dim=1).t()
    torch.testing.assert_close(cosine_matrix(x * c, w * c).double(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pairwise_distance(x * c, w, "cosine").double(), 1 - ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "c"),
    [("euclidean", 1e19), ("manhattan", 1e19), ("minkowski", 1e15), ("chebyshev", 1e30), ("mahalanobis", 1e19)],
)
def test_homogeneous_distances_do_not_overflow(name, c):
    g = torch.Generator().manual_seed(4)
    x, w, f = torch.randn(5, 6, generator=g), torch.randn(3, 6, generator=g), torch.randn(6, 6, generator=g)
    ref = pairwise_distance(x.double(), w.double(), name, p=3.0, factor=f.double()) * c
    got = pairwise_distance(x * c, w * c, name, p=3.0, factor=f)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=0)
