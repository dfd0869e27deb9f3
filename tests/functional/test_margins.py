"""Margin transforms: CosFace, ArcFace with each θ + m > π policy, combined, L-Softmax ψ and λ, ElasticFace
draws."""

from __future__ import annotations

import math

import pytest
import torch

from veriloss.functional.margins import (
    OVERFLOW_POLICIES,
    angle,
    arcface_margin,
    combined_margin,
    cosface_margin,
    elastic_margins,
    lsoftmax_psi,
    sphereface_lambda,
)


def test_cosface_and_arcface_values():
    thetas = [0.1, 0.7, 1.5, 2.5]
    cos = torch.tensor([math.cos(t) for t in thetas], dtype=torch.float64)
    torch.testing.assert_close(cosface_margin(cos, 0.35), cos - 0.35)
    expected = torch.tensor([math.cos(t + 0.5) for t in thetas], dtype=torch.float64)
    for policy in OVERFLOW_POLICIES:
        if policy == "easy":
            continue  # easy leaves cos ≤ 0 unchanged
        torch.testing.assert_close(arcface_margin(cos, 0.5, policy), expected)
    easy = torch.tensor([math.cos(t + 0.5) if math.cos(t) > 0 else math.cos(t) for t in thetas], dtype=cos.dtype)
    torch.testing.assert_close(arcface_margin(cos, 0.5, "easy"), easy)


@pytest.mark.parametrize("policy", OVERFLOW_POLICIES)
def test_arcface_overflow_policy_values_and_gradients(policy):
    m = 0.5
    thetas = [2.5, 2.7, 2.9, 3.1, math.pi]  # the last four have θ + m > π
    cos = torch.tensor([math.cos(t) for t in thetas], dtype=torch.float32, requires_grad=True)
    out = arcface_margin(cos, m, policy)
    out.sum().backward()
    for t, v in zip(thetas, out.tolist()):
        expected = {
            "none": math.cos(t + m),
            "clamp": math.cos(min(t + m, math.pi)),
            "easy": math.cos(t),
            "fallback": math.cos(t + m) if t + m <= math.pi else math.cos(t) - m * math.sin(m),
        }[policy]
        assert v == pytest.approx(expected, abs=2e-3 if t == math.pi else 1e-5)  # θ = π is clamped by ε
    assert torch.isfinite(cos.grad).all()
    if policy == "clamp":
        assert torch.all(cos.grad[1:] == 0)  # saturated beyond π − m
    if policy in ("fallback", "easy"):
        assert torch.all(cos.grad[1:] == 1)  # cos θ − const there: slope 1 in cos θ


def test_fallback_keeps_the_target_monotone_and_none_does_not():
    theta = torch.linspace(0.0, math.pi, 2001, dtype=torch.float64)
    cos = torch.cos(theta)
    fallback = arcface_margin(cos, 0.5, "fallback")
    none = arcface_margin(cos, 0.5, "none")
    assert bool((fallback[1:] <= fallback[:-1] + 1e-12).all())
    assert not bool((none[1:] <= none[:-1] + 1e-12).all())


def test_unknown_overflow():
    with pytest.raises(ValueError, match="overflow must be one of"):
        arcface_margin(torch.zeros(3), 0.5, "wrap")


def test_combined_special_cases():
    cos = torch.tensor([0.9, 0.3, -0.2, -0.95], dtype=torch.float64)
    assert torch.equal(combined_margin(cos, 1.0, 0.5, 0.0), arcface_margin(cos, 0.5))
    assert torch.equal(combined_margin(cos, 1.0, 0.0, 0.35), cosface_margin(cos, 0.35))
    theta = torch.acos(cos)
    torch.testing.assert_close(combined_margin(cos[:2], 1.2, 0.3, 0.2), torch.cos(1.2 * theta[:2] + 0.3) - 0.2)


def test_per_sample_margin_tensor():
    cos = torch.tensor([0.8, 0.1, -0.3], dtype=torch.float64)
    m = torch.tensor([0.4, 0.5, 0.6], dtype=torch.float64)
    expected = torch.stack([arcface_margin(cos[i : i + 1], float(m[i]))[0] for i in range(3)])
    torch.testing.assert_close(arcface_margin(cos, m), expected)


def test_angle_has_finite_gradient_at_the_ends():
    c = torch.tensor([1.0, -1.0, 0.0], requires_grad=True)
    angle(c).sum().backward()
    assert torch.isfinite(c.grad).all()


# ----------------------------------------------------------------------------------------------------------
# L-Softmax ψ and the λ schedule
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_psi_matches_the_piecewise_formula(m):
    theta = torch.linspace(0.0, math.pi, 1001, dtype=torch.float64)[1:-1]
    got = lsoftmax_psi(torch.cos(theta), m)
    expected = []
    for t in theta.tolist():
        k = min(int(t * m / math.pi), m - 1)
        expected.append((-1) ** k * math.cos(m * t) - 2 * k)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_psi_known_values():
    # m = 2: ψ(0) = 1, ψ(π/4) = cos(π/2) = 0, ψ(π/2) = −1, ψ(3π/4) = −cos(3π/2) − 2 = −2, ψ(π) = −3
    angles = [0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4, math.pi]
    cos = torch.cos(torch.tensor(angles, dtype=torch.float64))
    expected = torch.tensor([1.0, 0.0, -1.0, -2.0, -3.0], dtype=torch.float64)
    torch.testing.assert_close(lsoftmax_psi(cos, 2), expected, atol=1e-5, rtol=0)
    # m = 4 at the piece boundaries kπ/4: 1 − 2k
    b = torch.cos(torch.tensor([k * math.pi / 4 for k in range(5)], dtype=torch.float64))
    torch.testing.assert_close(
        lsoftmax_psi(b, 4), torch.tensor([1.0 - 2 * k for k in range(5)], dtype=torch.float64), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("m", [2, 3, 4])
def test_psi_continuous_and_decreasing(m):
    for k in range(1, m):
        edge = k * math.pi / m
        lo, hi = torch.cos(torch.tensor([edge - 1e-7, edge + 1e-7], dtype=torch.float64))
        left, right = lsoftmax_psi(torch.stack([lo, hi]), m).tolist()
        assert left == pytest.approx(1 - 2 * k, abs=1e-5) and right == pytest.approx(1 - 2 * k, abs=1e-5)
    theta = torch.linspace(0.0, math.pi, 5001, dtype=torch.float64)
    psi = lsoftmax_psi(torch.cos(theta), m)
    assert bool((psi[1:] < psi[:-1]).all())
    assert float(psi[0]) == pytest.approx(1.0) and float(psi[-1]) == pytest.approx(1 - 2 * m)


def test_psi_gradient_is_finite_and_matches_derivative():
    c = torch.tensor([1.0, 0.3, -0.4, -1.0], dtype=torch.float64, requires_grad=True)
    lsoftmax_psi(c, 4).sum().backward()
    assert torch.isfinite(c.grad).all()
    # dψ/dcos = (−1)^k T_4'(c) with T_4 = 8c⁴ − 8c² + 1 (θ(0.3) ∈ piece 1, θ(−0.4) ∈ piece 2)
    d = lambda v: 32 * v**3 - 16 * v  # noqa: E731
    expected = [d(1.0), -d(0.3), d(-0.4), -d(-1.0)]
    torch.testing.assert_close(c.grad, torch.tensor(expected, dtype=torch.float64))


def test_psi_rejects_non_integer_m():
    for bad in (2.0, 0, -1, True):
        with pytest.raises(ValueError, match="positive integer"):
            lsoftmax_psi(torch.zeros(2), bad)


def test_sphereface_lambda_schedule():
    assert sphereface_lambda(0) == 1000.0
    assert sphereface_lambda(1) == pytest.approx(1000.0 / 1.12)
    assert sphereface_lambda(100) == pytest.approx(1000.0 / 13.0)
    assert sphereface_lambda(10**6) == 5.0
    assert sphereface_lambda(3, 10.0, 0.5, 1.0, 2.0) == pytest.approx(10.0 / 16)
    assert sphereface_lambda(100, 10.0, 0.5, 1.0, 2.0) == 0.5
    assert sphereface_lambda(7, 0.0, 0.0) == 0.0


# ----------------------------------------------------------------------------------------------------------
# ElasticFace margins
# ----------------------------------------------------------------------------------------------------------
def test_elastic_margins_seeded_reference_draw():
    cos = torch.tensor([0.1, 0.5, -0.2, 0.9, 0.3])
    torch.manual_seed(42)
    got = elastic_margins(cos, 0.5, 0.05)
    torch.manual_seed(42)
    assert torch.equal(got, 0.5 + 0.05 * torch.randn(5))
    g = torch.Generator().manual_seed(3)
    a = elastic_margins(cos, 0.35, 0.025, generator=g)
    b = elastic_margins(cos, 0.35, 0.025, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(elastic_margins(cos, 0.4, 0.0), torch.full((5,), 0.4))


def test_elastic_margins_sorted_by_rank():
    cos = torch.tensor([0.1, 0.5, -0.2, 0.9, 0.3, 0.0])
    torch.manual_seed(7)
    plain = elastic_margins(cos, 0.5, 0.1)
    torch.manual_seed(7)
    ranked = elastic_margins(cos, 0.5, 0.1, sort=True)
    desc = torch.sort(plain, descending=True).values
    # lowest cosine (−0.2, index 2) gets the largest margin, ..., highest (0.9, index 3) the smallest
    for rank, i in enumerate([2, 5, 0, 4, 1, 3]):
        assert ranked[i] == desc[rank]
