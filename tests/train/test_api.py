"""The trainer as a library: built from a user's own objects, it is the same loop as from a config; callbacks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from veriloss import heads
from veriloss.checkpoint import load_checkpoint
from veriloss.data import SyntheticIdentities
from veriloss.losses import from_config as build_loss
from veriloss.train import Callback, Trainer, load_config

from .test_trainer import TINY

QUIET = {"log": lambda _m: None}
LOOP = {"batch_size": 16, "epochs": 2, "amp": "none", "schedule": {"warmup_steps": 2}, "validate": {"far": [0.01]},
        "log": {"every_steps": 2, "tensorboard": False, "progress": False}}  # fmt: skip


class TinyNet(nn.Module):
    """A user's own backbone: not from the model registry."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 8))

    def forward(self, x):
        return self.body(x)


class Pairs(torch.utils.data.Dataset):
    """A user's own dataset: any (tensor, label) items with ``labels`` and ``num_classes``."""

    def __init__(self, base):
        self.base, self.labels, self.num_classes = base, base.labels, base.num_classes

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        return self.base[i]


def _objects(seed: int = 0):
    torch.manual_seed(seed)
    train = Pairs(SyntheticIdentities(12, 6, image_size=28))
    test = Pairs(SyntheticIdentities(6, 6, image_size=28, identity_offset=12))
    model = TinyNet()
    loss = heads.create("cosface", 8, 12, s=16.0, m=0.2)
    optimizer = torch.optim.SGD([*model.parameters(), *loss.parameters()], lr=0.05, momentum=0.9)
    return model, loss, train, test, optimizer


def _weights(trainer: Trainer) -> dict:
    return {**trainer.backbone.state_dict(), **{f"loss.{k}": v for k, v in trainer.loss.state_dict().items()}}


def test_a_trainer_of_user_objects_trains_checkpoints_and_resumes_exactly(tmp_path):
    model, loss, train, test, optimizer = _objects()
    straight = Trainer(model, loss, train, test, tmp_path / "a", config=LOOP, optimizer=optimizer, **QUIET)
    metrics = straight.fit()
    assert metrics["status"] == "finished" and metrics["steps"] == 8 and metrics["name"] == "CosFace"
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["systems"][0]["eer"] == metrics["eer"]
    state = load_checkpoint(tmp_path / "a")
    assert state["model_args"] is None and "model" not in state["config"] and "data" not in state["config"]

    class StopAt(Callback):  # Ctrl-C during step 3
        def on_step_end(self, trainer, loss, stats):
            if trainer.step == 3:
                trainer._interrupted = True

    model, loss, train, test, optimizer = _objects()
    first = Trainer(model, loss, train, test, tmp_path / "b", config=LOOP, optimizer=optimizer,
                    callbacks=[StopAt()], **QUIET)  # fmt: skip
    assert first.fit() == {"status": "interrupted", "step": 3}
    model, loss, train, test, optimizer = _objects(seed=5)  # other initial weights: all of them come from the file
    resumed = Trainer(model, loss, train, test, tmp_path / "b", config=LOOP, optimizer=optimizer, resume=True, **QUIET)
    assert resumed.step == 3 and resumed.fit()["eer"] == metrics["eer"]
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_object_path_and_the_config_path_are_the_same_loop(tmp_path):
    config = load_config(None, [*TINY, "loss.name=arcface", "loss.params={s: 16, m: 0.3}", "max_steps=6"])
    by_config = Trainer.from_config(config, tmp_path / "config", **QUIET)
    by_config.fit()
    torch.manual_seed(config["seed"])
    from veriloss.data import build_dataset
    from veriloss.models import create

    train, test = build_dataset(config["data"], "train"), build_dataset(config["data"], "test")
    model = create("small-cnn", width=8, embedding_dim=16, in_channels=1, input_size=28)
    loss = build_loss(config["loss"], 16, train.num_classes)
    by_objects = Trainer(model, loss, train, test, tmp_path / "objects", config=config, **QUIET)
    by_objects.fit()
    a, b = _weights(by_config), _weights(by_objects)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Recorder(Callback):
    def __init__(self):
        self.events: list[tuple] = []

    def on_fit_start(self, trainer):
        self.events.append(("fit_start", trainer.step))

    def on_step_start(self, trainer):
        self.events.append(("step_start", trainer.step))

    def on_step_end(self, trainer, loss, stats):
        assert loss > 0 and 0 <= stats["accuracy"] <= 1
        self.events.append(("step_end", trainer.step))

    def on_log(self, trainer, row):
        self.events.append(("log", row["step"], "val_eer" in row))

    def on_epoch_end(self, trainer):
        self.events.append(("epoch_end", trainer.epoch))

    def on_evaluation(self, trainer, result, final):
        self.events.append(("evaluation", trainer.step, final, result.n_embeddings))

    def on_fit_end(self, trainer, metrics):
        self.events.append(("fit_end", metrics["status"]))


def test_a_user_callback_sees_every_event_in_order(tmp_path):
    model, loss, train, test, optimizer = _objects()
    recorder = Recorder()
    config = {**LOOP, "validate": {"far": [0.01], "every_epochs": 1, "max_samples": 12}}
    Trainer(model, loss, train, test, tmp_path, config=config, optimizer=optimizer, callbacks=[recorder], **QUIET).fit()
    steps = [e for e in recorder.events if e[0] in ("step_start", "step_end")]
    assert steps == [(kind, s + (kind == "step_end")) for s in range(8) for kind in ("step_start", "step_end")]
    assert recorder.events[0] == ("fit_start", 0) and recorder.events[-1] == ("fit_end", "finished")
    assert [e for e in recorder.events if e[0] == "epoch_end"] == [("epoch_end", 1), ("epoch_end", 2)]
    assert [e for e in recorder.events if e[0] == "evaluation"] == [("evaluation", 4, False, 12),
                                                                   ("evaluation", 8, True, 36)]  # fmt: skip
    logs = [e for e in recorder.events if e[0] == "log"]
    assert logs == [("log", 2, False), ("log", 4, False), ("log", 4, True), ("log", 6, False), ("log", 8, False)]
    # the order within the first epoch: the validation and its row come before the epoch's end
    i = recorder.events.index(("evaluation", 4, False, 12))
    assert recorder.events[i + 1 : i + 3] == [("log", 4, True), ("epoch_end", 1)]


def test_fit_end_is_told_when_a_run_is_interrupted_or_fails(tmp_path):
    class Boom(Callback):
        def on_step_start(self, trainer):
            if trainer.step == 2:
                raise RuntimeError("boom")

    model, loss, train, test, optimizer = _objects()
    recorder = Recorder()
    trainer = Trainer(model, loss, train, test, tmp_path, config=LOOP, optimizer=optimizer,
                      callbacks=[recorder, Boom()], **QUIET)  # fmt: skip
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit()
    assert recorder.events[-1] == ("fit_end", "failed")


def test_no_test_set_trains_without_evaluating(tmp_path):
    model, loss, train, _, optimizer = _objects()
    metrics = Trainer(model, loss, train, None, tmp_path, config=LOOP, optimizer=optimizer, **QUIET).fit()
    assert metrics == {"status": "finished", "steps": 8} and not (tmp_path / "metrics.json").exists()
