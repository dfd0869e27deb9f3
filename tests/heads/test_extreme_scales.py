"""Every head at extreme embedding scales: cosine heads are scale-invariant for any finite input (dense, streaming
and sharded α heads alike), the other heads are finite and exact where the value is representable and raise a
clear ValueError where it is not; integer sizes and real parameters are type-checked."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from veriloss import heads

NON_COSINE = {"softmax", "lsoftmax", "sphereface", "harmonic"}
COSINE = [n for n in heads.available() if n not in NON_COSINE]
ALPHA = ["alpha", "qmargin", "a3m", "a3m-i"]
SCALES = [1e-30, 1e-12, 1.0, 1e19, 1e30]


def _batch(b=8, d=16, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g)
    y = torch.arange(b) % k
    return x, y


def _loss_and_grad(head, x, y, c):
    xc = (x * c).requires_grad_()
    torch.manual_seed(0)  # ElasticFace draws its margins from the global generator
    loss = head(xc, y)
    loss.backward()
    return loss.detach(), xc.grad * c  # d loss / d x at the scale of x


def _check_scale_invariant(head, x, y):
    ref_loss, ref_grad = _loss_and_grad(head, x, y, 1.0)
    assert ref_grad.abs().max() > 0
    for c in SCALES:
        loss, grad = _loss_and_grad(head, x, y, c)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6, msg=f"loss at c={c:g}")
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6, msg=f"gradient at c={c:g}")


@pytest.mark.parametrize("name", COSINE)
def test_cosine_heads_are_scale_invariant(name):
    x, y = _batch()
    torch.manual_seed(1)
    _check_scale_invariant(heads.create(name, 16, 5), x, y)


@pytest.mark.parametrize("name", ALPHA)
def test_streaming_alpha_heads_are_scale_invariant(name):
    x, y = _batch()
    torch.manual_seed(1)
    _check_scale_invariant(heads.create(name, 16, 5, chunk_size=2), x, y)


@pytest.mark.parametrize("name", ALPHA)
def test_sharded_alpha_heads_are_scale_invariant(name):
    x, y = _batch()
    torch.manual_seed(1)
    _check_scale_invariant(heads.create(name, 16, 5, sharded=True), x, y)  # one process: world size 1


def test_cosine_head_at_the_float32_limits():
    x, y = _batch()
    head = heads.create("arcface", 16, 5)
    ref = head(x, y)
    big = x / x.abs().max() * 3.0e38  # entries up to 3e38: every square overflows
    tiny = x / x.abs().max() * 1e-40  # subnormal entries
    torch.testing.assert_close(head(big, y), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(head(tiny, y), ref, rtol=1e-3, atol=1e-3)  # subnormals keep ~3 digits


@pytest.mark.parametrize(
    ("distance", "c"),
    [
        (d, c)
        for d in ("euclidean", "cosine", "manhattan", "chebyshev", "canberra", "bray-curtis", "mahalanobis")
        for c in (1e-19, 1e19, 1e30)
    ]
    + [("minkowski", c) for c in (1e-19, 1e15, 1e19)],
)
def test_harmonic_is_finite_and_exact_at_extreme_scales(distance, c):
    x, y = _batch()
    torch.manual_seed(2)
    head = heads.create("harmonic", 16, 5, distance=distance)
    xc = (x * c).requires_grad_()
    loss = head(xc, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(xc.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)
    # float64 reference straight from the definition: CE on −n·log(d + eps) (float64 does not overflow here)
    ref = heads.create("harmonic", 16, 5, distance=distance).double()
    ref.load_state_dict(head.state_dict())
    x64 = x.double() * c
    d = ref.distances(x64)
    z = -ref.n * torch.log(d + ref.eps)
    expected = torch.nn.functional.cross_entropy(z, y)
    torch.testing.assert_close(loss.double(), expected, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("name", ["lsoftmax", "sphereface", "softmax"])
@pytest.mark.parametrize("c", [1e-30, 1e19, 1e30])
def test_unnormalized_heads_are_exact_while_representable(name, c):
    x, y = _batch()
    torch.manual_seed(3)
    head = heads.create(name, 16, 5).eval()  # eval: λ does not advance
    xc = (x * c).requires_grad_()
    loss = head(xc, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(xc.grad).all()
    ref = heads.create(name, 16, 5).double().eval()
    ref.load_state_dict(head.state_dict())
    expected = ref(x.double() * c, y)  # float64: no overflow at these scales
    torch.testing.assert_close(loss.double(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["lsoftmax", "sphereface", "softmax"])
def test_unnormalized_heads_raise_where_the_logits_leave_float32(name):
    x, y = _batch()
    head = heads.create(name, 16, 5)
    with pytest.raises(ValueError, match=r"beyond what torch\.float32 holds.*normalize"):
        head(x / x.abs().max() * 3e38, y)


def test_sizes_accept_numpy_and_torch_integers_and_reject_bools():
    head = heads.create("arcface", np.int64(16), np.int32(10))
    assert head.embedding_dim == 16 and type(head.embedding_dim) is int and head.num_classes == 10
    assert heads.create("cosface", torch.tensor(8), 3).embedding_dim == 8
    assert heads.create("lsoftmax", 4, 3, m=np.int64(3)).m == 3
    assert heads.create("alpha", 4, 3, chunk_size=np.int64(2)).chunk_size == 2
    for bad, match in [
        ((True, 10), "embedding_dim"),
        ((16.0, 10), "embedding_dim"),
        ((16, np.bool_(True)), "num_classes"),
        (("16", 10), "embedding_dim"),
    ]:
        with pytest.raises(ValueError, match=match):
            heads.create("arcface", *bad)
    with pytest.raises(ValueError, match="m must be an integer"):
        heads.create("lsoftmax", 4, 3, m=True)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("alpha", {"alpha": True}, "alpha must be a real number"),
        ("qmargin", {"alpha": np.True_}, "alpha must be a real number"),
        ("arcface", {"s": True}, "s must be a real number"),
        ("arcface", {"m": False}, "m must be a real number"),
        ("cosface", {"s": "64"}, "s must be a real number"),
        ("sface", {"k": True}, "k must be a real number"),
        ("normface", {"s": torch.tensor(True)}, "s must be a real number"),
        ("harmonic", {"p": True}, "p must be a real number"),
    ],
)
def test_real_parameters_reject_bools_and_strings(name, params, match):
    with pytest.raises(ValueError, match=match):
        heads.create(name, 4, 3, **params)


def test_real_parameters_accept_numpy_and_torch_numbers():
    head = heads.create("arcface", 4, 3, s=np.float32(30.0), m=torch.tensor(0.25))
    assert head.s == 30.0 and math.isclose(head.m, 0.25)
