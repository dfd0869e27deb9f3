"""The trainer with a sharded α head (loss.params.sharded: true) over 2 gloo processes: equal to one process with
the dense head on the same global batch (DDP for the backbone, the head kept out of DDP, gradient clipping by the
norm of the whole model, A3M-I re-initialization), and an interrupted run resumed from its checkpoint, with
2 processes or with 1 (the checkpoint holds the whole W in the dense layout)."""

from __future__ import annotations

import os
import shutil
import signal

import torch
import torch.distributed as dist

from tests.processes import run_processes
from tests.train.test_trainer import TINY
from veriloss.checkpoint import load_checkpoint
from veriloss.heads import A3MIHead
from veriloss.train import Trainer, load_config

# 13 classes: ranks own 7 and 6; grad_clip small enough to clip at every step (the clipped step depends on the
# norm over both ranks' slices); momentum and weight decay: the optimizer state of W goes through the checkpoint
COMMON = [
    *TINY,
    "data.train_identities=13",
    "loss.name=a3m-i",
    "loss.reinit={step: 2}",
    "max_steps=5",
    "validate.every_epochs=0",
    "grad_clip=0.05",
    "schedule.kind=constant",
]
SHARDED = [*COMMON, "loss.params={s: 8, m: 0.2, sharded: true}"]
DENSE = [*COMMON, "loss.params={s: 8, m: 0.2}"]
STOP_AT = 3


class _InterruptAt(Trainer):
    """Ctrl-C (a real SIGINT to this process) arriving during step STOP_AT, on every rank."""

    def _train_step(self, x, y):
        out = super()._train_step(x, y)
        if self.step + 1 == STOP_AT:
            os.kill(os.getpid(), signal.SIGINT)
        return out


def _worker(rank: int, world: int, root: str) -> None:
    from veriloss.train import distributed as D

    D.init_from_env("gloo")
    quiet = {"log": lambda _m: None}
    straight = Trainer.from_config(load_config(None, SHARDED), f"{root}/straight", **quiet)
    assert (
        isinstance(straight.head, A3MIHead) and straight.head.sharded and straight.head.weight.shape == (7 - rank, 16)
    )
    ignored = straight.train_module.parameters_to_ignore  # the head is kept out of DDP
    assert ignored == {"loss.weight"}, ignored
    straight.fit()
    first = _InterruptAt.from_config(load_config(None, SHARDED), f"{root}/resumed", **quiet)
    assert first.fit() == {"status": "interrupted", "step": STOP_AT}
    dist.barrier()
    if rank == 0:
        shutil.copytree(f"{root}/resumed", f"{root}/at_stop")
    dist.barrier()
    resumed = Trainer.from_config(load_config(None, SHARDED), f"{root}/resumed", resume=True, **quiet)
    assert resumed.step == STOP_AT
    resumed.fit()


# a streaming sharded head (chunk_size): sparse prototype gradients, LazySGD, under DDP for the backbone
STREAM = [*TINY, "loss.name=qmargin", "max_steps=4", "validate.every_epochs=0", "optim.name=lazy-sgd"]
STREAM_SHARDED = [*STREAM, "loss.params={s: 8, m: 0.5, chunk_size: 4, sharded: true}"]
STREAM_ONE = [*STREAM, "loss.params={s: 8, m: 0.5, chunk_size: 4}"]


def _stream_worker(rank: int, world: int, root: str) -> None:
    from veriloss.train import distributed as D

    D.init_from_env("gloo")
    Trainer.from_config(load_config(None, STREAM_SHARDED), f"{root}/stream", log=lambda _m: None).fit()


def _assert_close_states(a: dict, b: dict, atol: float = 2e-5, rtol: float = 1e-4) -> None:
    for part in ("backbone", "loss"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            x, y = a[part][key].float(), b[part][key].float()
            assert x.shape == y.shape and torch.allclose(x, y, atol=atol, rtol=rtol), (part, key)


def _state(trainer: Trainer) -> dict:
    return {"backbone": trainer.backbone.state_dict(), "loss": trainer.loss.state_dict()}


def test_sharded_head_training_equals_one_process_and_resumes(tmp_path):
    torch.set_num_threads(1)
    single = Trainer.from_config(load_config(None, DENSE), tmp_path / "single", log=lambda _m: None)
    single.fit()
    run_processes(_worker, 2, str(tmp_path))

    straight = load_checkpoint(tmp_path / "straight")
    assert straight["step"] == 5 and straight["loss"]["weight"].shape == (13, 16)  # whole W, the dense layout
    _assert_close_states(straight, _state(single))
    # the momentum of W, gathered whole, equals the dense run's
    head_index = len(single.optimizer.param_groups[0]["params"])  # the head's group comes after the backbone's
    buf = straight["optimizer"]["state"][head_index]["momentum_buffer"]
    assert torch.allclose(buf, single.optimizer.state[single.head.weight]["momentum_buffer"], atol=2e-5, rtol=1e-4)

    resumed = load_checkpoint(tmp_path / "resumed")  # interrupted at step 3, resumed with 2 processes
    assert resumed["step"] == 5
    for part in ("backbone", "loss"):
        for key, value in straight[part].items():
            assert torch.equal(value, resumed[part][key]), (part, key)

    # the 2-process checkpoint of step 3 resumed in one process with the dense head
    assert load_checkpoint(tmp_path / "at_stop")["step"] == STOP_AT
    one = Trainer.from_config(load_config(None, DENSE), tmp_path / "at_stop", resume=True, log=lambda _m: None)
    assert one.step == STOP_AT
    one.fit()
    _assert_close_states(_state(one), _state(single))


def test_streaming_sharded_head_with_lazy_sgd_equals_one_process(tmp_path):
    """With chunk_size the slices get sparse gradients (LazySGD, momentum and weight decay on): the same rows are
    touched at the same steps as by the one-process streaming head, so the runs are equal."""
    torch.set_num_threads(1)
    one = Trainer.from_config(load_config(None, STREAM_ONE), tmp_path / "one", log=lambda _m: None)
    one.fit()
    run_processes(_stream_worker, 2, str(tmp_path))
    _assert_close_states(load_checkpoint(tmp_path / "stream"), _state(one))


def test_sharded_needs_an_alpha_head_and_a_boolean(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="only the α heads"):
        Trainer.from_config(load_config(None, [*TINY, "loss.name=arcface", "loss.params={sharded: true}"]), tmp_path)
    with pytest.raises(ValueError, match="true or false"):
        Trainer.from_config(load_config(None, [*TINY, "loss.name=alpha", "loss.params={sharded: 2}"]), tmp_path)
