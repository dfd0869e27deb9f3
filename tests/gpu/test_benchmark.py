"""benchmarks/gpu.py: exit 0 with a message without CUDA, a CPU smoke run of both parts end to end (tiny sizes),
its Partial FC-style reference against ArcFace when every class is sampled, and a quick run on CUDA."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from veriloss import heads

from .conftest import CUDA, requires_cuda

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--quick", "--steps", "1", "--warmup", "1", "--k", "300", "--head-steps", "1", "--head-warmup", "1"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("_benchmark_gpu", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.skipif(CUDA, reason="a CUDA device is present: the benchmark would measure")
def test_without_cuda_nothing_is_measured(bench, capsys):
    assert bench.main([]) == 0
    assert capsys.readouterr().out.strip().startswith("no CUDA device: nothing measured")


def _check_tables(out: str, device: str) -> None:
    assert "| bare step (best) |" in out and "| Trainer (" in out and "trainer ÷ best bare step" in out
    for name in ("alpha-stream", "alpha-dense", "arcface", "partialfc"):
        assert f"| {name} | 300 |" in out
    assert "OOM" not in out and "failed" not in out
    if device == "cpu":
        assert "not meaningful" in out


def test_cpu_smoke_run(bench, capsys):
    assert bench.main(["--device", "cpu", *TINY]) == 0
    _check_tables(capsys.readouterr().out, "cpu")


@requires_cuda
def test_cuda_quick_run(bench, capsys):
    assert bench.main(TINY) == 0
    out = capsys.readouterr().out
    _check_tables(out, "cuda")
    assert "| n/a |" not in out  # peak memory measured on CUDA


def test_sampled_arcface_with_every_class_is_arcface(bench):
    """Sample rate 1: the sampled loss is ArcFace's, and its SGD on the sampled rows is torch's SGD on W."""
    torch.manual_seed(0)
    sampled = bench.SampledArcFace(8, 12, **bench.ARCFACE, sample_rate=1.0, device=torch.device("cpu"))
    head = heads.create("arcface", 8, 12, **bench.ARCFACE)
    head.weight.data.copy_(sampled.weight)
    opt = torch.optim.SGD(head.parameters(), lr=bench.LR, momentum=bench.MOMENTUM, weight_decay=bench.WEIGHT_DECAY)
    x, y = torch.randn(6, 8), torch.tensor([0, 3, 3, 7, 11, 5])
    for _ in range(2):
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        loss = sampled.step(xa, y)
        opt.zero_grad()
        ref = head(xb, y)
        ref.backward()
        opt.step()
        torch.testing.assert_close(loss, ref.detach(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(sampled.weight, head.weight.detach(), rtol=1e-5, atol=1e-6)
    rate_10 = bench.SampledArcFace(8, 100, 64.0, 0.5, 0.1, torch.device("cpu"))
    index = rate_10.sample(y)
    assert index.numel() == 10 and set(y.tolist()) <= set(index.tolist())  # r·K classes, the positives among them
