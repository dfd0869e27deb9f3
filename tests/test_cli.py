"""The ``veriloss`` command: ``losses`` lists everything registered; ``demo`` trains, evaluates and writes its report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from veriloss import heads, pairwise
from veriloss.cli import main

ISSUE_HEADS = {
    "softmax", "l2softmax", "normface", "coco", "lsoftmax", "sphereface", "cosface", "arcface", "combined",
    "elasticface-arc", "elasticface-cos", "elasticface-arc+", "elasticface-cos+", "sface", "harmonic",
    "alpha", "qmargin", "a3m", "a3m-i",
}  # fmt: skip
ISSUE_PAIRWISE = {"contrastive", "marginal", "triplet", "tse", "tpe", "center", "center-invariant", "range"}


def test_every_loss_of_the_spec_is_registered():
    assert set(heads.available()) == ISSUE_HEADS
    assert set(pairwise.available()) == ISSUE_PAIRWISE
    assert heads.aliases()["amsoftmax"] == "cosface"


def test_losses_lists_every_loss_with_parameters_defaults_and_reference(capsys):
    assert main(["losses"]) == 0
    out = capsys.readouterr().out
    for name in ISSUE_HEADS | ISSUE_PAIRWISE:
        assert f"\n{name}\n" in out or f"\n{name} (alias" in out
    assert "parameters: alpha=1.5, s=16.0, m=None, kappa=None" in out  # qmargin
    assert "overflow='fallback'" in out
    assert out.count("reference:") == len(ISSUE_HEADS | ISSUE_PAIRWISE)


def test_losses_json_and_single_entry(capsys):
    assert main(["losses", "amsoftmax", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["name"] == "cosface" and entry["parameters"] == {"s": 64.0, "m": 0.35}
    assert entry["reference"]


def test_unknown_loss_is_a_clean_error(capsys):
    assert main(["losses", "nope"]) == 2
    assert "unknown loss 'nope'" in capsys.readouterr().err


def test_console_script_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "veriloss.cli", "losses", "a3m-i"], capture_output=True, text=True, check=True
    ).stdout
    assert "re-initialization" in out


@pytest.mark.parametrize("bad", [["--losses", "softmax,bogus"]])
def test_demo_rejects_unknown_losses(bad, capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path), *bad]) == 2
    assert "bogus" in capsys.readouterr().err


def test_demo_small_run_writes_a_consistent_report(tmp_path, capsys):
    args = ["demo", "--train-identities", "40", "--test-identities", "30", "--samples", "8", "--steps", "60"]
    assert main([*args, "--losses", "softmax,a3m-i", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["loss"] for r in rows] == ["softmax", "a3m-i"]
    n = 30 * 8
    for r in rows:
        assert r["n_genuine"] == 30 * 8 * 7 // 2
        assert r["n_genuine"] + r["n_impostor"] == n * (n - 1) // 2
        assert 0.0 <= r["eer"] <= 0.5
        assert r["tar"]["1e-06"] is None  # 27,840 impostors: FAR 1e-6 is not measurable
        assert 0.0 <= r["tar"]["0.001"] <= 1.0
    assert rows[1]["support_size"] >= 1.0 and 0.0 <= rows[1]["py_zero"] <= 1.0
    md = (tmp_path / "metrics.md").read_text()
    assert "| a3m-i |" in md and "n/a" in md
    assert not list(tmp_path.glob("*.tmp"))
