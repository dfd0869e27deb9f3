"""The trainer's reporting callbacks: LogLines (a line per logging interval without a terminal), TensorBoard's
final metrics and hyperparameters (read back from the event file), and FinalReport's files."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from PIL import Image

from veriloss.data import SyntheticIdentities
from veriloss.heads import create
from veriloss.models import create as create_model
from veriloss.train import Trainer
from veriloss.train.callbacks import LogLines, TensorBoard


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_log_line_formats():
    row = {"step": 120, "epoch": 0, "lr": 0.1, "loss": 5.4123, "accuracy": 0.12, "support_size": 13.25,
           "py_zero": 0.5, "other": 2.0, "seconds": 3.21}  # fmt: skip
    assert (
        LogLines.line(row, 903)
        == "step 120/903 (epoch 0) loss 5.412 acc 0.12 support 13.25 p_y=0 0.5 other 2 lr 0.1 3.2 s"
    )
    val = {"step": 301, "epoch": 1, "val_tar@0.0001": 0.25, "val_eer": 0.05}
    assert LogLines.line(val, 903) == "step 301/903 (epoch 1) validation EER 5.00% TAR@FAR=0.0001 25.00%"


@pytest.mark.parametrize("tty", [False, True])
def test_log_lines_only_without_a_terminal(tty):
    said = []
    trainer = SimpleNamespace(log=said.append, total_steps=10)
    cb = LogLines(stream=_Stream(tty))
    cb.on_fit_start(trainer)
    cb.on_log(trainer, {"step": 2, "epoch": 0, "loss": 1.0, "lr": 0.5, "seconds": 0.25})
    assert said == ([] if tty else ["step 2/10 (epoch 0) loss 1 lr 0.5 0.2 s"])


def test_hparams_are_flat_scalars_and_strings():
    config = {"seed": 0, "optim": {"name": "sgd", "lr": 0.1, "nesterov": False, "betas": [0.9, 0.999]},
              "loss": {"aux": [{"name": "center", "weight": 0.1}], "reinit": None}}  # fmt: skip
    assert TensorBoard.hparams(config) == {
        "seed": 0,
        "optim.name": "sgd",
        "optim.lr": 0.1,
        "optim.nesterov": False,
        "optim.betas": "[0.9, 0.999]",
        "loss.aux": '[{"name": "center", "weight": 0.1}]',
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny finished run with TensorBoard, LogLines (no terminal) and the final report."""
    out = tmp_path_factory.mktemp("run")
    said: list[str] = []
    model = create_model("small-cnn", width=4, embedding_dim=16)
    config = {"batch_size": 8, "max_steps": 4, "amp": "none", "seed": 3,
              "log": {"every_steps": 2, "tensorboard": True, "progress": False},
              "validate": {"every_epochs": 0, "far": [1e-2]}}  # fmt: skip
    trainer = Trainer(
        model, create("cosface", 16, 8), SyntheticIdentities(8, 4, image_size=28),
        SyntheticIdentities(6, 4, image_size=28, identity_offset=8), out, config=config, log=said.append,
        callbacks=[LogLines(stream=_Stream(False))],
    )  # fmt: skip
    metrics = trainer.fit()
    return out, said, metrics, trainer


def test_log_lines_in_a_run(run):
    _, said, _, _ = run
    lines = [s for s in said if s.startswith("step ")]
    assert [s.split(" (")[0] for s in lines] == ["step 2/4", "step 4/4"]
    assert all(" loss " in s and " lr " in s and s.endswith(" s") for s in lines)


def test_tensorboard_has_final_metrics_and_hparams(run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    out, _, metrics, trainer = run
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert {"train/loss", "train/lr", "test/eer"} <= set(events.Tags()["scalars"])
    (eer,) = events.Scalars("test/eer")
    assert eer.step == 4 and eer.value == pytest.approx(metrics["eer"], abs=1e-6)
    tars = {f"test/tar@{t['far']:g}": t["tar"] for t in metrics["tar_at_far"] if t["measurable"]}
    assert tars and all(events.Scalars(tag)[0].value == pytest.approx(v, abs=1e-6) for tag, v in tars.items())

    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    flat = TensorBoard.hparams(trainer.config)
    assert set(hp) == set(flat) and {"batch_size", "optim.lr", "max_steps", "validate.far"} <= set(hp)
    assert hp["batch_size"].number_value == 8 and hp["optim.lr"].number_value == pytest.approx(0.1)
    assert hp["optim.name"].string_value == "sgd" and hp["validate.far"].string_value == "[0.01]"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} == {"test/eer", *tars}


def test_final_report_files(run):
    out, _, _, _ = run
    for name in ("metrics.md", "metrics.json", "roc.png", "det.png", "hist.png", "curves.png"):
        assert (out / name).is_file(), name
    with Image.open(out / "curves.png") as im:
        assert im.size[0] == 1056 and im.size[1] < 1.5 * im.size[0]  # a grid, not a strip
