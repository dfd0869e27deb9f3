"""Exact resume with every kind of randomness, and --resume with a changed config.

A run interrupted (a real SIGINT) mid-epoch or at an epoch boundary and resumed must end with exactly the tensors
of the uninterrupted run: dropout masks and ElasticFace's per-sample margins come from the global RNG (carried by
the checkpoint), augmentation from per-sample seeds, worker processes from the loader's own generator.
"""

from __future__ import annotations

import json

import pytest
import torch

from veriloss.checkpoint import load_checkpoint
from veriloss.train import Trainer, load_config
from veriloss.train.loader import training_loader

from .test_trainer import TINY, _InterruptAt, _state

QUIET = {"log": lambda _m: None}

RANDOM = {
    "dropout": ("model.dropout=0.2", "loss.name=cosface", "loss.params={s: 16, m: 0.2}"),
    "elasticface": ("loss.name=elasticface-arc", "loss.params={s: 16, m: 0.3, sigma: 0.05}"),
    "augmentation": ("data.augment=true", "model.dropout=0.1", "loss.name=arcface", "loss.params={s: 16, m: 0.2}"),
    "workers": ("num_workers=2", "data.augment=true", "model.dropout=0.2", "loss.name=elasticface-cos"),
    "pk-sampler": ("sampler={name: pk, p: 4, k: 4}", "model.dropout=0.2", "loss.name=elasticface-arc+"),
    "class-balanced": ("sampler.name=class-balanced", "data.augment=true", "model.dropout=0.2"),
}


def _config(*extra: str) -> dict:
    return load_config(None, [*TINY, "epochs=3", "validate.every_epochs=1", *extra])


def _assert_same(a: Trainer, b: Trainer) -> None:
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, different


@pytest.mark.parametrize("stop_at", [2, 4], ids=["mid-epoch", "epoch-boundary"])  # 4 steps per epoch
@pytest.mark.parametrize("kind", list(RANDOM))
def test_resume_is_exact_with_randomness_in_the_run(tmp_path, kind, stop_at):
    config = _config(*RANDOM[kind])
    straight = Trainer.from_config(config, tmp_path / "a", **QUIET)
    straight.fit()
    _InterruptAt.stop_at = stop_at
    assert _InterruptAt.from_config(config, tmp_path / "b", **QUIET).fit() == {"status": "interrupted", "step": stop_at}
    resumed = Trainer.from_config(config, tmp_path / "b", resume=True, **QUIET)
    assert resumed.step == stop_at
    metrics = resumed.fit()
    _assert_same(straight, resumed)
    assert metrics["eer"] == json.loads((tmp_path / "a" / "metrics.json").read_text())["systems"][0]["eer"]


def test_a_randomized_run_is_not_reproduced_by_luck(tmp_path):
    """The exactness above is not vacuous: two seeds give different weights, and dropout really draws."""
    a = Trainer.from_config(_config(*RANDOM["dropout"]), tmp_path / "a", **QUIET)
    a.fit()
    b = Trainer.from_config(_config(*RANDOM["dropout"], "model.dropout=0.5"), tmp_path / "b", **QUIET)
    b.fit()
    assert not torch.equal(a.backbone.state_dict()["neck.fc.weight"], b.backbone.state_dict()["neck.fc.weight"])


def test_building_the_loader_draws_nothing_from_the_global_rng(tmp_path):
    trainer = Trainer.from_config(_config("num_workers=0"), tmp_path, **QUIET)
    before = torch.get_rng_state()
    iter(training_loader(trainer.train_set, trainer._epoch_batches(0), 16, seed=0, epoch=0))
    assert torch.equal(before, torch.get_rng_state())


# --- a changed config on --resume ------------------------------------------------------------------------------------
def _interrupted(tmp_path, *extra: str):
    _InterruptAt.stop_at = 2
    _InterruptAt.from_config(_config(*extra), tmp_path, **QUIET).fit()


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ("seed=1", "seed"),
        ("batch_size=8", "batch_size"),
        ("loss.params={s: 16, m: 0.3}", "loss.params.m"),
        ("model.width=4", "model.width"),
        ("optim.name=adamw", "optim.name"),
        ("epochs=4", "epochs"),
    ],
)
def test_resume_refuses_a_changed_config_naming_the_keys(tmp_path, change, key):
    base = ("loss.name=cosface", "loss.params={s: 16, m: 0.2}")
    _interrupted(tmp_path, *base)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match=rf"another config \({key}: .* stored, .* now\).*--force"):
        Trainer.from_config(_config(*base, change), tmp_path, resume=True, **QUIET)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before  # nothing touched


def test_safe_keys_may_change_and_force_records_the_change(tmp_path):
    base = ("loss.name=cosface", "loss.params={s: 16, m: 0.2}")
    _interrupted(tmp_path / "safe", *base)
    safe = _config(*base, "log.every_steps=1", "checkpoint.every_steps=3", "validate.far=[0.1]", "num_workers=1")
    assert Trainer.from_config(safe, tmp_path / "safe", resume=True, **QUIET).step == 2

    _interrupted(tmp_path / "forced", *base)
    messages: list[str] = []
    forced = Trainer.from_config(
        _config(*base, "seed=7"), tmp_path / "forced", resume=True, force=True, log=messages.append
    )
    assert any("--force" in m and "seed: 0 stored, 7 now" in m for m in messages)
    forced.fit()
    expected = [{"step": 2, "changed": {"seed": {"stored": 0, "now": 7}}}]
    assert load_checkpoint(tmp_path / "forced")["config_changes"] == expected
    assert json.loads((tmp_path / "forced" / "metrics.json").read_text())["meta"]["config_changes"] == expected


def test_force_with_an_incompatible_model_is_one_clear_error(tmp_path):
    _interrupted(tmp_path, "loss.name=cosface")
    with pytest.raises(ValueError, match="does not fit the configured model, loss or optimizer"):
        Trainer.from_config(_config("loss.name=cosface", "model.width=4"), tmp_path, resume=True, force=True, **QUIET)
