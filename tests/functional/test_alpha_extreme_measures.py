"""The α loss and α-softargmax with extreme reference measures (q = 1e-300 in float64, up to α = 3): finite and
correct where representable, a clear ValueError where the loss itself exceeds the dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.functional import alpha_reference as ref
from veriloss.functional import alpha_divergence_loss, alpha_softargmax

Z = torch.tensor([[0.5, 0.2, -0.1, 0.3], [0.1, 0.9, 0.4, -0.3]], dtype=torch.float64)


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0])
@pytest.mark.parametrize("tiny", [1e-300, 1e-200, 1e-100])
def test_a_class_with_a_vanishing_measure_drops_out(alpha, tiny):
    """q_0 → 0 on a non-target class: p_0 → 0 and the loss is that of the other classes (float64 reference on them).
    Before: NaN at α = 3 (q_0^{1−α} = inf times p_0^α = 0)."""
    q = torch.tensor([tiny, 1.0, 1.0, 1.0], dtype=torch.float64)
    y = torch.tensor([1, 2])
    z = Z.clone().requires_grad_()
    loss = alpha_divergence_loss(z, y, alpha, q, reduction="none")
    expected = ref.loss(Z[:, 1:], y - 1, alpha)
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-12, atol=1e-12)
    loss.sum().backward()
    p = alpha_softargmax(Z, alpha, q)
    assert bool((p[:, 0] >= 0).all()) and float(p[:, 0].max()) <= 10 * tiny
    torch.testing.assert_close(p[:, 1:], ref.softargmax(Z[:, 1:], alpha), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(z.grad, p - torch.nn.functional.one_hot(y, 4).double(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0])
def test_uniformly_tiny_measure_softargmax_and_its_jacobian(alpha):
    """p(z; c·1) = p(c^{α−1} z; 1): for c = 1e-300 the logits vanish, p is uniform and the Jacobian (scaled by
    c^{α−1}) is 0. Before: p NaN at α = 3, and a NaN backward."""
    q = torch.full((4,), 1e-300, dtype=torch.float64)
    z = Z.clone().requires_grad_()
    p = alpha_softargmax(z, alpha, q)
    torch.testing.assert_close(p.detach(), torch.full_like(Z, 0.25), rtol=1e-12, atol=1e-12)
    (p * torch.arange(4.0, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(z.grad).all() and float(z.grad.abs().max()) < 1e-100


def test_tiny_measure_jacobian_matches_the_scaled_logits():
    """The scaling identity on a measure small enough to need the scaled solve (λ = q̄^{α−1} = 1e-80): the
    Jacobian of p(z; c·q) is c^{α−1} times that of p at c^{α−1} z."""
    alpha, c = 3.0, 1e-40
    q = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=torch.float64)
    zs = (Z * 1e80).requires_grad_()  # c^{α−1}·zs = Z: a non-trivial α-softargmax
    p = alpha_softargmax(zs, alpha, c * q)
    torch.testing.assert_close(p.detach(), ref.softargmax(Z, alpha, q), rtol=1e-10, atol=1e-12)
    g = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    (p * g).sum().backward()
    z1 = Z.clone().requires_grad_()
    (alpha_softargmax(z1, alpha, q) * g).sum().backward()
    torch.testing.assert_close(zs.grad, z1.grad * c ** (alpha - 1), rtol=1e-10, atol=0)


@pytest.mark.parametrize("alpha", [1.5, 2.0])
def test_uniformly_tiny_measure_loss_is_the_scaled_closed_form(alpha):
    """With q = c·1, p is uniform (to 1e-150) and L = c^{1−α}(1 − K^{1−α})/(α(α−1)) + Σ_j (z_j − z_y)/K (no NaN,
    exact as long as it fits float64)."""
    c = 1e-300
    y = torch.tensor([0, 3])
    loss = alpha_divergence_loss(Z, y, alpha, torch.full((4,), c, dtype=torch.float64), reduction="none")
    k = 4
    expected = c ** (1 - alpha) * (1 - k ** (1 - alpha)) / (alpha * (alpha - 1)) + (
        Z.mean(dim=1) - Z[torch.arange(2), y]
    )
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("q", "dtype"),
    [
        (torch.full((4,), 1e-300, dtype=torch.float64), torch.float64),  # q_y^{−2}/6 ≈ 1.7e599 at α = 3
        (torch.tensor([1e-30, 1.0, 1.0, 1.0], dtype=torch.float64), torch.float32),  # 1.7e59 > float32 max
    ],
)
def test_a_loss_beyond_the_dtype_raises_naming_q_y(q, dtype):
    y = torch.tensor([0, 0])
    with pytest.raises(ValueError, match=r"not representable in torch\.float(64|32).*q_y = 1e-(300|30) at α = 3"):
        alpha_divergence_loss(Z.to(dtype), y, 3.0, q)


@pytest.mark.parametrize("alpha", [True, np.True_, "1.5", b"2"])
def test_alpha_must_be_a_number_not_a_bool_or_string(alpha):
    with pytest.raises(ValueError, match="alpha must be a real number"):
        alpha_divergence_loss(Z, torch.tensor([0, 1]), alpha)
    with pytest.raises(ValueError, match="alpha must be a real number"):
        alpha_softargmax(Z, alpha)
