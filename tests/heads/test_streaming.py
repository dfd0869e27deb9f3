"""Streaming α heads (chunk_size=…) against the dense heads (same W, float64), the float64 oracle of LOSSES.md §2,
gradcheck, and a record of every tensor the stream allocates (no B×K and no K×d temporary)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from tests.functional import alpha_reference as ref
from veriloss import heads
from veriloss.functional.alpha_solver import solve
from veriloss.heads.alpha import AlphaLogits, streaming
from veriloss.heads.alpha import stream as passes

_PARAMS = {"alpha": {}, "qmargin": {"m": 1.0}, "a3m": {"m": 0.3}, "a3m-i": {"m": 0.2, "overflow": "clamp"}}


def _data(k: int, b: int = 12, d: int = 8, seed: int = 0, dtype=torch.float64):
    """Half the samples near their prototype (target in the support), half random (wide supports, p_y = 0)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(k, d, generator=g, dtype=dtype)
    y = torch.randint(0, k, (b,), generator=g)
    x = torch.randn(b, d, generator=g, dtype=dtype)
    near = torch.arange(b) % 2 == 0
    x[near] = F.normalize(w[y[near]], dim=1) * 3 + 0.4 * x[near]
    return x, y, w


def _pair(name: str, k: int, chunk: int, alpha: float, s: float, w: torch.Tensor, dtype=torch.float64, **params):
    params = params or _PARAMS[name]
    dense = heads.create(name, w.shape[1], k, alpha=alpha, s=s, **params).to(dtype)
    stream = heads.create(name, w.shape[1], k, alpha=alpha, s=s, chunk_size=chunk, **params).to(dtype)
    dense.weight.data.copy_(w)
    stream.weight.data.copy_(w)
    return dense, stream


def _run(head, x, y):
    xa = x.clone().requires_grad_(True)
    head.zero_grad()
    loss = head(xa, y)
    loss.backward()
    return loss.detach(), xa.grad, head.weight.grad


@pytest.mark.parametrize("name", list(_PARAMS))
@pytest.mark.parametrize("k,chunk", [(50, 7), (1000, 300), (5000, 999)])
@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0])
def test_streaming_equals_dense_loss_gradients_and_statistics(name, k, chunk, alpha):
    x, y, w = _data(k)
    dense, stream = _pair(name, k, chunk, alpha, 4.0, w)
    l_d, gx_d, gw_d = _run(dense, x, y)
    l_s, gx_s, gw_s = _run(stream, x, y)
    torch.testing.assert_close(l_s, l_d, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx_s, gx_d, rtol=1e-10, atol=1e-12)
    assert gw_s.is_sparse and not gw_d.is_sparse
    torch.testing.assert_close(gw_s.to_dense(), gw_d, rtol=1e-10, atol=1e-12)
    assert stream.statistics() == dense.statistics()

    # the stored rows of dL/dW are exactly the union of the supports and the targets
    with torch.no_grad():
        cos = F.normalize(x, dim=1) @ F.normalize(w, dim=1).t()
        z = 4.0 * cos
        rows = torch.arange(len(y))
        q = None
        if name in ("a3m", "a3m-i"):
            theta = torch.acos(cos[rows, y]) + _PARAMS[name]["m"]
            z[rows, y] = 4.0 * torch.cos(theta.clamp(max=math.pi))
        if name == "qmargin":
            q = torch.ones_like(z)
            q[rows, y] = stream.kappa
        sol = solve(z, alpha, q)  # the dense solver's supports
    union = set(sol.index[sol.prob > 0].tolist()) | set(y.tolist())
    assert set(gw_s.coalesce().indices()[0].tolist()) == union
    if k <= 1000:  # the float64 bisection oracle (slow on 2 cores beyond that; the dense head matches it)
        torch.testing.assert_close(l_s, ref.loss(z, y, alpha, q).mean(), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(sol.dense(k), ref.softargmax(z, alpha, q), rtol=0, atol=1e-12)


def _spy(monkeypatch):
    """Record the k of every top-k merge and the number of second passes of the stream."""
    seen = {"k": [], "second_pass": 0}
    merge, above = passes.merge_top, passes.stream_above

    def spy_merge(*args):
        seen["k"].append(args[-1])
        return merge(*args)

    def spy_above(*args):
        seen["second_pass"] += 1
        return above(*args)

    monkeypatch.setattr(passes, "merge_top", spy_merge)
    monkeypatch.setattr(passes, "stream_above", spy_above)
    return seen


@pytest.mark.parametrize("cap", [None, 32, 64])
def test_wide_supports_grow_the_candidates_or_take_the_second_pass(monkeypatch, cap):
    """Supports far wider than the 32 initial candidates: the running top-k grows (one pass over W), or, with k
    capped below the support, the rows left short take the second stream; exact either way."""
    if cap is not None:
        monkeypatch.setattr(passes, "MAX_CANDIDATES", cap)
    seen = _spy(monkeypatch)
    x, y, w = _data(3000, b=8, seed=3)
    dense, stream = _pair("qmargin", 3000, 257, 1.25, 3.0, w, kappa=0.3)
    l_d, gx_d, gw_d = _run(dense, x, y)
    l_s, gx_s, gw_s = _run(stream, x, y)
    support = stream.statistics()["support_size"]
    assert support > 100  # far past the 32 initial candidates
    if cap is None:
        assert max(seen["k"]) > support and seen["second_pass"] == 0
    else:
        assert max(seen["k"]) == cap and seen["second_pass"] == 1
    torch.testing.assert_close(l_s, l_d, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx_s, gx_d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gw_s.to_dense(), gw_d, rtol=1e-10, atol=1e-12)
    assert stream.statistics() == dense.statistics()


@pytest.mark.parametrize("chunk", [1, 5, 64, 2000])
def test_candidates_grow_within_the_stream(monkeypatch, chunk):
    """k starts at 32 and doubles whenever a left-out logit may be in a support, whatever the chunk (one class
    per chunk included); random embeddings against many classes: supports of 33 to 50 classes."""
    seen = _spy(monkeypatch)
    g = torch.Generator().manual_seed(4)
    w = torch.randn(2000, 32, generator=g, dtype=torch.float64)
    x = torch.randn(16, 32, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2000, (16,), generator=g)
    dense, stream = _pair("alpha", 2000, chunk, 1.5, 4.0, w)
    l_d, gx_d, gw_d = _run(dense, x, y)
    l_s, gx_s, gw_s = _run(stream, x, y)
    assert stream.statistics()["support_size"] > 32
    assert seen["k"][0] == 32 and max(seen["k"]) == 64 and seen["second_pass"] == 0
    torch.testing.assert_close(l_s, l_d, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx_s, gx_d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gw_s.to_dense(), gw_d, rtol=1e-10, atol=1e-12)
    assert stream.statistics() == dense.statistics()


def test_second_pass_collects_every_class_above_the_threshold():
    """``stream_above`` against the dense logits: per row exactly the classes above ``thr`` (ascending), their
    logits, −inf / −1 padding to the widest row."""
    g = torch.Generator().manual_seed(6)
    r, k, d, s, m = 5, 300, 8, 6.0, 0.4
    x, w = torch.randn(r, d, generator=g, dtype=torch.float64), torch.randn(k, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (r,), generator=g)

    link = AlphaLogits(alpha=1.5, s=s, target=lambda cos_y: cos_y - m)

    z = s * F.normalize(x, dim=1) @ F.normalize(w, dim=1).t()
    z[torch.arange(r), y] -= s * m
    thr = torch.quantile(z, torch.tensor([0.5, 0.9, 0.97, 0.99, 0.999], dtype=torch.float64), dim=1).diagonal()
    vals, cls = passes.stream_above(F.normalize(x, dim=1), w, y, thr, link, 37)
    width = int((z > thr[:, None]).sum(dim=1).max())
    assert vals.shape == cls.shape == (r, width)
    for i in range(r):
        want = (z[i] > thr[i]).nonzero()[:, 0]
        n = want.numel()
        assert torch.equal(cls[i, :n], want) and bool((cls[i, n:] == -1).all())
        torch.testing.assert_close(vals[i, :n], z[i, want], rtol=1e-13, atol=1e-13)
        assert bool((vals[i, n:] == -math.inf).all())


@pytest.mark.parametrize("pairs", [1, 7, 10**9])
def test_blocked_backward_equals_dense(monkeypatch, pairs):
    """The backward in blocks of rows (one row, a few rows, one block) gives the dense head's gradients, and a
    coalesced sparse gradient (ascending distinct rows) without a coalesce."""
    monkeypatch.setattr(streaming, "_BACKWARD_PAIRS", pairs)
    x, y, w = _data(400, b=11, seed=7)
    for name in ("qmargin", "a3m"):
        dense, stream = _pair(name, 400, 64, 1.5, 4.0, w)
        l_d, gx_d, gw_d = _run(dense, x, y)
        xa = x.clone().requires_grad_(True)
        l_s = stream(xa, y)
        torch.testing.assert_close(l_s.detach(), l_d, rtol=1e-12, atol=1e-12)
        gx_s, gw_s = torch.autograd.grad(l_s, (xa, stream.weight))
        assert gw_s.is_sparse and gw_s.is_coalesced()
        rows = gw_s.indices()[0]
        assert bool((rows[1:] > rows[:-1]).all())
        torch.testing.assert_close(gx_s, gx_d, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gw_s.to_dense(), gw_d, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["alpha", "a3m"])
def test_float32_streaming_matches_dense(name):
    x, y, w = _data(700, dtype=torch.float32)
    dense, stream = _pair(name, 700, 128, 1.5, 8.0, w, dtype=torch.float32)
    l_d, gx_d, gw_d = _run(dense, x, y)
    l_s, gx_s, gw_s = _run(stream, x, y)
    assert l_s.dtype == torch.float32
    torch.testing.assert_close(l_s, l_d, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx_s, gx_d, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gw_s.to_dense(), gw_d, rtol=1e-4, atol=1e-6)


class _Densify(torch.autograd.Function):
    """Identity whose backward densifies a sparse gradient (gradcheck compares strided Jacobians)."""

    @staticmethod
    def forward(ctx, t):
        return t.clone()

    @staticmethod
    def backward(ctx, g):
        return g.to_dense()


@pytest.mark.parametrize("name", ["qmargin", "a3m"])
def test_gradcheck(name):
    x, y, w = _data(40, b=5, d=4, seed=1)
    head = heads.create(name, 4, 40, alpha=1.5, s=4.0, chunk_size=9, **_PARAMS[name]).double()

    def f(xx, ww):
        return torch.func.functional_call(head, {"weight": _Densify.apply(ww)}, (xx, y))

    xx = x.clone().requires_grad_(True)
    ww = w.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (xx, ww))


def test_sparse_gradients_accumulate():
    x, y, w = _data(300)
    _, stream = _pair("alpha", 300, 64, 1.5, 4.0, w)
    stream(x, y).backward()
    once = stream.weight.grad.to_dense().clone()
    stream(x, y).backward()
    assert stream.weight.grad.is_sparse
    torch.testing.assert_close(stream.weight.grad.to_dense(), 2 * once)


class _Allocations(TorchDispatchMode):
    """The largest tensor produced by any op, views of the inputs excluded (sparse: its stored values)."""

    def __init__(self):
        super().__init__()
        self.largest, self.op = 0, None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if torch.Tag.view_copy not in func.tags and not func.is_view:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    n = t._values().numel() if t.is_sparse else t.numel()
                    if n > self.largest:
                        self.largest, self.op = n, func
        return out


@pytest.mark.parametrize("name", ["alpha", "a3m"])
def test_no_batch_by_classes_or_classes_by_dim_temporary(name):
    b, k, d = 8, 6000, 16
    x, y, w = _data(k, b=b, d=d)
    dense, stream = _pair(name, k, 256, 1.5, 8.0, w)
    with _Allocations() as rec:
        _run(stream, x, y)
    assert rec.largest < min(b * k, k * d) // 4, rec.op
    with _Allocations() as rec_dense:  # the detector sees the dense head's B×K logits
        _run(dense, x, y)
    assert rec_dense.largest >= b * k


def test_backward_temporaries_are_bounded_by_the_block(monkeypatch):
    """Rows sharing their support classes (four labels): the backward allocates one block of gathered rows at a
    time and the gradient of the distinct classes, never the B×(r+1)×d rows of the whole batch."""
    monkeypatch.setattr(streaming, "_BACKWARD_PAIRS", 64)
    g = torch.Generator().manual_seed(8)
    k, d, b = 3000, 16, 64
    w = torch.randn(k, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (b,), generator=g) * 7
    x = F.normalize(w[y], dim=1) * 3 + 0.3 * torch.randn(b, d, generator=g, dtype=torch.float64)
    dense, stream = _pair("a3m", k, 512, 1.5, 4.0, w)
    xa = x.clone().requires_grad_(True)
    loss = stream(xa, y)
    with _Allocations() as rec:
        gx, gw = torch.autograd.grad(loss, (xa, stream.weight))
    _, gx_d, gw_d = _run(dense, x, y)
    torch.testing.assert_close(gx, gx_d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gw.to_dense(), gw_d, rtol=1e-10, atol=1e-12)
    n, mean_support = gw._nnz(), stream.statistics()["support_size"]  # distinct classes (gw is coalesced)
    bound = max(n, 64) * d  # the gradient rows, or one block: at most max(64, r + 1) pairs (r + 1 ≤ 64 here)
    assert b * mean_support * d > 3 * bound  # the whole batch's gathered rows would be far larger
    assert rec.largest <= bound, rec.op


def test_chunk_size_validation():
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="chunk_size"):
            heads.create("alpha", 4, 10, chunk_size=bad)
    for name in ("alpha", "qmargin", "a3m", "a3m-i"):
        with pytest.raises(ValueError, match="chunk_size"):
            heads.create(name, 4, 10, alpha=1.0, chunk_size=8)  # α = 1 is the dense softmax
    with pytest.raises(ValueError, match="chunk_size"):
        heads.create("arcface", 4, 10, chunk_size=8)  # not an α head
    assert "chunk_size=8" in repr(heads.create("a3m", 4, 10, chunk_size=8))
    assert heads.create("a3m", 4, 10).chunk_size is None


def test_backward_blocks_are_small_on_the_cpu_and_one_on_a_gpu():
    """512 pairs a block on the CPU (cache); on an accelerator 2**25 gathered elements, i.e. the whole batch of 256
    rows × 81 classes at d = 512 in one block (the block count, not the values, changes: see the test above)."""
    assert streaming._rows_per_block(torch.device("cpu"), 81, 512) == 6
    assert streaming._rows_per_block(torch.device("cpu"), 4096, 512) == 1
    assert streaming._rows_per_block(torch.device("cuda"), 81, 512) == 2**16 // 81 >= 256
    assert streaming._rows_per_block(torch.device("cuda"), 10**6, 8) == 4  # never below one row
