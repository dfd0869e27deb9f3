"""The bench machinery on a tiny synthetic suite (2 losses × 2 seeds, 3 steps each): the report's numbers equal those
computed here from each run's metrics.json / bench.json / history.jsonl; a restart trains nothing; a run whose
metrics.json (or checkpoint too) is gone is redone, in a child process (jobs = 2), with the same result."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from veriloss.bench import collect, load_scores, load_suite, plan_runs, run_all, run_state, suite_variants
from veriloss.bench.report import write_report
from veriloss.bench.runner import Variant
from veriloss.metrics import eer, tar_at_far
from veriloss.train.resume import config_changes

from .tiny import write_tiny_suite

FARS = (1e-2, 1e-3, 1e-4)  # 1,008 impostor pairs: 1e-4 is not measurable


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    variants = suite_variants(load_suite(write_tiny_suite(root)))
    specs = plan_runs(variants, 2, root / "out")
    lines: list[str] = []
    status = run_all(specs, jobs=1, threads=1, far=FARS, echo=lines.append)
    return variants, specs, status, lines


def _metrics(spec) -> dict:
    return json.loads((spec.dir / "metrics.json").read_text())["systems"][0]


def _stat(values):
    return float(np.mean(values)), float(np.std(values, ddof=1))


def test_every_run_trains_once_seed_major(bench):
    variants, specs, status, lines = bench
    assert [v.name for v in variants] == ["arcface", "qmargin"]
    assert [(s.variant, s.seed) for s in specs] == [("arcface", 0), ("qmargin", 0), ("arcface", 1), ("qmargin", 1)]
    assert set(status.values()) == {"finished"} and set(status) == {s.dir for s in specs}
    for spec in specs:
        assert run_state(spec) == "finished"
        record = _metrics(spec)
        assert record["steps"] == 3 and record["n_impostor"] == 1008 and record["n_genuine"] == 120
        saved = json.loads((spec.dir / "bench.json").read_text())
        assert saved["config"]["seed"] == spec.seed and saved["config"]["loss"]["name"] == spec.variant
        assert [s["status"] for s in saved["sessions"]] == ["finished"]
    assert sum("training" in line for line in lines) == 4
    a0, a1 = (_metrics(s)["eer"] for s in specs if s.variant == "arcface")
    assert a0 != a1  # seeds differ


def test_report_mean_and_std_equal_the_runs(bench, tmp_path):
    variants, specs, _, _ = bench
    doc = collect(variants, specs, FARS, {"title": "tiny"})
    for v in doc["variants"]:
        runs = [s for s in specs if s.variant == v["name"]]
        records = [_metrics(s) for s in runs]
        s = v["summary"]
        assert (s["finished"], s["planned"]) == (2, 2)
        assert (s["eer"]["mean"], s["eer"]["std"]) == pytest.approx(_stat([r["eer"] for r in records]), abs=1e-15)
        for cell, f in zip(s["tar_at_far"], FARS):
            rows = [next(t for t in r["tar_at_far"] if t["far"] == f) for r in records]
            if f == 1e-4:
                assert not cell["measurable"] and cell["n"] == 0 and cell["mean"] is None
                continue
            assert cell["measurable"] and cell["n"] == 2
            assert (cell["mean"], cell["std"]) == pytest.approx(_stat([t["tar"] for t in rows]), abs=1e-15)
            assert cell["impostors_admitted"] == sorted({t["impostors_admitted"] for t in rows})
            assert max(cell["impostors_admitted"]) <= int(f * 1008)
        assert [r["precision"] for r in v["runs"]] == [r["precision"] for r in records]
        walls = [sum(x["seconds"] for x in json.loads((r.dir / "bench.json").read_text())["sessions"]) for r in runs]
        assert s["wall_seconds"]["mean"] == pytest.approx(np.mean(walls), rel=1e-12)
        if v["name"] == "qmargin":
            a = s["alpha"]
            for key in ("support_size", "py_zero"):
                expect = _stat([r[f"train_{key}_mean"] for r in records])
                assert (a[f"{key}_mean"]["mean"], a[f"{key}_mean"]["std"]) == pytest.approx(expect, abs=1e-12)
            # one epoch = 96 / 16 = 6 steps > 3: first and last epoch are the whole run, i.e. the training mean
            assert a["py_zero_first_epoch"]["values"] == pytest.approx(a["py_zero_mean"]["values"], abs=1e-12)
        else:
            assert "alpha" not in s
    md_path, json_path, det_path = write_report(tmp_path, doc, specs)
    md = md_path.read_text()
    q = next(v for v in doc["variants"] if v["name"] == "qmargin")["summary"]
    e = q["eer"]
    assert f"| qmargin | alpha=1.5, s=8.0, m=0.5 | 2/2 | {100 * e['mean']:.2f} ± {100 * e['std']:.2f} |" in md
    assert "| steps | precision | wall min |" in md and f"| {records[0]['precision']} |" in md
    assert "not measurable" in md and "1,008" in md and "![DET curves of every variant](det.png)" in md
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(doc))
    assert det_path.name == "det.png" and det_path.read_bytes()[:4] == b"\x89PNG"


def test_scores_of_each_run_reproduce_its_metrics(bench):
    _, specs, _, _ = bench
    for spec in specs:
        genuine, impostor = load_scores(spec.dir / "scores.npz")
        record = _metrics(spec)
        assert eer(genuine, impostor).eer == pytest.approx(record["eer"], abs=1e-12)
        for t in tar_at_far(genuine, impostor, list(FARS)):
            saved = next(x for x in record["tar_at_far"] if x["far"] == t.far_target)
            assert t.measurable == saved["measurable"]
            if t.measurable:
                assert t.tar == saved["tar"] and t.impostors_admitted == saved["impostors_admitted"]


def test_restart_trains_nothing_and_redoes_missing_runs(bench):
    _, specs, _, _ = bench
    stamps = {s.dir: (s.dir / "metrics.json").stat().st_mtime_ns for s in specs}
    ckpts = {s.dir: (s.dir / "checkpoint.pt").stat().st_mtime_ns for s in specs}
    before = {s.dir: _metrics(s) for s in specs}
    lines: list[str] = []
    assert run_all(specs, jobs=1, threads=1, far=FARS, echo=lines.append) == {}
    assert "4 finished, 0 to do" in lines[0]
    assert {s.dir: (s.dir / "metrics.json").stat().st_mtime_ns for s in specs} == stamps
    assert {s.dir: (s.dir / "checkpoint.pt").stat().st_mtime_ns for s in specs} == ckpts

    resumed = next(s for s in specs if (s.variant, s.seed) == ("arcface", 1))  # checkpoint says finished
    retrained = next(s for s in specs if (s.variant, s.seed) == ("qmargin", 1))  # nothing left: from scratch
    (resumed.dir / "metrics.json").unlink()
    (retrained.dir / "metrics.json").unlink()
    (retrained.dir / "checkpoint.pt").unlink()
    assert (run_state(resumed), run_state(retrained)) == ("partial", "new")
    status = run_all(specs, jobs=2, threads=1, far=FARS, echo=lines.append)  # child processes
    assert status == {resumed.dir: "finished", retrained.dir: "finished"}
    for spec in specs:
        if spec.dir in status:
            assert (spec.dir / "metrics.json").stat().st_mtime_ns > stamps[spec.dir]
        else:
            assert (spec.dir / "metrics.json").stat().st_mtime_ns == stamps[spec.dir]
        after = _metrics(spec)
        assert after["eer"] == pytest.approx(before[spec.dir]["eer"], abs=1e-12)  # deterministic training
        assert after["tar_at_far"] == before[spec.dir]["tar_at_far"]
    sessions = json.loads((retrained.dir / "bench.json").read_text())["sessions"]
    assert [(s["status"], s["threads"], s["start_step"]) for s in sessions] == [("finished", 1, 0)] * 2
    rows = [json.loads(x) for x in (retrained.dir / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # the stale history of the dropped run was not kept


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_result(bench, tmp_path, monkeypatch):
    from veriloss.train import Trainer

    variants, specs, _, _ = bench
    (spec,) = plan_runs(variants[:1], 1, tmp_path)  # arcface seed 0, as in the bench, in another folder
    reference = _metrics(specs[0])
    original = Trainer._train_step

    def ctrl_c_after_step_2(self, x, y):
        out = original(self, x, y)
        if self.step == 1:  # the trainer's own SIGINT handler: checkpoint after this step, then stop
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "_train_step", ctrl_c_after_step_2)
    lines: list[str] = []
    assert run_all([spec], jobs=1, threads=1, far=FARS, echo=lines.append) == {spec.dir: "interrupted"}
    assert run_state(spec) == "partial" and not (spec.dir / "metrics.json").exists()
    monkeypatch.setattr(Trainer, "_train_step", original)
    assert run_all([spec], jobs=1, threads=1, far=FARS, echo=lines.append) == {spec.dir: "finished"}
    assert "resuming" in lines[-2]
    sessions = json.loads((spec.dir / "bench.json").read_text())["sessions"]
    assert [(s["status"], s["start_step"], s["end_step"]) for s in sessions] == [
        ("interrupted", 0, 2),
        ("finished", 2, 3),
    ]
    resumed = _metrics(spec)
    assert resumed["eer"] == reference["eer"] and resumed["tar_at_far"] == reference["tar_at_far"]


def test_a_folder_with_another_config_is_refused(bench):
    variants, specs, _, _ = bench
    v = variants[0]
    other = Variant(v.name, {**v.config, "max_steps": 4}, v.columns)
    (spec,) = [s for s in plan_runs([other], 1, specs[0].dir.parents[1])]
    with pytest.raises(ValueError, match=r"different config \(max_steps: 3 there, 4 now\)"):
        run_state(spec)
    with pytest.raises(ValueError, match="different config"):
        run_all([spec], jobs=1, threads=1, far=FARS, echo=lambda _m: None)


def test_the_data_root_compares_as_the_folder_it_names(tmp_path, monkeypatch):
    (tmp_path / "data" / "omniglot").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    config = {"data": {"name": "omniglot", "root": "../data/omniglot"}, "seed": 1}
    absolute = {"data": {"name": "omniglot", "root": str(tmp_path / "data" / "omniglot")}, "seed": 1}
    assert config_changes(config, absolute) == {} and config["data"]["root"] == "../data/omniglot"  # inputs untouched
    assert config_changes(config, {**absolute, "seed": 2}) == {"seed": (1, 2)}
    other = {"data": {"name": "omniglot", "root": "../data/other"}, "seed": 1}
    assert config_changes(config, other) == {"data.root": ("../data/omniglot", "../data/other")}


def test_bad_arguments():
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        plan_runs([Variant("a", {"loss": {"name": "softmax"}})], 0, "out")
    with pytest.raises(ValueError, match="unique"):
        plan_runs([Variant("a", {}), Variant("a", {})], 1, "out")
    with pytest.raises(ValueError, match="first_seed must be a non-negative integer"):
        plan_runs([Variant("a", {})], 1, "out", first_seed=-1)


def test_first_seed_shifts_seeds_and_folders():
    variants = [Variant("a", {"seed": 7}), Variant("b", {})]
    specs = plan_runs(variants, 2, "out", first_seed=3)
    assert [(s.variant, s.seed, s.dir.name, s.config["seed"]) for s in specs] == [
        ("a", 3, "seed3", 3),
        ("b", 3, "seed3", 3),
        ("a", 4, "seed4", 4),
        ("b", 4, "seed4", 4),
    ]
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_all([], jobs=0, threads=1, far=FARS)
