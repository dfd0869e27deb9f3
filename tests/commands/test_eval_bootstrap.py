"""``veriloss eval --bootstrap``: intervals beside each value in metrics.json / metrics.md, drawn on the plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from veriloss.cli import main


def _embeddings(tmp_path):
    rng = np.random.default_rng(0)
    lab = np.repeat(np.arange(15), 4)
    x = (rng.normal(size=(60, 8)) + 2 * rng.normal(size=(15, 8))[lab]).astype(np.float32)
    np.save(tmp_path / "emb.npy", x)
    np.save(tmp_path / "emb.labels.npy", lab)
    return tmp_path / "emb.npy"


def test_all_pairs_bootstrap_json_and_markdown(tmp_path, capsys):
    path = _embeddings(tmp_path)
    out = tmp_path / "rep"
    argv = ["eval", "embeddings", str(path), "--protocol", "all-pairs", "--far", "1e-2,1e-1", "--out", str(out)]
    rc = main([*argv, "--bootstrap", "60", "--level", "0.9", "--bootstrap-seed", "3"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "metrics.json").read_text())
    rec = doc["systems"][0]
    assert doc["meta"]["bootstrap"] == {"replicates": 60, "level": 0.9, "seed": 3}
    assert rec["bootstrap"]["n_identities"] == 15
    assert rec["eer_ci"]["low"] <= rec["eer"] <= rec["eer_ci"]["high"]
    for t in rec["tar_at_far"]:
        assert t["ci"]["low"] <= t["tar"] <= t["ci"]["high"]
        assert t["ci"]["impostors"] == t["k"]
    for m in rec["min_dcf"]:
        assert m["ci"]["low"] <= m["min_dcf"] <= m["ci"]["high"]
    md = (out / "metrics.md").read_text()
    assert f"{100 * rec['eer']:.3f} [{100 * rec['eer_ci']['low']:.3f}, {100 * rec['eer_ci']['high']:.3f}]" in md
    assert "90% subject-bootstrap intervals (60 replicates over 15 identities" in md
    assert (out / "roc.png").is_file() and (out / "det.png").is_file()
    capsys.readouterr()
    assert main([*argv, "--no-plots"]) == 0  # off by default: no interval fields
    assert "eer_ci" not in json.loads((out / "metrics.json").read_text())["systems"][0]


def test_trials_bootstrap(tmp_path, capsys):
    rng = np.random.default_rng(1)
    lines, scores = [], []
    for i in range(6):
        for j in range(6):
            lines.append(f"{int(i == j)} id{i}/u1.wav id{j}/u2.wav")
            scores.append(rng.normal(2.0 if i == j else 0.0))
    (tmp_path / "trials.txt").write_text("\n".join(lines) + "\n")
    np.save(tmp_path / "s.npy", np.array(scores))
    out = tmp_path / "rep"
    argv = ["eval", "scores", "--scores", str(tmp_path / "s.npy"), "--trials", str(tmp_path / "trials.txt")]
    rc = main([*argv, "--far", "0.1", "--bootstrap", "40", "--no-plots", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((out / "metrics.json").read_text())["systems"][0]
    assert rec["bootstrap"]["n_identities"] == 6 and "ci" in rec["tar_at_far"][0]


@pytest.mark.parametrize(
    "extra, match",
    [(["--bootstrap", "-1"], "--bootstrap must be ≥ 0"), (["--bootstrap", "5", "--level", "1"], "--level must be")],
)
def test_bootstrap_option_errors(tmp_path, capsys, extra, match):
    path = _embeddings(tmp_path)
    rc = main(["eval", "embeddings", str(path), "--protocol", "all-pairs", "--out", str(tmp_path / "r"), *extra])
    assert rc != 0
    assert match in capsys.readouterr().err
