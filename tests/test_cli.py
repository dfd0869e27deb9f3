"""The `veriloss` command: `losses` lists everything registered; `demo` trains, evaluates and writes a report."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_demo_rejects_bad_overrides(capsys, tmp_path):
    assert main(["demo", "--quick", "--out", str(tmp_path), "--set", "loss.name=bogus"]) == 2
    assert "unknown loss 'bogus'" in capsys.readouterr().err


def test_quick_demo_trains_evaluates_and_writes_a_report(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    (metrics,) = json.loads((tmp_path / "metrics.json").read_text())["systems"]
    tar = {t["far"]: t for t in metrics["tar_at_far"]}
    n = 20 * 8
    assert metrics["n_embeddings"] == n and metrics["n_genuine"] == 20 * 8 * 7 // 2
    assert metrics["n_genuine"] + metrics["n_impostor"] == n * (n - 1) // 2
    assert 0.0 <= metrics["eer"] <= 0.5
    assert tar[1e-6]["tar"] is None and not tar[1e-6]["measurable"]  # 12,160 impostors: FAR 1e-6 not measurable
    assert tar[1e-3]["measurable"] and 0.0 <= tar[1e-3]["tar"] <= 1.0
    assert f"| {100 * metrics['eer']:.3f} |" in out
    assert "not measurable" in out
    assert metrics["train_support_size_mean"] >= 1.0  # the demo's loss is A3M-I
    for name in ("checkpoint.pt", "curves.png", "roc.png", "det.png", "hist.png", "metrics.md", "history.jsonl"):
        assert (tmp_path / name).stat().st_size > 0
    assert not list(tmp_path.glob("*.tmp*"))
