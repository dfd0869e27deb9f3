"""The trainer end to end on tiny synthetic data: metrics, exact resume, DDP = single process, atomic checkpoints."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal

import pytest
import torch

from tests.processes import run_processes
from veriloss.checkpoint import load_checkpoint, save_atomic
from veriloss.cli import main
from veriloss.train import Trainer, load_config
from veriloss.train.callbacks import MarginWarmup

TINY = [
    "data.name=synthetic",
    "data.image_size=28",
    "data.train_identities=12",
    "data.test_identities=6",
    "data.samples_per_identity=6",
    "model.name=small-cnn",
    "model.width=8",
    "model.embedding_dim=16",
    "batch_size=16",
    "amp=none",
    "schedule.warmup_steps=2",
    "log.every_steps=2",
    "log.tensorboard=false",
    "log.progress=false",
    "validate.far=[0.01]",
]


def tiny_config(*extra: str) -> dict:
    return load_config(None, [*TINY, *extra])


def _state(trainer: Trainer) -> dict:
    return {**{f"b.{k}": v for k, v in trainer.backbone.state_dict().items()},
            **{f"l.{k}": v for k, v in trainer.loss.state_dict().items()}}  # fmt: skip


def test_tiny_end_to_end_train_and_eval(tmp_path):
    config = tiny_config("loss.name=arcface", "loss.params={s: 16, m: 0.3}", "epochs=2", "amp=none")
    messages = []
    trainer = Trainer.from_config(config, tmp_path, log=messages.append)
    assert trainer.steps_per_epoch == 72 // 16 and trainer.total_steps == 8
    metrics = trainer.fit()
    assert metrics["status"] == "finished" and metrics["steps"] == 8
    assert metrics["precision"] == "float32" and any("cpu, float32" in m for m in messages)
    assert metrics["n_embeddings"] == 36 and metrics["n_genuine"] == 6 * 15
    assert 0.0 <= metrics["eer"] <= 0.5
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["systems"][0]["eer"] == metrics["eer"] and saved["meta"]["config"]["epochs"] == 2
    assert f"{100 * metrics['eer']:.3f}" in (tmp_path / "metrics.md").read_text()
    rows = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [2, 4, 6, 8]
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["loss"] > 0 for r in train_rows)
    assert any("val_eer" in r for r in rows)  # validation after epoch 1
    for name in ("curves.png", "roc.png", "det.png", "hist.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    state = load_checkpoint(tmp_path)
    assert state["finished"] and state["step"] == 8


def test_alpha_head_logs_support_and_target_out_of_support(tmp_path):
    config = tiny_config("loss.name=a3m", "loss.params={s: 8, m: 0.2}", "max_steps=4")
    metrics = Trainer.from_config(config, tmp_path, log=lambda _m: None).fit()
    assert metrics["train_support_size_mean"] >= 1.0
    assert 0.0 <= metrics["train_py_zero_mean"] <= 1.0


class _InterruptAt(Trainer):
    """Ctrl-C (a real SIGINT to this process) arriving during step ``stop_at``."""

    stop_at = 0

    def _train_step(self, x, y):
        out = super()._train_step(x, y)
        if self.step + 1 == self.stop_at:
            os.kill(os.getpid(), signal.SIGINT)
        return out


@pytest.mark.parametrize("stop_at", [3, 5])  # mid-epoch and at an epoch boundary (4 steps per epoch)
def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path, stop_at):
    extra = ("loss.name=a3m-i", "loss.params={s: 8, m: 0.2}", "loss.reinit={step: 4}", "epochs=3", "data.augment=true")
    straight = Trainer.from_config(tiny_config(*extra), tmp_path / "a", log=lambda _m: None)
    straight.fit()
    _InterruptAt.stop_at = stop_at
    first = _InterruptAt.from_config(tiny_config(*extra), tmp_path / "b", log=lambda _m: None)
    assert first.fit() == {"status": "interrupted", "step": stop_at}
    assert load_checkpoint(tmp_path / "b")["step"] == stop_at
    with open(tmp_path / "b" / "history.jsonl", "a") as f:  # as if a crash lost steps logged after the checkpoint
        f.write(json.dumps({"step": stop_at + 1, "epoch": 0, "lr": 0.0, "loss": 1.0}) + "\n")
    resumed = Trainer.from_config(tiny_config(*extra), tmp_path / "b", resume=True, log=lambda _m: None)
    assert resumed.step == stop_at
    resumed.fit()
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    def rows(run):  # no duplicated or missing log rows after the resume (the running means of the log interval
        # cut by the interruption cover fewer steps, so only the keys and schedule are compared)
        lines = (run / "history.jsonl").read_text().splitlines()
        return [(r["step"], r.get("lr"), sorted(r)) for r in map(json.loads, lines)]

    assert rows(tmp_path / "b") == rows(tmp_path / "a")


def _ddp_worker(rank: int, world: int, recipe: str, out: str, overrides: list[str]) -> None:
    """``veriloss train`` as torchrun starts it; it leaves the process group when done."""
    sets = [arg for assignment in overrides for arg in ("--set", assignment)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", str(recipe), *sets, "--out", out]) == 0
    assert not torch.distributed.is_initialized()


def test_two_process_ddp_equals_one_process_on_the_same_global_batch(tmp_path):
    # NCHW: with channels_last the per-rank half batch may take other convolution kernels (float rounding, which these
    # tiny lr-0.1 runs amplify beyond the tolerance)
    overrides = [*TINY, "loss.name=cosface", "loss.params={s: 16, m: 0.2}", "max_steps=5", "validate.every_epochs=0",
                 "channels_last=false"]  # fmt: skip
    torch.set_num_threads(1)
    single = Trainer.from_config(load_config(None, overrides), tmp_path / "single", log=lambda _m: None)
    single.fit()
    (tmp_path / "recipe.yaml").write_text("{}\n")  # defaults; the rest comes from --set
    run_processes(_ddp_worker, 2, str(tmp_path / "recipe.yaml"), str(tmp_path / "ddp"), overrides)
    ddp = load_checkpoint(tmp_path / "ddp")
    assert ddp["step"] == 5
    ref = single.backbone.state_dict()
    for key, value in ddp["backbone"].items():
        assert torch.allclose(value.float(), ref[key].float(), atol=2e-5, rtol=1e-4), key
    assert torch.allclose(ddp["loss"]["weight"], single.loss.state_dict()["weight"], atol=2e-5, rtol=1e-4)


def test_interrupted_checkpoint_write_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_atomic({"format_version": 1, "step": 1}, path)

    def broken_save(obj, f):
        f.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"format_version": 1, "step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["loss.name=nosuchloss"], "unknown loss 'nosuchloss'"),
        (["loss.name=arcface", "loss.params={q: 3}"], r"unknown loss\.params key\(s\) q for head .arcface."),
        (["optimizer.lr=0.1"], "unknown config key 'optimizer'"),
        (["optim.learning_rate=0.1"], "unknown config key 'optim.learning_rate'"),
        (["loss.name=arcface", "loss.reinit={at: 0.25}"], "a3m-i"),
        (["sampler.name=pk", "sampler.p=3", "sampler.k=3"], "p·k"),
        (["batch_size=1000"], "smaller than one batch"),
        (["amp=fp8"], "amp"),
        (["loss.init_std=-1"], "init_std"),
        (["loss.name=triplet", "loss.init_std=0.01"], "prototypes"),
    ],
)
def test_bad_configs_are_clear_errors(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        Trainer.from_config(tiny_config(*overrides), tmp_path, log=lambda _m: None)


@pytest.mark.parametrize("fast", [True, False])
def test_amp_auto_uses_bf16_where_it_is_native(monkeypatch, fast, tmp_path):
    from veriloss.train import precision

    monkeypatch.setattr(precision, "_cpu_has_fast_bf16", lambda: fast)
    monkeypatch.setattr(precision, "_cuda_has_bf16", lambda device: fast)
    assert precision.amp_dtype("auto", torch.device("cpu")) == (torch.bfloat16 if fast else None)
    assert precision.amp_dtype("auto", torch.device("cuda")) == (torch.bfloat16 if fast else torch.float16)
    assert precision.amp_dtype("bf16", torch.device("cpu")) == torch.bfloat16  # asked for explicitly: always
    assert precision.amp_dtype("none", torch.device("cpu")) is None
    resolved = Trainer.from_config(tiny_config("amp=auto"), tmp_path, log=lambda _m: None).precision
    assert resolved == ("bfloat16 autocast" if fast else "float32")  # what auto became, as metrics.json records it


def test_set_parses_yaml_values_and_rejects_malformed_assignments():
    config = tiny_config("loss.params={s: 30, m: 0.5}", "validate.far=[1e-3, 1e-4]", "grad_clip=5")
    assert config["loss"]["params"] == {"s": 30, "m": 0.5} and config["grad_clip"] == 5
    assert config["validate"]["far"] == [1e-3, 1e-4]
    with pytest.raises(ValueError, match="key=value"):
        load_config(None, ["epochs"])
    with pytest.raises(ValueError, match="does not exist"):
        load_config("nope.yaml")


def test_margin_warmup_ramps_additive_margins_and_kappa_geometrically():
    from veriloss import heads

    arc = heads.create("arcface", 4, 3, m=0.5)
    warm = MarginWarmup(arc, 4)
    warm(0)
    assert arc.m == pytest.approx(0.125)
    warm(3)
    assert arc.m == pytest.approx(0.5)
    q = heads.create("qmargin", 4, 3, alpha=1.5, s=16, kappa=0.1)
    warm = MarginWarmup(q, 2)
    warm(0)
    assert q.kappa == pytest.approx(0.1**0.5)
    warm(5)
    assert q.kappa == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no margin"):
        MarginWarmup(heads.create("softmax", 4, 3), 3)


def test_streaming_head_with_lazy_sgd_trains_like_the_dense_head(tmp_path):
    """With momentum 0 and weight decay 0, LazySGD on sparse prototype gradients is plain SGD: same weights."""
    common = ["loss.name=a3m", "max_steps=4", "optim.momentum=0", "optim.weight_decay=0", "grad_clip=10"]
    dense = Trainer.from_config(tiny_config(*common, "loss.params={s: 8, m: 0.2}"), tmp_path / "d", log=lambda _m: None)
    dense.fit()
    stream = Trainer.from_config(
        tiny_config(*common, "loss.params={s: 8, m: 0.2, chunk_size: 5}", "optim.name=lazy-sgd"),
        tmp_path / "s",
        log=lambda _m: None,
    )
    record = stream.fit()
    assert record["status"] == "finished"
    a, b = _state(dense), _state(stream)
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5, rtol=1e-4), key


def test_streaming_head_needs_the_lazy_optimizer(tmp_path):
    with pytest.raises(ValueError, match="lazy-sgd"):
        Trainer.from_config(
            tiny_config("loss.name=alpha", "loss.params={chunk_size: 4}"), tmp_path, log=lambda _m: None
        )


def test_init_std_draws_the_prototypes_once_from_the_seeded_generator():
    from veriloss.losses import from_config as build_loss

    torch.manual_seed(3)
    head = build_loss({"name": "cosface", "params": {}, "init_std": 0.03}, 16, 40)
    torch.manual_seed(3)
    expected = torch.empty(40, 16).normal_(0.0, 0.03)  # one draw of the whole matrix, nothing before it
    torch.testing.assert_close(head.weight.detach(), expected, rtol=0, atol=0)
    assert 0.024 < float(head.weight.detach().std()) < 0.036
    torch.manual_seed(3)
    default = build_loss({"name": "cosface", "params": {}}, 16, 40)  # cosine heads: N(0, 0.01²)
    torch.testing.assert_close(default.weight.detach(), expected / 3, rtol=1e-6, atol=0)
