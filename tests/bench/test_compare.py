"""Paired comparison with a baseline: on synthetic per-replicate arrays (a system against itself is level with a zero
interval; a clearly better one is ahead, a worse one behind; EER's sign is reversed), and end to end on a tiny bench
whose runs write bootstrap.npz with common draws and whose report carries the comparison."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from veriloss.bench import collect, load_suite, plan_runs, run_all, suite_variants
from veriloss.bench.bootstrap import BOOTSTRAP_NAME, RunBootstrap, load_bootstrap
from veriloss.bench.compare import compare_runs, paired_seed_interval, verdict
from veriloss.bench.report import report_markdown, write_report

from .tiny import write_tiny_suite

METRICS = ["tar@far=0.001", "eer"]


def _run(tar: np.ndarray, eer: np.ndarray, ids: int = 10, seed: int = 0) -> RunBootstrap:
    reps = np.stack([tar, eer])
    return RunBootstrap(tuple(METRICS), reps.mean(axis=1), reps, np.arange(ids), seed, 0.95, "test", 100, 1000)


def _noise(seed: int, loc: float, r: int = 500) -> np.ndarray:
    return loc + 0.01 * np.random.default_rng(seed).normal(size=r)


def test_a_system_against_itself_is_level_with_a_zero_interval():
    runs = {s: _run(_noise(s, 0.8), _noise(10 + s, 0.05)) for s in range(3)}
    doc = compare_runs({"base": runs, "same": dict(runs)}, "base", METRICS)
    (entry,) = doc["entries"]
    assert entry["name"] == "same" and entry["seeds"] == [0, 1, 2]
    for m in METRICS:
        cell = entry["metrics"][m]
        assert (cell["difference"], cell["low"], cell["high"]) == (0.0, 0.0, 0.0)
        assert cell["verdict"] == "level" and cell["per_seed"] == {0: 0.0, 1: 0.0, 2: 0.0}


def test_a_clearly_better_system_is_ahead_and_a_worse_one_behind():
    base = {s: _run(_noise(s, 0.80), _noise(10 + s, 0.050)) for s in range(3)}
    better = {s: _run(base[s].replicates[0] + 0.05 + 0.002 * s, base[s].replicates[1] - 0.01) for s in range(3)}
    worse = {s: _run(base[s].replicates[0] - 0.03, base[s].replicates[1] + 0.02) for s in range(3)}
    doc = compare_runs({"base": base, "better": better, "worse": worse}, "base", METRICS)
    by = {e["name"]: e["metrics"] for e in doc["entries"]}
    tar, e = by["better"]["tar@far=0.001"], by["better"]["eer"]
    assert tar["verdict"] == "ahead" and tar["difference"] == pytest.approx(0.052) and 0.05 <= tar["low"] <= 0.052
    assert tar["per_seed"] == pytest.approx({0: 0.05, 1: 0.052, 2: 0.054})
    assert e["verdict"] == "ahead" and e["high"] == pytest.approx(-0.01)  # lower EER is better
    assert by["worse"]["tar@far=0.001"]["verdict"] == "behind" and by["worse"]["eer"]["verdict"] == "behind"


def test_interval_draws_seeds_and_needs_enough_defined_replicates():
    d = np.array([[1.0] * 100, [3.0] * 100])  # seed 0 differs by 1, seed 1 by 3 in every replicate
    low, high = paired_seed_interval(d)
    assert 1.0 <= low < 2.0 < high <= 3.0  # resampling the two seeds spreads the mean over [1, 3]
    d[:, :20] = np.nan  # undefined in 20% of the replicates: no interval
    assert all(math.isnan(x) for x in paired_seed_interval(d))
    assert verdict(0.1, 0.2, "eer") == "behind" and verdict(-0.2, 0.1, "tar@far=0.01") == "level"


def test_runs_drawn_over_other_identities_are_refused():
    base = {0: _run(_noise(0, 0.8), _noise(1, 0.05))}
    other = {0: _run(_noise(0, 0.8), _noise(1, 0.05), ids=11)}
    with pytest.raises(ValueError, match="other identities"):
        compare_runs({"base": base, "x": other}, "base", METRICS)
    with pytest.raises(ValueError, match="not a variant"):
        compare_runs({"base": base}, "cosface", METRICS)


def test_tiny_bench_writes_replicates_and_the_comparison(tmp_path):
    variants = suite_variants(load_suite(write_tiny_suite(tmp_path)))
    specs = plan_runs(variants, 2, tmp_path / "out")
    far = (1e-2,)
    status = run_all(specs, jobs=1, threads=1, far=far, echo=lambda _: None)
    assert set(status.values()) == {"finished"}
    boots = {(s.variant, s.seed): load_bootstrap(s.dir / BOOTSTRAP_NAME) for s in specs}
    first = next(iter(boots.values()))
    for b in boots.values():  # common random numbers: the same identities and draws for every run
        assert np.array_equal(b.identities, first.identities) and b.seed == first.seed and b.draws == 1000
        assert b.split == "test" and b.metrics == ("tar@far=0.01", "eer", "min_dcf@p=0.01")
    for spec in specs:  # the point estimates are the run's own metrics
        record = json.loads((spec.dir / "metrics.json").read_text())["systems"][0]
        b = boots[(spec.variant, spec.seed)]
        assert b.point[b.index("eer")] == pytest.approx(record["eer"], abs=1e-12)
    doc = collect(variants, specs, far, {"title": "tiny"}, baseline="arcface")
    comp = doc["comparison"]
    assert comp["baseline"] == "arcface" and comp["lacking"] == []
    (entry,) = comp["entries"]
    assert entry["name"] == "qmargin" and entry["seeds"] == [0, 1]
    cell = entry["metrics"]["eer"]
    diffs = [boots[("qmargin", s)].point[1] - boots[("arcface", s)].point[1] for s in (0, 1)]
    assert cell["per_seed"] == pytest.approx({"0": diffs[0], "1": diffs[1]})
    assert cell["difference"] == pytest.approx(np.mean(diffs))
    assert cell["low"] <= cell["high"] and cell["verdict"] in ("ahead", "level", "behind")
    write_report(tmp_path / "out", doc, specs)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Against the baseline: arcface" in md and "| qmargin | 0,1 |" in md
    assert json.loads((tmp_path / "out" / "report.json").read_text())["comparison"]["entries"][0]["name"] == "qmargin"
    # an older run without replicates: listed as lacking, and made again from its checkpoint on demand
    (specs[0].dir / BOOTSTRAP_NAME).unlink()
    lacking = collect(variants, specs, far, baseline="arcface")["comparison"]["lacking"]
    assert "arcface seed 0: no bootstrap.npz" in lacking
    lines: list[str] = []
    assert run_all(specs, jobs=1, threads=1, far=far, echo=lines.append, bootstrap=True) == {specs[0].dir: "finished"}
    assert any("bootstrapping" in line for line in lines)
    again = load_bootstrap(specs[0].dir / BOOTSTRAP_NAME)
    old = boots[("arcface", 0)]
    assert np.array_equal(again.identities, old.identities)  # same draws; scores equal to float rounding
    assert np.mean(np.isclose(again.replicates, old.replicates, atol=1e-6, equal_nan=True)) > 0.95
    assert "Against the baseline" in report_markdown(collect(variants, specs, far, baseline="arcface"))
