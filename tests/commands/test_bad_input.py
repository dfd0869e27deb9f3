"""Bad input through the command line: one line naming the problem (exit 2), nothing run, nothing half-written.

Covers checkpoints that carry code, outputs that cannot be written (checked before any long computation), values
the config or the arguments do not allow, output folders held by another process, and early failures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from veriloss._io import LOCK_NAME, OutputLock
from veriloss.checkpoint import load_checkpoint
from veriloss.cli import main
from veriloss.train import Trainer

from ..train.test_trainer import TINY, tiny_config

QUIET = {"log": lambda _m: None}
RUN = [*TINY, "loss.name=a3m", "loss.params={alpha: 1.5, s: 8, m: 0.2}", "loss.reinit=null", "max_steps=3"]


def _sets(items) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def _one_error_line(capsys, command: str, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"veriloss {command}: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "demo", "--out", str(out), *_sets(RUN)]) == 0
    return out


# --- 1. a checkpoint is data ----------------------------------------------------------------------------------------
class _Payload:
    """Unpickling this runs ``touch MARKER`` (what a crafted checkpoint does)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(folder, marker) -> None:
    """A checkpoint.pt with every key a real one has, plus an object whose unpickling runs a shell command."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {"format_version": 1, "config": {"seed": 0}, "payload": _Payload(str(marker))}
    with open(folder / "checkpoint.pt", "wb") as f:
        torch.save(state, f)


def test_the_payload_runs_when_unpickled_unsafely(tmp_path):
    """The planted file is a real attack: loaded with weights_only=False it runs its command."""
    _plant(tmp_path / "run", tmp_path / "ran")
    torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["embed", "{run}", "--out", "{tmp}/e.npy"],
        ["export", "{run}", "--onnx", "{tmp}/m.onnx"],
        ["train", "demo", "--out", "{run}", "--resume"],
        ["demo", "--quick", "--out", "{run}", "--resume"],
        [
            "bench",
            "sweep",
            "--base",
            "demo",
            "--grid",
            "epochs=1",
            "--select-on",
            "test",
            "--out",
            "{bench}",
            "--dry-run",
        ],
    ],
    ids=["embed", "export", "train-resume", "demo-resume", "bench-dry-run"],
)
def test_a_checkpoint_carrying_code_is_refused_unrun(tmp_path, capsys, command):
    marker = tmp_path / "ran"
    bench = tmp_path / "bench"
    run = bench / "epochs=1" / "seed0" if command[0] == "bench" else tmp_path / "run"
    _plant(run, marker)
    args = [a.format(run=run, tmp=tmp_path, bench=bench) for a in command]
    if command[0] == "train":
        args += _sets(RUN)
    assert main(args) == 2
    _one_error_line(capsys, command[0], "checkpoint", "not a veriloss checkpoint", "could run code")
    assert not marker.exists()


def test_a_foreign_or_incomplete_checkpoint_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="format version 1"):
        load_checkpoint(tmp_path)
    torch.save({"format_version": 1, "config": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="incomplete: missing backbone, batch_in_epoch"):
        load_checkpoint(tmp_path)


def test_a_malformed_checkpoint_names_the_key(run_dir, tmp_path):
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    state["step"] = "3"
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="malformed: step is '3', expected int"):
        load_checkpoint(tmp_path)


# --- 5. outputs checked first; arguments checked; one line ----------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        ["train", "demo", "--out", "{file}", "--set", "max_steps=1"],
        ["demo", "--quick", "--out", "{file}"],
        ["eval", "embeddings", "{emb}", "--protocol", "all-pairs", "--out", "{file}"],
        ["embed", "{run}", "--out", "{file}/e.npy"],
        ["export", "{run}", "--onnx", "{file}/m.onnx"],
        [
            "bench",
            "sweep",
            "--base",
            "demo",
            "--grid",
            "seed=0",
            "--set",
            "max_steps=1",
            "--select-on",
            "test",
            "--out",
            "{file}",
        ],
    ],
    ids=["train", "demo", "eval", "embed", "export", "bench"],
)
def test_an_output_that_is_a_file_fails_at_once(run_dir, tmp_path, capsys, command):
    file = tmp_path / "taken"
    file.write_text("a file\n")
    emb = tmp_path / "x.npy"
    np.save(emb, np.eye(4, dtype=np.float32))
    np.save(tmp_path / "x.labels.npy", np.array([0, 0, 1, 1]))
    args = [a.format(file=file, run=run_dir, emb=emb) for a in command]
    assert main(args) == 2
    _one_error_line(capsys, command[0], str(file))
    assert file.read_text() == "a file\n"


def test_eval_of_an_empty_npy_is_one_line(tmp_path, capsys):
    (tmp_path / "e.npy").write_bytes(b"")
    assert main(["eval", "embeddings", str(tmp_path / "e.npy"), "--protocol", "all-pairs"]) == 2
    _one_error_line(capsys, "eval", "e.npy", "cannot read")


def test_export_with_an_impossible_opset_says_so_before_exporting(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "--onnx", str(tmp_path / "m.onnx"), "--opset", "99999"]) == 2
    _one_error_line(capsys, "export", "opset must be in [7, ")
    assert capsys.readouterr().out == "" and not (tmp_path / "m.onnx").exists()


def test_embed_with_a_negative_batch_size_is_one_line(run_dir, tmp_path, capsys):
    assert main(["embed", str(run_dir), "--out", str(tmp_path / "e.npy"), "--batch-size", "-5"]) == 2
    _one_error_line(capsys, "embed", "--batch-size must be an integer ≥ 1, got -5")


@pytest.mark.parametrize(
    ("assignment", "needle"),
    [
        ("epochs=abc", "epochs: 'abc' is not an integer"),
        ("batch_size=0", "batch_size"),
        ("checkpoint.every_steps=0", "checkpoint.every_steps"),
        ("log.every_steps=0", "log.every_steps"),
        ("epochs=null", "epochs"),
        ("optim.betas=5", "optim.betas"),
        ("loss.name=123", "loss.name"),
        ("grad_clip=-1", "grad_clip"),
        ("max_steps=0", "max_steps"),
        ("optim.lr=.nan", "optim.lr"),
        ("optim.nesterov=maybe", "optim.nesterov"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_the_key(tmp_path, capsys, assignment, needle):
    assert main(["train", "demo", "--out", str(tmp_path / "run"), *_sets(RUN), "--set", assignment]) == 2
    _one_error_line(capsys, "train", f"--set {assignment}", needle)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_config_file_with_a_bom_or_bad_bytes(tmp_path, capsys):
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbfepochs: 1\nmax_steps: 2\n")
    (tmp_path / "latin1.yaml").write_bytes(b"# caf\xe9\nepochs: 1\n")
    assert main(["train", str(tmp_path / "latin1.yaml"), "--out", str(tmp_path / "a")]) == 2
    _one_error_line(capsys, "train", "latin1.yaml", "not UTF-8")
    out = tmp_path / "b"
    assert main(["train", str(tmp_path / "bom.yaml"), "--out", str(out), *_sets(RUN)]) == 0
    assert load_checkpoint(out)["config"]["epochs"] == 1


# --- 8. one writer per output folder --------------------------------------------------------------------------------
def _holder(folder) -> subprocess.Popen:
    """Another process that holds ``folder`` (as a second veriloss run would) until it is killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from veriloss._io import OutputLock
        OutputLock({str(folder)!r}).acquire()
        print("held", flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_eval_into_a_held_folder_is_refused_and_a_dead_owners_lock_is_taken_over(tmp_path, capsys):
    emb = tmp_path / "x.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32))
    np.save(tmp_path / "x.labels.npy", np.array([0, 0, 1, 1, 2, 2, 3, 3]))
    out = tmp_path / "report"
    args = ["eval", "embeddings", str(emb), "--protocol", "all-pairs", "--out", str(out), "--no-plots"]
    holder = _holder(out)
    try:
        assert main(args) == 2
        _one_error_line(capsys, "eval", "in use by another veriloss process", f"pid {holder.pid}")
        assert not (out / "metrics.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_NAME).exists()  # the dead owner's lock file is still there: stale
    assert main(args) == 0
    assert (out / "metrics.json").exists() and not (out / LOCK_NAME).exists()


def test_training_and_bench_folders_are_held(tmp_path, capsys):
    with OutputLock(tmp_path / "run"):
        with pytest.raises(ValueError, match=r"training folder .* is in use"):
            Trainer.from_config(tiny_config("max_steps=1"), tmp_path / "run", **QUIET).fit()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    bench = [
        "bench",
        "sweep",
        "--base",
        "demo",
        "--grid",
        "seed=0",
        "--select-on",
        "test",
        "--out",
        str(tmp_path / "b"),
        *_sets(RUN),
    ]
    with OutputLock(tmp_path / "b"):
        assert main(bench) == 2
    _one_error_line(capsys, "bench", "bench folder", "in use")


def test_a_report_folder_never_mixes_two_reports(tmp_path, capsys):
    emb = tmp_path / "x.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32))
    np.save(tmp_path / "x.labels.npy", np.array([0, 0, 1, 1, 2, 2, 3, 3]))
    out = tmp_path / "report"
    assert main(["eval", "embeddings", str(emb), "--protocol", "all-pairs", "--out", str(out)]) == 0
    assert (out / "roc.png").exists()
    assert main(["eval", "embeddings", str(emb), "--protocol", "all-pairs", "--out", str(out), "--no-plots"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "metrics.md"]


# --- 7. early failures ----------------------------------------------------------------------------------------------
def test_a_test_split_without_genuine_pairs_fails_before_training(tmp_path):
    config = tiny_config("data.samples_per_identity=1", "batch_size=4", "max_steps=1")
    with pytest.raises(ValueError, match="the test split has 6 samples of 6 identities, none with two or more"):
        Trainer.from_config(config, tmp_path, **QUIET)
    assert not (tmp_path / "checkpoint.pt").exists()
    with pytest.raises(ValueError, match=r"validation subset .* check validate.max_samples"):
        Trainer.from_config(tiny_config("validate.max_samples=3", "max_steps=1"), tmp_path, **QUIET)


class _CtrlCInFinalEvaluation(Trainer):
    def evaluate(self, max_samples=None, far=None):
        if self.finished and not getattr(self, "_hit", False):
            self._hit = True
            os.kill(os.getpid(), signal.SIGINT)
        return super().evaluate(max_samples, far)


def test_ctrl_c_during_the_final_evaluation_stops_it_and_resume_evaluates(tmp_path):
    config = tiny_config("loss.name=cosface", "max_steps=3")
    assert _CtrlCInFinalEvaluation.from_config(config, tmp_path, **QUIET).fit() == {"status": "interrupted", "step": 3}
    assert load_checkpoint(tmp_path)["step"] == 3 and not (tmp_path / "metrics.json").exists()
    metrics = Trainer.from_config(config, tmp_path, resume=True, **QUIET).fit()
    assert metrics["status"] == "finished" and metrics["steps"] == 3 and (tmp_path / "metrics.json").exists()


class _CtrlCInValidation(Trainer):
    def _validate(self):
        os.kill(os.getpid(), signal.SIGINT)
        return super()._validate()


def test_ctrl_c_during_a_validation_checkpoints_and_stops(tmp_path):
    config = tiny_config("loss.name=cosface", "epochs=2")
    assert _CtrlCInValidation.from_config(config, tmp_path, **QUIET).fit() == {"status": "interrupted", "step": 4}
    assert load_checkpoint(tmp_path)["step"] == 4


class _Unreadable(torch.utils.data.Dataset):
    """The training set with one sample that cannot be decoded."""

    def __init__(self, dataset, bad: int):
        self.dataset, self.bad = dataset, bad
        self.labels, self.num_classes = dataset.labels, dataset.num_classes

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"sample {i}: image.png is truncated")
        return self.dataset[i]


@pytest.mark.parametrize("workers", [0, 1])
def test_a_corrupt_sample_stops_the_run_with_a_checkpoint_and_resume_continues(tmp_path, workers):
    config = tiny_config("loss.name=cosface", "epochs=2", f"num_workers={workers}")
    trainer = Trainer.from_config(config, tmp_path, **QUIET)
    good = trainer.train_set
    third = trainer._epoch_batches(0)[2]
    trainer.train_set = _Unreadable(good, third[0])
    with pytest.raises(ValueError, match=r"sample \d+: image.png is truncated\. A checkpoint of step 2 is written"):
        trainer.fit()
    assert load_checkpoint(tmp_path)["step"] == 2
    resumed = Trainer.from_config(config, tmp_path, resume=True, **QUIET)
    assert resumed.step == 2 and resumed.fit()["status"] == "finished"


def test_a_corrupt_member_of_an_image_zip_is_one_line_before_training(tmp_path, capsys):
    import zipfile

    from ..data.test_corrupt import _member_data_offset, _omniglot_zip

    root = tmp_path / "omniglot"
    root.mkdir()
    names = _omniglot_zip(root / "images_background.zip")
    _omniglot_zip(root / "images_evaluation.zip")
    raw = bytearray((root / "images_background.zip").read_bytes())
    start = _member_data_offset(bytes(raw), zipfile.ZipFile(root / "images_background.zip").getinfo(names[4]))
    raw[start] = 0xFF  # a reserved deflate block type
    (root / "images_background.zip").write_bytes(bytes(raw))
    args = ["train", "omniglot_arcface", "--out", str(tmp_path / "run"), "--set", f"data.root={root}"]
    assert main(args) == 2
    _one_error_line(capsys, "train", names[4], "corrupt compressed data")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_truncated_image_in_a_folder_fails_before_training(tmp_path):
    from ..data.test_corrupt import _image_folder

    for split in ("train", "test"):
        _image_folder(tmp_path / split)
    png = tmp_path / "test" / "a" / "img1.png"
    png.write_bytes(png.read_bytes()[:60])
    config = tiny_config("batch_size=2", "max_steps=1")
    config["data"] = {"name": "image-folder", "train_root": str(tmp_path / "train"), "test_root": str(png.parents[1])}
    with pytest.raises(ValueError, match=r"img1\.png.*truncated PNG"):
        Trainer.from_config(config, tmp_path / "run", **QUIET)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
