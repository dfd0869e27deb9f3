"""Property-based checks (hypothesis) over every registered head and pairwise loss and over the metric APIs.

Inputs are extreme but finite: integer-lattice embeddings (ties, repeated rows, zero rows) times scales from 1e-30
to 1e30, batches down to one sample, float32 and float64. Properties: losses and gradients are finite (or, for a
loss whose value float32 cannot hold, the documented ValueError); cosine heads are scale-invariant; metrics equal
a brute-force reference computed from their definitions (docs/EVALUATION.md) and are finite. Derandomized, so the
examples are the same on every run; the whole file runs in well under a minute.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from veriloss import heads, metrics, pairwise
from veriloss.protocols import all_pairs

SETTINGS = settings(
    max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], database=None
)
DIM, CLASSES = 4, 3
SCALES = st.sampled_from([1e-30, 1e-19, 1e-12, 1e-3, 1.0, 7.0, 1e12, 1e19, 1e30])
DTYPES = st.sampled_from([torch.float32, torch.float64])
NON_COSINE_HEADS = {"softmax", "lsoftmax", "sphereface", "harmonic"}
PAIRWISE_EXTRA = {
    "center": {"embedding_dim": DIM, "num_classes": CLASSES},
    "center-invariant": {"embedding_dim": DIM, "num_classes": CLASSES},
    "tse": {"embedding_dim": DIM},
    "tpe": {"embedding_dim": DIM},
}
# always tried, besides the drawn examples: the scales where F.normalize's squares over- and underflow
EDGE = (
    torch.tensor([[2.0, -1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 2.0, -2.0, 0.0], [2.0, -1.0, 0.0, 1.0]]),
    torch.tensor([0, 0, 1, 2]),
)


@st.composite
def lattice_batch(draw, min_rows=1, max_rows=6, pairs=False):
    """Integer-lattice rows in [−2, 2]^DIM (ties, repeated and zero rows), labels in [0, CLASSES)."""
    if pairs:  # at least two identities and a positive pair, as the pair losses require
        extra = draw(st.lists(st.integers(0, CLASSES - 1), min_size=0, max_size=max_rows - 3))
        labels = [0, 0, 1, *extra]
    else:
        labels = draw(st.lists(st.integers(0, CLASSES - 1), min_size=min_rows, max_size=max_rows))
    rows = draw(
        st.lists(st.lists(st.integers(-2, 2), min_size=DIM, max_size=DIM), min_size=len(labels), max_size=len(labels))
    )
    return torch.tensor(rows, dtype=torch.float64), torch.tensor(labels)


def _forward_backward(module, x, y):
    xg = x.clone().requires_grad_()
    torch.manual_seed(0)  # ElasticFace draws its margins from the global generator
    loss = module(xg, y)
    loss.backward()
    return loss.detach(), xg.grad


def _assert_finite(module, loss, grad):
    assert torch.isfinite(loss), f"loss {loss}"
    assert torch.isfinite(grad).all(), "embedding gradient"
    for name, p in module.named_parameters():
        if p.grad is not None:
            g = p.grad.to_dense() if p.grad.is_sparse else p.grad
            assert torch.isfinite(g).all(), f"gradient of {name}"


# ------------------------------------------------------------------------------------------------------------ heads
@pytest.mark.parametrize("name", heads.available())
@SETTINGS
@given(batch=lattice_batch(), scale=SCALES, dtype=DTYPES)
@example(batch=EDGE, scale=1e19, dtype=torch.float32)
@example(batch=EDGE, scale=1e-30, dtype=torch.float32)
def test_every_head_is_finite_with_finite_gradients(name, batch, scale, dtype):
    x, y = batch
    torch.manual_seed(1)
    head = heads.create(name, DIM, CLASSES)
    if dtype == torch.float64:
        head = head.double()
    loss, grad = _forward_backward(head, (x * scale).to(dtype), y)
    _assert_finite(head, loss, grad)


@pytest.mark.parametrize("name", [n for n in heads.available() if n not in NON_COSINE_HEADS])
@SETTINGS
@given(batch=lattice_batch(), scale=SCALES, dtype=DTYPES)
@example(batch=EDGE, scale=1e19, dtype=torch.float32)
@example(batch=EDGE, scale=1e-30, dtype=torch.float32)
def test_cosine_heads_are_scale_invariant(name, batch, scale, dtype):
    x, y = batch
    torch.manual_seed(1)
    head = heads.create(name, DIM, CLASSES)
    if dtype == torch.float64:
        head = head.double()
    ref, ref_grad = _forward_backward(head, x.to(dtype), y)
    loss, grad = _forward_backward(head, (x * scale).to(dtype), y)
    torch.testing.assert_close(loss, ref, rtol=1e-4, atol=1e-4)
    # ∂L/∂(c·x) = ∂L/∂x / c on non-zero rows; a zero row is the same input at every scale (gradient g/eps)
    zero = (x == 0).all(dim=1)
    torch.testing.assert_close(grad[zero], ref_grad[zero], rtol=1e-3, atol=0)
    expected, got = ref_grad[~zero], grad[~zero] * scale
    scale_of = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3 * max(1.0, scale_of))


# ------------------------------------------------------------------------------------------------------------ pairwise
@pytest.mark.parametrize("name", pairwise.available())
@SETTINGS
@given(batch=lattice_batch(pairs=True), scale=SCALES, dtype=DTYPES)
@example(batch=EDGE, scale=1e19, dtype=torch.float32)
@example(batch=EDGE, scale=1e-30, dtype=torch.float32)
def test_every_pairwise_loss_is_finite_or_refuses_an_unrepresentable_batch(name, batch, scale, dtype):
    x, y = batch
    torch.manual_seed(1)
    loss_fn = pairwise.create(name, **PAIRWISE_EXTRA.get(name, {}))
    xs = (x * scale).to(dtype)
    if float(xs.double().norm(dim=1).max()) > 2.0**62:  # squared norms beyond float32: finite or a clear refusal
        try:
            loss, grad = _forward_backward(loss_fn, xs, y)
        except ValueError as err:
            assert "cannot be represented" in str(err)
            return
    else:
        loss, grad = _forward_backward(loss_fn, xs, y)
    _assert_finite(loss_fn, loss, grad)


# ------------------------------------------------------------------------------------------------------------ metrics
def _accept(scores, t):
    return int(np.count_nonzero(scores >= t))


def _thresholds(g, i):
    return np.unique(np.concatenate([g, i]).astype(np.float64))


def brute_roc(g, i):
    t = np.r_[math.inf, _thresholds(g, i)[::-1]]
    return t, np.array([_accept(i, v) for v in t]) / i.size, np.array([_accept(g, v) for v in t]) / g.size


def brute_tar_at_far(g, i, far):
    k = math.floor(Fraction(repr(float(far))) * i.size)
    if k < 1:
        return None
    ok = [v for v in np.r_[_thresholds(g, i), math.inf] if _accept(i, v) <= k]
    return max(_accept(g, v) for v in ok) / g.size


def brute_eer(g, i):
    t = np.r_[_thresholds(g, i), math.inf]
    frr = np.array([g.size - _accept(g, v) for v in t]) / g.size
    far = np.array([_accept(i, v) for v in t]) / i.size
    j = next(n for n in range(t.size) if frr[n] >= far[n])
    if frr[j] == far[j] or j == 0:
        return frr[j]
    d1, d0 = frr[j] - far[j], frr[j - 1] - far[j - 1]
    a = d1 / (d1 - d0)
    return frr[j] + a * (frr[j - 1] - frr[j])


def brute_min_dcf(g, i, p, c_miss=1.0, c_fa=1.0):
    costs = [
        c_miss * p * (g.size - _accept(g, v)) / g.size + c_fa * (1 - p) * _accept(i, v) / i.size
        for v in np.r_[_thresholds(g, i), math.inf]
    ]
    return min(costs) / min(c_miss * p, c_fa * (1 - p))


def brute_auc(g, i):
    d = g[:, None].astype(np.float64) - i[None, :].astype(np.float64)
    return float(np.mean((d > 0) + 0.5 * (d == 0)))


@st.composite
def score_sets(draw):
    """Genuine and impostor scores from a small set of values (ties), at an extreme scale, float32 or float64."""
    values = st.sampled_from([-3.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0])
    g = draw(st.lists(values, min_size=1, max_size=25))
    i = draw(st.lists(values, min_size=1, max_size=60))
    scale = draw(st.sampled_from([1e-30, 1e-12, 1.0, 1e19, 1e30]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (np.array(g) * scale).astype(dtype), (np.array(i) * scale).astype(dtype)


@SETTINGS
@given(scores=score_sets(), far=st.sampled_from([0.01, 0.05, 0.1, 0.29, 0.5, 0.9]), p=st.sampled_from([0.01, 0.3]))
def test_metrics_equal_their_brute_force_definitions(scores, far, p):
    g, i = scores
    r = metrics.roc(g, i)
    t, far_ref, tar_ref = brute_roc(g, i)
    np.testing.assert_array_equal(r.thresholds, t)
    np.testing.assert_allclose(r.far, far_ref, rtol=0, atol=1e-15)
    np.testing.assert_allclose(r.tar, tar_ref, rtol=0, atol=1e-15)
    d = metrics.det(g, i)
    np.testing.assert_allclose(d.frr, 1.0 - tar_ref[::-1], rtol=0, atol=1e-15)

    result = metrics.tar_at_far(g, i, far)
    expected = brute_tar_at_far(g, i, far)
    assert result.measurable == (expected is not None)
    if expected is not None:
        assert result.tar == pytest.approx(expected, abs=1e-15)
        assert result.impostors_admitted <= result.k

    e = metrics.eer(g, i)
    assert math.isfinite(e.eer) and 0.0 <= e.eer <= 1.0
    assert e.eer == pytest.approx(brute_eer(g, i), abs=1e-12)
    m = metrics.min_dcf(g, i, p_target=p)
    assert math.isfinite(m.min_dcf) and m.min_dcf == pytest.approx(brute_min_dcf(g, i, p), abs=1e-12)
    assert metrics.auc(g, i) == pytest.approx(brute_auc(g, i), abs=1e-15)


@SETTINGS
@given(
    axes=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([-1.0, 1.0])), min_size=3, max_size=14),
    labels=st.lists(st.integers(0, 3), min_size=3, max_size=14),
    scale=SCALES,
)
def test_all_pairs_equals_brute_force_on_exact_scores(axes, labels, scale):
    """Signed axis vectors: every cosine is exactly −1, 0 or 1 (many ties), so the brute-force scores are exact."""
    n = min(len(axes), len(labels))
    y = np.array(labels[:n])
    same = y[:, None] == y[None, :]
    iu = np.triu_indices(n, 1)
    if not (same[iu].any() and (~same[iu]).any()):
        return  # all_pairs needs genuine and impostor pairs (it raises otherwise, tested elsewhere)
    x = np.zeros((n, 3))
    for r, (axis, sign) in enumerate(axes[:n]):
        x[r, axis] = sign
    s = (x @ x.T)[iu]
    g, i = s[same[iu]], s[~same[iu]]
    result = all_pairs(torch.tensor(x * scale, dtype=torch.float32), torch.tensor(y), far=(0.1, 0.5))
    np.testing.assert_array_equal(np.sort(result.genuine), np.sort(g))
    assert (result.n_genuine, result.n_impostor) == (g.size, i.size)
    assert result.eer.eer == pytest.approx(brute_eer(g, i), abs=1e-12)
    for tar, f in zip(result.tar, (0.1, 0.5)):
        expected = brute_tar_at_far(g, i, f)
        assert tar.measurable == (expected is not None)
        if expected is not None:
            assert tar.tar == pytest.approx(expected, abs=1e-15)
    assert result.min_dcf[0].min_dcf == pytest.approx(brute_min_dcf(g, i, 0.01), abs=1e-12)
    assert result.auc == pytest.approx(brute_auc(g, i), abs=1e-15)
