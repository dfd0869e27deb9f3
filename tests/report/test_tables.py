"""Metrics records and tables: values against brute force from the definitions, markdown and strict JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from veriloss.metrics import auc, eer, min_dcf, tar_at_far
from veriloss.protocols import all_pairs
from veriloss.report.tables import metrics_json, metrics_markdown, system_metrics, write_metrics


def _brute_tar(g, imp, f):
    """max TAR over thresholds t ∈ scores ∪ {+inf} with #{imp ≥ t} ≤ ⌊f·N⌋ (f·N ≥ 1), and the admitted count."""
    k = math.floor(f * len(imp) + 1e-9)
    best = (0.0, 0)
    for t in [*sorted(set(g) | set(imp)), math.inf]:
        fa = sum(x >= t for x in imp)
        if fa <= k:
            tar = sum(x >= t for x in g) / len(g)
            if tar > best[0]:
                best = (tar, fa)
    return best


def _brute_min_dcf(g, imp, p):
    best = math.inf
    for t in [*sorted(set(g) | set(imp)), math.inf]:
        pm = sum(x < t for x in g) / len(g)
        pf = sum(x >= t for x in imp) / len(imp)
        best = min(best, (pm * p + pf * (1 - p)) / min(p, 1 - p))
    return best


@pytest.fixture
def scores():
    rng = np.random.default_rng(3)
    g = np.round(rng.normal(1.5, 1.0, 300), 2)  # rounded: many ties
    imp = np.round(rng.normal(0.0, 1.0, 2500), 2)
    return g, imp


def test_record_values_match_brute_force(scores):
    g, imp = scores
    fars = [1e-4, 1e-3, 0.01, 0.1]
    r = system_metrics("sys", g, imp, far=fars, p_targets=(0.01, 0.05))
    assert (r["name"], r["n_genuine"], r["n_impostor"]) == ("sys", 300, 2500)
    assert r["eer"] == eer(g, imp).eer and r["auc"] == auc(g, imp)
    gl, il = g.tolist(), imp.tolist()
    assert r["auc"] == pytest.approx(np.mean([(a > b) + 0.5 * (a == b) for a in gl for b in il]), abs=1e-12)
    for m, p in zip(r["min_dcf"], (0.01, 0.05)):
        assert m["p_target"] == p and m["min_dcf"] == pytest.approx(_brute_min_dcf(gl, il, p), abs=1e-12)
        assert m["min_dcf"] == min_dcf(g, imp, p).min_dcf
    t0 = r["tar_at_far"][0]  # 1e-4 · 2500 < 1
    assert t0 == {
        "far": 1e-4,
        "measurable": False,
        "tar": None,
        "threshold": None,
        "k": 0,
        "impostors_admitted": None,
        "far_achieved": None,
        "genuine_accepted": None,
        "impostors_needed": 10000,
    }
    for t, f in zip(r["tar_at_far"][1:], fars[1:]):
        tar, fa = _brute_tar(gl, il, f)
        assert t["measurable"] and t["tar"] == pytest.approx(tar, abs=1e-12) and t["impostors_admitted"] == fa
        assert t["k"] == math.floor(f * 2500 + 1e-9) and t["impostors_admitted"] <= t["k"]
        assert t["genuine_accepted"] == round(tar * 300) and t["far_achieved"] == fa / 2500
        direct = tar_at_far(g, imp, f)
        assert t["threshold"] == direct.threshold


def _table(md: str) -> list[list[str]]:
    rows = [line for line in md.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line[1:-1].split(" | " if " " in line else "|")] for line in rows]


def test_markdown_rows_and_columns(scores):
    g, imp = scores
    a = system_metrics("a|b", g, imp, far=[1e-4, 0.01], p_targets=(0.01,))
    b = system_metrics("b", g + 0.5, imp[:500], far=[0.01, 0.1], p_targets=(0.01,), extra={"note": "x"})
    md = metrics_markdown([a, b], title="two systems")
    assert md.startswith("## two systems\n")
    head, sep, ra, rb = _table(md)
    assert head == [
        "system", "genuine", "impostor", "EER %", "minDCF p=0.01", "AUC",
        "TAR@FAR=1e-4 %", "TAR@FAR=0.01 %", "TAR@FAR=0.1 %",
    ]  # fmt: skip
    assert sep[0] == "---" and all(c == "---:" for c in sep[1:])
    assert ra[0] == "a\\|b" and ra[1:3] == ["300", "2,500"]
    assert ra[3] == f"{100 * eer(g, imp).eer:.3f}" and ra[4] == f"{min_dcf(g, imp).min_dcf:.4f}"
    t = tar_at_far(g, imp, 0.01)
    assert ra[6:] == ["not measurable", f"{100 * t.tar:.2f} ({t.impostors_admitted})", ""]
    tb = tar_at_far(g + 0.5, imp[:500], [0.01, 0.1])
    assert rb[6:] == ["", *(f"{100 * x.tar:.2f} ({x.impostors_admitted})" for x in tb)]
    assert len(_table(metrics_markdown(a))) == 3  # one record: header, separator, one row
    assert "not measurable" in md and "FAR·N < 1" in md


def test_fold_accuracy_column(scores):
    g, imp = scores
    fa = {"mean": 0.9912, "std": 0.0031, "standard_error": 0.001, "accuracies": [0.99] * 10}
    r = system_metrics("lfw", g, imp, far=[0.01], extra={"fold_accuracy": fa})
    head, _, row = _table(metrics_markdown(r))
    assert head[-1] == "10-fold acc %" and row[-1] == "99.12 ± 0.31"


def test_json_is_strict_and_round_trips():
    g, imp = np.array([0.0, 1.0]), np.array([2.0, 3.0, 4.0])  # best minDCF: reject everything (threshold +inf)
    r = system_metrics("s", g, imp, far=[0.5], p_targets=(0.01,))
    assert r["min_dcf"][0]["threshold"] is None and r["min_dcf"][0]["min_dcf"] == 1.0
    text = metrics_json([r], meta={"far": [0.5], "inf": math.inf})

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads(text, parse_constant=no_constants)
    assert doc["meta"] == {"far": [0.5], "inf": None}
    assert doc["systems"] == [json.loads(json.dumps(r))]


def test_write_metrics_is_atomic_and_complete(tmp_path, scores):
    g, imp = scores
    r = system_metrics("x", g, imp, far=[0.01])
    md, js = write_metrics(tmp_path / "out", [r], title="T", meta={"k": 1})
    assert md.read_text() == metrics_markdown([r], "T") and js.read_text() == metrics_json([r], {"k": 1})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json", "metrics.md"]


def test_record_from_all_pairs_summary_equals_the_protocol():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(240, 8, generator=gen), torch.arange(240) // 4
    fars, ps = [1e-4, 1e-3, 1e-2], (0.01, 0.05)
    res = all_pairs(x, y, far=fars, p_targets=ps)
    r = system_metrics("ap", res.genuine, res.impostor, far=fars, p_targets=ps)
    assert r["n_impostor"] == res.n_impostor and r["eer"] == res.eer.eer and r["auc"] == res.auc
    assert [m["min_dcf"] for m in r["min_dcf"]] == [m.min_dcf for m in res.min_dcf]
    assert [t["tar"] for t in r["tar_at_far"]] == [t.tar for t in res.tar]


def test_bad_input(scores):
    g, imp = scores
    with pytest.raises(ValueError, match=r"far must be in the open interval \(0, 1\)"):
        system_metrics("x", g, imp, far=[0.01, 1.0])
    with pytest.raises(ValueError, match="impostor is empty"):
        system_metrics("x", g, [])
    with pytest.raises(ValueError, match="systems is empty"):
        metrics_markdown([])
