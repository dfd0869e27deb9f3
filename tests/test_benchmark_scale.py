"""benchmarks/scale.py: the Partial FC-style sampled head against a float64 ArcFace on the sampled classes, its SGD
on the sampled rows, every configuration in-process at K = 2000, the table, the targets and the OOM prediction."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("_benchmark_scale", ROOT / "benchmarks" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def arcface_on_classes_f64(x, W, y, classes, s, m) -> float:
    """Mean over rows of −log softmax of ArcFace logits restricted to ``classes``, float64, row by row."""
    x, W = np.asarray(x, np.float64), np.asarray(W, np.float64)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    total = 0.0
    for i in range(x.shape[0]):
        logits = []
        for j in classes:
            w = W[j] / np.linalg.norm(W[j])
            c = min(1.0, max(-1.0, float(xn[i] @ w)))
            if j == y[i]:
                theta = math.acos(c)
                c = math.cos(theta + m) if theta + m <= math.pi else c - m * math.sin(m)  # insightface fallback
                target = s * c
            logits.append(s * c)
        top = max(logits)
        total += top + math.log(sum(math.exp(v - top) for v in logits)) - target
    return total / x.shape[0]


def test_sampled_head_loss_is_arcface_on_the_sampled_classes(scale):
    K, d, B = 2000, 16, 48
    torch.manual_seed(3)
    head = scale.SampledArcFace(d, K, s=64.0, m=0.5, generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, K, (B,))
    y[1] = y[0]  # a repeated positive
    x = torch.randn(B, d)
    x[2] = -3.0 * head.weight[y[2]]  # θ_y = π: the fallback branch of the margin
    index = head.sample(y)

    positives = set(y.tolist())
    chosen = index.tolist()
    assert chosen == sorted(set(chosen))
    assert positives <= set(chosen)
    assert len(chosen) == len(positives) + round(0.1 * (K - len(positives)))

    loss = head.loss(x, y, index, head.weight[index])
    ref = arcface_on_classes_f64(x.numpy(), head.weight.numpy(), y.tolist(), chosen, 64.0, 0.5)
    assert float(loss) == pytest.approx(ref, rel=1e-5, abs=1e-5)


def test_sampled_negatives_are_uniform(scale):
    """Over many draws every negative class is sampled with frequency ≈ 10 %."""
    K = 500
    head = scale.SampledArcFace(4, K, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2])
    counts = torch.zeros(K, dtype=torch.long)
    draws = 2000
    for _ in range(draws):
        counts[head.sample(y)] += 1
    assert torch.all(counts[:3] == draws)
    n_neg = round(0.1 * (K - 3))
    assert int(counts[3:].sum()) == draws * n_neg  # exactly that many distinct negatives per draw
    expected = n_neg / (K - 3)
    freq = counts[3:].double() / draws
    assert float((freq - expected).abs().max()) < 5 * math.sqrt(expected * (1 - expected) / draws)


def test_sampled_step_is_sgd_on_the_sampled_rows_only(scale):
    K, d, B = 300, 8, 20
    lr, mu, wd = 0.1, 0.9, 5e-4
    torch.manual_seed(5)
    head = scale.SampledArcFace(d, K, s=30.0, m=0.5, lr=lr, momentum=mu, weight_decay=wd)
    head.generator = torch.Generator().manual_seed(6)
    g = torch.Generator().manual_seed(7)
    for _ in range(2):  # the second step starts from a non-zero momentum
        x = torch.randn(B, d, generator=g).requires_grad_(True)
        y = torch.randint(0, K, (B,), generator=g)
        w0, b0 = head.weight.double().clone(), head.momentum_buffer.double().clone()
        rng = head.generator.get_state()
        index = head.sample(y)
        head.generator.set_state(rng)
        head.step(x, y)

        # reference: float64 ArcFace on the sampled rows, gradient by autograd, torch.optim.SGD's update on those rows
        sub = w0[index].clone().requires_grad_(True)
        xd = x.detach().double().requires_grad_(True)
        cos = (xd / xd.norm(dim=1, keepdim=True)) @ (sub / sub.norm(dim=1, keepdim=True)).t()
        position = {c: i for i, c in enumerate(index.tolist())}
        local = torch.tensor([position[v] for v in y.tolist()])
        rows = torch.arange(B)
        theta = torch.acos(cos[rows, local].clamp(-1, 1))
        target = torch.where(theta + 0.5 <= math.pi, torch.cos(theta + 0.5), cos[rows, local] - 0.5 * math.sin(0.5))
        z = 30.0 * cos.clone()
        z[rows, local] = 30.0 * target
        loss = (torch.logsumexp(z, dim=1) - z[rows, local]).mean()
        gw, gx = torch.autograd.grad(loss, [sub, xd])
        b = mu * b0[index] + gw + wd * w0[index]
        w_expected = w0.clone()
        w_expected[index] = w0[index] - lr * b
        b_expected = b0.clone()
        b_expected[index] = b
        torch.testing.assert_close(head.weight.double(), w_expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(head.momentum_buffer.double(), b_expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(x.grad.double(), gx, rtol=1e-4, atol=1e-6)
        untouched = torch.ones(K, dtype=torch.bool)
        untouched[index] = False
        assert torch.equal(head.weight.double()[untouched], w0[untouched])


def test_every_head_in_process_and_the_table(scale):
    K, d, B = 2000, 64, 64
    results = [scale.run_one(h, K, steps=1, warmup=0, d=d, B=B, chunk_size=512) for h in scale.HEADS]
    kd = K * d * 4
    expected_state = {"arcface": 2 * kd, "qmargin": 2 * kd, "qmargin-stream": 2 * kd + 8 * K, "partialfc": 2 * kd}
    for r in results:
        assert r["state"] == expected_state[r["head"]]  # W + momentum (+ LazySGD's per-row step counter)
        assert r["time"] > 0 and r["peak"] >= r["baseline"] > 0 and math.isfinite(r["loss"])
    by = {r["head"]: r for r in results}
    # same W (same seed), same first batch: the dense and the streaming α head give the same loss
    assert by["qmargin-stream"]["losses"][0] == pytest.approx(by["qmargin"]["losses"][0], rel=1e-5)
    assert by["qmargin"]["support_size"] == pytest.approx(by["qmargin-stream"]["support_size"])

    md = scale.format_table(results, markdown=True).splitlines()
    assert len(md) == 2 + len(scale.HEADS)  # header, separator, one row per head
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in md[2:]]
    assert [c[0] for c in cells] == list(scale.HEADS)
    assert all(c[1] == "2e+03" for c in cells)
    assert cells[0][3] == "1.00"  # ArcFace against itself
    for c, r in zip(cells, results):
        assert float(c[2]) == pytest.approx(r["time"] * 1e3, abs=0.5)
        assert float(c[3]) == pytest.approx(r["time"] / by["arcface"]["time"], abs=0.005)
    text = scale.format_table(results, markdown=False).splitlines()
    assert len(text) == 1 + len(scale.HEADS) and text[0].split()[0] == "head"


def _row(head, K, time, state, extra):
    return {"head": head, "K": K, "time": time, "state": state, "extra": extra, "predicted": 0.0, "peak": 0}


def test_targets(scale):
    K = 1_000_000
    ok = scale.check_targets([_row("arcface", K, 4.0, 1, 0), _row("qmargin-stream", K, 2.0, 1000, 100)])
    assert ok[0].endswith("PASS") and "0.50" in ok[0] and ok[1].endswith("PASS") and "10.0%" in ok[1]
    bad = scale.check_targets([_row("arcface", K, 4.0, 1, 0), _row("qmargin-stream", K, 2.1, 1000, 101)])
    assert bad[0].endswith("FAIL") and bad[1].endswith("FAIL")
    only = scale.check_targets([{**_row("arcface", K, 4.0, 1, 0), "error": "OOM"}, _row("qmargin-stream", K, 1, 10, 0)])
    assert "not checked" in only[0] and only[1].endswith("PASS")
    assert "not checked" in scale.check_targets([_row("arcface", K, 4.0, 1, 0)])[0]


def test_oom_is_predicted_not_run(scale):
    GB = 1e9
    # W alone is K·d·4 bytes; dense training holds several K×d and B×K arrays
    assert scale.predicted_peak("arcface", 2_000_000) > 6 * 2_000_000 * 512 * 4
    assert scale.predicted_peak("arcface", 4_000_000) > 24 * GB
    assert scale.predicted_peak("qmargin", 4_000_000) > 24 * GB
    assert 2 * 4_000_000 * 512 * 4 < scale.predicted_peak("qmargin-stream", 4_000_000) < 20 * GB
    assert scale.plan("qmargin-stream", 2000, 1e3).startswith("OOM (predicted ")
    args = scale.parse_args(["--mem-limit-gb", "0.001"])
    row = scale.run_config("arcface", 4_000_000, args)  # refused before any process or allocation
    assert row["error"] == f"OOM (predicted {scale.predicted_peak('arcface', 4_000_000) / GB:.1f} GB)"
    assert "OOM (predicted" in scale.format_table([row])


def test_a_child_past_the_memory_limit_fails_alone(scale, monkeypatch):
    """The child's RLIMIT_AS turns an underestimated prediction into an allocation error of that child only."""
    monkeypatch.setattr(scale, "plan", lambda *a, **k: None)  # pretend the prediction let it through
    args = scale.parse_args(["--mem-limit-gb", "1.0", "--steps", "1", "--threads", "1"])
    row = scale.run_config("arcface", 400_000, args)  # W alone is 0.8 GB, a step needs several times that
    assert row["error"].startswith("OOM (RLIMIT_AS 1 GB)")


def test_command_line_runs_a_child_process(scale, tmp_path, capsys):
    out = tmp_path / "scale.json"
    scale.main(["--k", "2000", "--heads", "partialfc", "--steps", "1", "--threads", "1", "--json", str(out)])
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 1 and "error" not in rows[0]
    assert rows[0]["head"] == "partialfc" and rows[0]["K"] == 2000 and rows[0]["threads"] == 1
    assert rows[0]["state"] == 2 * 2000 * 512 * 4
    assert "partialfc" in capsys.readouterr().out
