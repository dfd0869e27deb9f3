"""`veriloss bench losses|sweep` through the CLI: a tiny end-to-end bench and its restart, dry runs listing the
planned runs, and clear errors (exit status 2) for bad input."""

from __future__ import annotations

import json

import pytest

from veriloss.cli import main

from ..bench.tiny import write_tiny_suite


def test_bench_losses_end_to_end_and_restart(tmp_path, capsys):
    suite = write_tiny_suite(tmp_path)
    out = tmp_path / "out"
    args = ["bench", "losses", "--suite", str(suite), "--losses", "qmargin", "--seeds", "1", "--out", str(out)]
    assert main([*args, "--jobs", "1"]) == 0
    captured = capsys.readouterr()
    record = json.loads((out / "qmargin" / "seed0" / "metrics.json").read_text())["systems"][0]
    assert f"| qmargin | alpha=1.5, s=8.0, m=0.5 | 1/1 | {100 * record['eer']:.2f} |" in captured.out
    assert "[1/1] qmargin seed 0: training" in captured.err
    doc = json.loads((out / "report.json").read_text())
    assert [v["name"] for v in doc["variants"]] == ["qmargin"]
    assert doc["meta"]["command"].startswith("veriloss bench losses --suite ") and doc["meta"]["seeds"] == 1
    assert doc["meta"]["far"] == [1e-3, 1e-4, 1e-5, 1e-6]
    tar3 = next(t for t in record["tar_at_far"] if t["far"] == 1e-3)
    assert doc["variants"][0]["summary"]["tar_at_far"][0]["values"] == [tar3["tar"]]
    assert {p.name for p in out.iterdir()} == {"qmargin", "report.md", "report.json", "det.png"}
    stamp = (out / "qmargin" / "seed0" / "checkpoint.pt").stat().st_mtime_ns

    assert main(args) == 0  # restart: nothing to train, the same report
    assert "1 finished, 0 to do" in capsys.readouterr().err
    assert (out / "qmargin" / "seed0" / "checkpoint.pt").stat().st_mtime_ns == stamp
    assert json.loads((out / "report.json").read_text())["variants"] == doc["variants"]


def test_dry_runs_list_the_planned_runs(tmp_path, capsys):
    out = tmp_path / "b"
    args = ["bench", "losses", "--losses", "arcface,qmargin", "--seeds", "2", "--out", str(out), "--dry-run"]
    assert main(args) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("arcface", "seed 0", "new"),
        ("qmargin", "seed 0", "new"),
        ("arcface", "seed 1", "new"),
        ("qmargin", "seed 1", "new"),
    ]
    assert not out.exists()
    args = ["bench", "sweep", "--base", "omniglot_qmargin", "--grid", "loss.params.alpha=1.25,1.5,2"]
    args += ["--grid", "loss.params.s=8,16", "--set", "loss.params.m=0.35"]
    assert main([*args, "--out", str(out), "--dry-run", "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    names = [line.split("\t")[0] for line in captured.out.splitlines()]
    assert names == [f"alpha={a}_s={s}" for a in ("1.25", "1.5", "2") for s in (8, 16)][1:]
    assert "skipping grid point alpha=1.25_s=8: the margin m=0.35 gives κ=" in captured.err
    assert "5 runs; 2 job(s) × " in captured.err


@pytest.mark.parametrize(
    "args, match",
    [
        (["bench", "losses", "--losses", "arcface,arcfase"], "unknown loss(es) 'arcfase' in suite 'omniglot'"),
        (["bench", "losses", "--suite", "nope"], "neither a file nor a packaged suite"),
        (["bench", "losses", "--seeds", "0"], "seeds must be a positive integer"),
        (["bench", "losses", "--jobs", "0"], "--jobs must be ≥ 1"),
        (["bench", "sweep", "--base", "omniglot_qmargin", "--grid", "loss.params.alpha"], "--grid expects"),
        (["bench", "sweep", "--base", "omniglot_qmargin", "--grid", "loss.params.alpha=1.5,,2"], "empty value"),
        (["bench", "sweep", "--base", "omniglot_qmargin", "--grid", "loss.params.alpha=0.5"], "alpha must be ≥ 1"),
        (["bench", "sweep", "--base", "no_such", "--grid", "epochs=1"], "neither a file nor a packaged recipe"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, capsys, args, match):
    assert main([*args, "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("veriloss bench: error: ") and match in err
    assert not (tmp_path / "o").exists()


def test_bench_without_what_prints_help(capsys):
    assert main(["bench"]) == 2
    assert "losses" in capsys.readouterr().out
