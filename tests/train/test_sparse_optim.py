"""LazySGD against torch.optim.SGD on a dense copy (same gradients, float64), and streaming-head training runs."""

from __future__ import annotations

import pytest
import torch

from veriloss import heads
from veriloss.train import sparse_optim
from veriloss.train.sparse_optim import LazySGD

_CASES = [
    (0.0, 0.0, False),
    (0.0, 0.05, False),
    (0.9, 0.0, False),
    (0.9, 0.05, False),
    (0.9, 0.0, True),
    (0.8, 0.05, True),
]


def _sparse(rows: torch.Tensor, vals: torch.Tensor, shape) -> torch.Tensor:
    return torch.sparse_coo_tensor(rows[None], vals, shape, check_invariants=True)


@pytest.mark.parametrize("momentum,weight_decay,nesterov", _CASES)
@pytest.mark.parametrize("schedule", [False, True])
@pytest.mark.parametrize("block_elements", [None, 8])
def test_lazy_sgd_equals_dense_sgd_after_flush(monkeypatch, momentum, weight_decay, nesterov, schedule, block_elements):
    """Same gradient sequence (sparse rows, duplicates included; a dense bias in the same optimizer); the row
    updates in one block, or in blocks of 2 rows (``block_elements`` = 8 at d = 4)."""
    if block_elements is not None:
        monkeypatch.setattr(sparse_optim, "_BLOCK_ELEMENTS", block_elements)
    g = torch.Generator().manual_seed(0)
    k, d = 30, 4
    w0, b0 = torch.randn(k, d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    wl, bl = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    wd_, bd_ = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    hyper = {"lr": 0.1, "momentum": momentum, "weight_decay": weight_decay, "nesterov": nesterov}
    lazy, dense = LazySGD([wl, bl], **hyper), torch.optim.SGD([wd_, bd_], **hyper)
    for t in range(40):
        rows = torch.randint(0, k, (5,), generator=g)
        sp = _sparse(rows, torch.randn(5, d, generator=g, dtype=torch.float64), (k, d))
        gb = torch.randn(d, generator=g, dtype=torch.float64)
        wl.grad, bl.grad = sp, gb.clone()
        wd_.grad, bd_.grad = sp.to_dense(), gb.clone()
        if schedule and t in (7, 20, 21, 33):
            for opt in (lazy, dense):
                opt.param_groups[0]["lr"] *= 0.6
        lazy.step()
        dense.step()
        torch.testing.assert_close(bl, bd_, rtol=0, atol=1e-13)  # dense parameters: plain SGD
        touched = rows.unique()
        torch.testing.assert_close(wl[touched], wd_[touched], rtol=0, atol=1e-12)  # touched rows: up to date
    lazy.flush()
    torch.testing.assert_close(wl, wd_, rtol=0, atol=1e-12)


def test_lagging_rows_are_behind_until_flushed():
    w = torch.ones(4, 2, dtype=torch.float64, requires_grad=True)
    opt = LazySGD([w], lr=0.5, momentum=0.0, weight_decay=0.2)
    for _ in range(3):
        w.grad = _sparse(torch.tensor([0]), torch.zeros(1, 2, dtype=torch.float64), (4, 2))
        opt.step()
    # row 0 decayed 3 times by (1 − 0.5·0.2); the others not yet
    torch.testing.assert_close(w[0], torch.full((2,), 0.9**3, dtype=torch.float64))
    torch.testing.assert_close(w[1], torch.ones(2, dtype=torch.float64))
    opt.flush()
    torch.testing.assert_close(w.detach(), torch.full((4, 2), 0.9**3, dtype=torch.float64))


def test_sparse_then_dense_gradient():
    """A lazily updated parameter given a dense gradient is caught up first."""
    g = torch.Generator().manual_seed(1)
    w0 = torch.randn(6, 3, generator=g, dtype=torch.float64)
    wl, wd_ = w0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
    lazy = LazySGD([wl], lr=0.2, momentum=0.7, weight_decay=0.1)
    dense = torch.optim.SGD([wd_], lr=0.2, momentum=0.7, weight_decay=0.1)
    for t in range(6):
        gd = torch.randn(6, 3, generator=g, dtype=torch.float64)
        if t % 2 == 0:
            gd[2:] = 0
            wl.grad = _sparse(torch.tensor([0, 1]), gd[:2], (6, 3))
        else:
            wl.grad = gd.clone()
        wd_.grad = gd
        lazy.step()
        dense.step()
    lazy.flush()
    torch.testing.assert_close(wl, wd_, rtol=0, atol=1e-12)


def _train(chunk, optimizer, momentum, weight_decay, flush, steps=6):
    """A linear backbone + a3m head (float64), trained on a fixed random stream of batches."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    k, d_in, d = 400, 6, 8
    backbone = torch.nn.Linear(d_in, d).double()
    head = heads.create("a3m", d, k, alpha=1.5, s=6.0, m=0.2, chunk_size=chunk).double()
    params = list(backbone.parameters()) + list(head.parameters())
    opt = optimizer(params, lr=0.5, momentum=momentum, weight_decay=weight_decay)
    losses = []
    for _ in range(steps):
        x = torch.randn(16, d_in, generator=g, dtype=torch.float64)
        y = torch.randint(0, k, (16,), generator=g)
        if flush:
            opt.flush()
        opt.zero_grad()
        loss = head(backbone(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    if hasattr(opt, "flush"):
        opt.flush()
    return torch.tensor(losses), head.weight.detach(), backbone.weight.detach()


def _sgd(params, **hyper):
    return torch.optim.SGD(params, **hyper)


def test_streaming_training_equals_dense_without_momentum_or_weight_decay():
    """μ = 0 and λ = 0: a row without gradient does not move under dense SGD either: exact with no flush."""
    l_d, w_d, b_d = _train(None, _sgd, 0.0, 0.0, flush=False)
    l_s, w_s, b_s = _train(64, LazySGD, 0.0, 0.0, flush=False)
    torch.testing.assert_close(l_s, l_d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w_s, w_d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b_s, b_d, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.05), (0.9, 0.0), (0.9, 0.05)])
def test_streaming_training_with_momentum_or_decay_needs_a_flush_per_step(momentum, weight_decay):
    l_d, w_d, _ = _train(None, _sgd, momentum, weight_decay, flush=False)
    l_f, w_f, _ = _train(64, LazySGD, momentum, weight_decay, flush=True)
    torch.testing.assert_close(l_f, l_d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w_f, w_d, rtol=1e-10, atol=1e-12)
    # without the flush the forward passes see lagging rows (not yet moved along their velocity, or not yet decayed:
    # the gradient of a cosine head scales with 1/‖W_j‖), so the run is not dense SGD's
    _, w_l, _ = _train(64, LazySGD, momentum, weight_decay, flush=False)
    assert float((w_l - w_d).abs().max()) > 1e-6


def test_sorted_sparse_gradient_is_used_without_a_copy():
    """The streaming head's gradient after autograd's accumulation (not flagged coalesced, rows ascending and
    distinct) is used in place; an unsorted one with duplicates is coalesced first. Both steps equal dense SGD."""
    g = torch.Generator().manual_seed(2)
    head = heads.create("alpha", 8, 300, chunk_size=64).double()
    x, y = torch.randn(12, 8, generator=g, dtype=torch.float64), torch.randint(0, 300, (12,), generator=g)
    head(x, y).backward()
    grad = head.weight.grad
    rows, values = sparse_optim._sorted_rows(grad)
    assert not grad.is_coalesced() and values.data_ptr() == grad._values().data_ptr()
    assert bool((rows[1:] > rows[:-1]).all())
    messy = _sparse(torch.tensor([4, 1, 4, 0]), torch.arange(8.0).view(4, 2), (6, 2))
    rows, values = sparse_optim._sorted_rows(messy)
    assert rows.tolist() == [0, 1, 4] and values.tolist() == [[6.0, 7.0], [2.0, 3.0], [4.0, 6.0]]
    for sparse in (grad, messy):
        w0 = torch.randn(sparse.shape, generator=g, dtype=torch.float64)
        wl, wd_ = w0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
        wl.grad, wd_.grad = sparse.double(), sparse.double().to_dense()
        lazy = LazySGD([wl], lr=0.3, momentum=0.9, weight_decay=0.01)
        lazy.step()
        lazy.flush()  # the rows without gradient decay too under dense SGD
        torch.optim.SGD([wd_], lr=0.3, momentum=0.9, weight_decay=0.01).step()
        torch.testing.assert_close(wl, wd_, rtol=0, atol=1e-12)


def test_validation():
    w = torch.zeros(3, 2, requires_grad=True)
    for kwargs, name in (
        ({"lr": 0.0}, "lr"),
        ({"lr": 0.1, "momentum": 1.0}, "momentum"),
        ({"lr": 0.1, "momentum": -0.1}, "momentum"),
        ({"lr": 0.1, "weight_decay": -1.0}, "weight_decay"),
        ({"lr": 0.1, "nesterov": True}, "nesterov"),
    ):
        with pytest.raises(ValueError, match=name):
            LazySGD([w], **kwargs)
    opt = LazySGD([w], lr=0.1)
    w.grad = torch.sparse_coo_tensor(torch.zeros(2, 1, dtype=torch.long), torch.ones(1), (3, 2), check_invariants=True)
    with pytest.raises(ValueError, match="sparse_dim"):
        opt.step()


def test_block_rows_follow_the_device():
    """2**18 elements a block on the CPU, 2**24 on an accelerator (meta tensors: no memory, any device type)."""
    assert sparse_optim._block_rows(torch.zeros(100, 512)) == 512
    assert sparse_optim._block_rows(torch.empty(10**7, 512, device="meta")) == 2**15
    assert sparse_optim._block_rows(torch.empty(10, 2**25, device="meta")) == 1
