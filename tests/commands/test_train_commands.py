"""`veriloss train`, `embed`, `export` and `eval` chained on a tiny synthetic run: each output feeds the next."""

from __future__ import annotations

import json

import numpy as np
import pytest

from veriloss.cli import main

from ..train.test_trainer import TINY

RUN = [*TINY, "loss.name=qmargin", "loss.params={alpha: 1.5, s: 8, m: 0.5}", "loss.reinit=null", "max_steps=6"]


def _train_args(out, *extra: str) -> list[str]:
    args = ["train", "demo", "--out", str(out), *extra]
    for item in RUN:
        args += ["--set", item]
    return args


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(_train_args(out)) == 0
    return out


def test_train_command_writes_a_finished_run(run_dir, capsys):
    (record,) = json.loads((run_dir / "metrics.json").read_text())["systems"]
    assert record["steps"] == 6 and record["name"] == "qmargin"
    capsys.readouterr()
    assert main(_train_args(run_dir, "--resume")) == 0  # a finished run: nothing to train, its table again
    assert f"{100 * record['eer']:.3f}" in capsys.readouterr().out


def test_embed_then_eval_reproduces_the_trainers_metrics(run_dir, tmp_path):
    out = tmp_path / "emb.npy"
    assert main(["embed", str(run_dir), "--data", "test", "--out", str(out)]) == 0
    emb, labels = np.load(out), np.load(tmp_path / "emb.labels.npy")
    assert emb.shape == (36, 16) and emb.dtype == np.float32 and labels.tolist() == sorted(labels.tolist())
    assert main(["eval", "embeddings", str(out), "--protocol", "all-pairs", "--out", str(tmp_path / "ev")]) == 0
    (ours,) = json.loads((tmp_path / "ev" / "metrics.json").read_text())["systems"]
    (trained,) = json.loads((run_dir / "metrics.json").read_text())["systems"]
    assert ours["n_genuine"] == trained["n_genuine"] and ours["n_impostor"] == trained["n_impostor"]
    assert ours["eer"] == pytest.approx(trained["eer"], abs=1e-12)
    assert ours["auc"] == pytest.approx(trained["auc"], abs=1e-12)


def test_embed_options_keep_the_embeddings(run_dir, tmp_path):
    """Loader workers and the memory layout change nothing beyond float rounding; bf16 autocast stays close and
    float32; bad values are one-line errors."""
    runs = {
        "plain": ["--no-channels-last"],
        "fast": ["--workers", "2", "--channels-last", "--device", "cpu"],
        "bf16": ["--bf16"],
    }
    emb = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.npy"
        assert main(["embed", str(run_dir), "--data", "test", "--out", str(out), "--batch-size", "8", *extra]) == 0
        emb[name] = np.load(out)
    np.testing.assert_allclose(emb["fast"], emb["plain"], rtol=1e-5, atol=1e-5)
    assert emb["bf16"].dtype == np.float32
    cos = (
        (emb["bf16"] * emb["plain"]).sum(1) / np.linalg.norm(emb["bf16"], axis=1) / np.linalg.norm(emb["plain"], axis=1)
    )
    assert cos.min() > 0.99
    assert main(["embed", str(run_dir), "--out", str(tmp_path / "x.npy"), "--workers", "-1"]) == 2


def test_embed_an_image_folder_writes_keys(run_dir, tmp_path):
    from PIL import Image

    root = tmp_path / "faces"
    for person in ("ann", "bob"):
        (root / person).mkdir(parents=True)
        for i in range(2):
            Image.fromarray((np.random.default_rng(i).random((28, 28)) * 255).astype(np.uint8)).save(
                root / person / f"{i}.png"
            )
    out = tmp_path / "folder.npy"
    assert main(["embed", str(run_dir / "checkpoint.pt"), "--data", str(root), "--out", str(out)]) == 0
    assert np.load(out).shape == (4, 16)
    assert (tmp_path / "folder.keys.txt").read_text().split() == ["ann/0.png", "ann/1.png", "bob/0.png", "bob/1.png"]


def test_export_onnx_matches_pytorch(run_dir, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "model.onnx"
    assert main(["export", str(run_dir), "--onnx", str(path)]) == 0
    assert path.stat().st_size > 1000
    assert "matches PyTorch" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, match",
    [
        (["embed", "nowhere/checkpoint.pt", "--out", "x.npy"], "does not exist"),
        (["train", "no_such_recipe"], "neither a file nor a packaged recipe"),
        (["train", "demo", "--set", "data.root"], "key=value"),
    ],
)
def test_bad_command_lines_are_clean_errors(args, match, capsys, tmp_path):
    assert main(args) == 2
    assert match in capsys.readouterr().err


def test_embed_rejects_a_missing_folder(run_dir, tmp_path, capsys):
    assert main(["embed", str(run_dir), "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "e.npy")]) == 2
    assert "neither 'train'/'test' nor an existing image folder" in capsys.readouterr().err
