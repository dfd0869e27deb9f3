"""The training loop's speed options keep its results: channels_last, torch.compile, loader workers that persist
across epochs, statistics read only at log steps (no host synchronization inside a step), and the deferred check of
a non-finite loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.train.test_api import LOOP, QUIET, _objects, _weights
from tests.train.test_trainer import tiny_config
from veriloss.checkpoint import load_checkpoint
from veriloss.train import Callback, Trainer


def _fit(tmp_path, name: str, *extra: str) -> Trainer:
    trainer = Trainer.from_config(tiny_config("loss.name=cosface", "max_steps=6", *extra), tmp_path / name, **QUIET)
    trainer.fit()
    return trainer


def test_channels_last_trains_to_the_same_weights_within_float_rounding(tmp_path):
    # a small learning rate: at the recipe's 0.1 these tiny runs are chaotic and amplify any rounding difference
    on = _fit(tmp_path, "on", "channels_last=true", "optim.lr=0.005")
    off = _fit(tmp_path, "off", "channels_last=false", "optim.lr=0.005")
    assert on.channels_last and not off.channels_last
    conv = next(m for m in on.backbone.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    a, b = _weights(on), _weights(off)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-4, msg=k)
    auto = Trainer.from_config(tiny_config("loss.name=cosface"), tmp_path / "auto", **QUIET)
    assert auto.channels_last  # small-cnn is an image backbone
    model, loss, train, test, optimizer = _objects()  # a user's MLP: auto leaves it alone
    assert not Trainer(
        model, loss, train, test, tmp_path / "mlp", config=LOOP, optimizer=optimizer, **QUIET
    ).channels_last


def test_compile_runs_the_backbone_through_torch_compile_with_the_same_result(tmp_path):
    compiled = _fit(tmp_path, "eager", "compile=eager", "channels_last=false")  # dynamo tracing, no code generation
    plain = _fit(tmp_path, "plain", "channels_last=false")
    assert compiled.backbone._compiled_call_impl is not None and plain.backbone._compiled_call_impl is None
    a, b = _weights(compiled), _weights(plain)
    assert a.keys() == b.keys()  # the checkpoint's keys do not change (no _orig_mod prefix)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    with pytest.raises(ValueError, match=r"not a torch\.compile backend"):
        Trainer.from_config(tiny_config("loss.name=cosface", "compile=inductr"), tmp_path / "typo", **QUIET)
    with pytest.raises(ValueError, match="compile"):
        tiny_config("compile=3")


class _StopAt(Callback):
    def __init__(self, step: int):
        self.at = step

    def on_step_end(self, trainer, loss, stats):
        if trainer.step == self.at:
            trainer._interrupted = True


def test_resume_is_exact_with_persistent_loader_workers(tmp_path):
    """Two worker processes that live across epochs (epochs of 4 steps, 8 steps) and a dropout model: the run
    interrupted at step 3 and resumed equals the straight one."""
    cfg = {**LOOP, "num_workers": 2}
    model, loss, train, test, optimizer = _objects()
    straight = Trainer(model, loss, train, test, tmp_path / "a", config=cfg, optimizer=optimizer, **QUIET)
    straight.fit()
    model, loss, train, test, optimizer = _objects()
    first = Trainer(model, loss, train, test, tmp_path / "b", config=cfg, optimizer=optimizer, callbacks=[_StopAt(3)],
                    **QUIET)  # fmt: skip
    assert first.fit() == {"status": "interrupted", "step": 3}
    model, loss, train, test, optimizer = _objects(seed=7)
    resumed = Trainer(model, loss, train, test, tmp_path / "b", config=cfg, optimizer=optimizer, resume=True, **QUIET)
    resumed.fit()
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the rows whose logging interval lies after the interruption (step 4's mean starts at step 3 when resumed)
    assert [r["loss"] for r in straight.history[-2:]] == [r["loss"] for r in resumed.history[-2:]]


def test_a_training_step_never_waits_for_the_device(tmp_path, monkeypatch):
    """No Tensor.item / __bool__ / __float__ / __int__ inside a step of a margin head (the loss and its statistics
    stay tensors). (The α solver's iterations test their convergence on the host: an algorithmic read, not a
    check.)"""
    trainer = Trainer.from_config(tiny_config("loss.name=arcface", "loss.params={s: 16, m: 0.3}"), tmp_path, **QUIET)
    x = torch.stack([trainer.train_set[i][0] for i in range(16)])
    y = torch.as_tensor([trainer.train_set.labels[i] for i in range(16)])
    calls: list[str] = []
    for name in ("item", "__bool__", "__float__", "__int__", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original):
            calls.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counted)
    loss, stats = trainer._train_step(x, y)
    monkeypatch.undo()
    assert calls == []
    assert isinstance(loss, torch.Tensor) and set(stats) == {"accuracy"}
    assert all(isinstance(v, torch.Tensor) for v in stats.values())


class _Explodes(nn.Module):
    """A loss that is infinite from its third call on."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.inner, self.calls = loss, 0

    def forward(self, x, y):
        self.calls += 1
        out = self.inner(x, y)
        return out * float("inf") if self.calls >= 3 else out


def test_a_non_finite_loss_stops_the_run_at_the_next_log_step_and_is_never_checkpointed(tmp_path):
    model, loss, train, test, optimizer = _objects()
    cfg = {**LOOP, "checkpoint": {"every_steps": 2}, "log": {**LOOP["log"], "every_steps": 4}}
    trainer = Trainer(model, _Explodes(loss), train, test, tmp_path, config=cfg, optimizer=optimizer, **QUIET)
    with pytest.raises(ValueError, match=r"step 2: the loss is not finite.*last checkpoint \(step 2\)"):
        trainer.fit()
    assert load_checkpoint(tmp_path)["step"] == 2  # the checkpoint of step 2 (before the bad step) is kept
