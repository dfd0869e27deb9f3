"""The streaming α heads (``chunk_size``) against the dense α heads at the same K on the device: K = 10⁶ classes
(d = 128, B = 64) on CUDA, K = 4096 on the CPU. Same W, same batch; the loss, the gradient of the embeddings, and the
gradient of W (the streaming head's sparse rows against the dense gradient's rows, every other dense row zero), in
float32 (the training dtype) and float64 (agreement to rounding). On CUDA the streaming step's peak memory on top of
what is allocated before it is also smaller than the dense step's (no B×K logits, no dense K×d gradient)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from veriloss import heads

from .conftest import requires_cuda

B, D = 64, 128
SIZES = [
    pytest.param("cpu", 4096, 1000, id="cpu-K4096"),
    pytest.param("cuda", 1_000_000, 65536, id="cuda-K1e6", marks=requires_cuda),
]
TOLERANCES = {torch.float32: (1e-4, 1e-5), torch.float64: (1e-9, 1e-11)}  # (rtol, atol × max(1, max |grad|))
PARAMS = {"alpha": {}, "qmargin": {"m": 0.35}}


def _data(k: int, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """W ~ N(0, 1) (K×d); half the samples near their prototype (target in the support), half random."""
    g = torch.Generator(device).manual_seed(0)
    w = torch.randn(k, D, generator=g, device=device, dtype=dtype)
    y = torch.randint(0, k, (B,), generator=g, device=device)
    x = torch.randn(B, D, generator=g, device=device, dtype=dtype)
    near = torch.arange(B, device=device) % 2 == 0
    x[near] = F.normalize(w[y[near]], dim=1) * 3 + 0.4 * x[near]
    return x, y, w


def _step(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Forward and backward; the loss, the embeddings' gradient and the peak memory above the start (CUDA)."""
    cuda = x.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
    xa = x.clone().requires_grad_(True)
    loss = head(xa, y)
    loss.backward()
    peak = torch.cuda.max_memory_allocated() - start if cuda else 0
    return loss.detach(), xa.grad, peak


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("device,k,chunk", SIZES)
@pytest.mark.parametrize("name", list(PARAMS))
def test_streaming_equals_dense_at_the_same_k(name, device, k, chunk, dtype):
    rtol, atol = TOLERANCES[dtype]
    x, y, w = _data(k, device, dtype)
    with torch.device(device):  # W straight on the device (10⁶×128 is not drawn on the host first)
        dense = heads.create(name, D, k, **PARAMS[name]).to(dtype)
        stream = heads.create(name, D, k, chunk_size=chunk, **PARAMS[name]).to(dtype)
    with torch.no_grad():
        dense.weight.copy_(w)
        stream.weight.copy_(w)
    del w

    loss_d, gx_d, peak_d = _step(dense, x, y)
    loss_s, gx_s, peak_s = _step(stream, x, y)

    assert torch.isfinite(loss_d) and loss_d > 0
    torch.testing.assert_close(loss_s, loss_d, rtol=rtol, atol=atol)
    torch.testing.assert_close(gx_s, gx_d, rtol=rtol, atol=atol * max(1.0, float(gx_d.abs().max())))
    gw_d, gw_s = dense.weight.grad, stream.weight.grad
    assert gw_s.is_sparse and not gw_d.is_sparse
    gw_s = gw_s.coalesce()
    rows, values = gw_s.indices()[0], gw_s.values()
    assert 0 < rows.numel() < k  # a few supports and targets, not W
    assert set(y.tolist()) <= set(rows.tolist())  # every target row gets a gradient
    scale = max(1.0, float(gw_d.abs().max()))
    torch.testing.assert_close(values, gw_d[rows], rtol=rtol, atol=atol * scale)
    outside = gw_d.index_fill(0, rows, 0.0)
    assert float(outside.abs().max()) <= atol * scale  # the dense gradient is zero off the streamed rows
    assert stream.statistics()["accuracy"] == dense.statistics()["accuracy"]
    if device == "cuda":
        assert peak_s < peak_d, f"streaming peak {peak_s / 2**20:.0f} MiB ≥ dense {peak_d / 2**20:.0f} MiB"
