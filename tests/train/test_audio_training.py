"""Audio through the same trainer: synthetic speakers → ECAPA-TDNN (fbank inside) → a margin loss → all-pairs test."""

from __future__ import annotations

import json

from veriloss.train import Trainer, load_config

AUDIO = [
    "data={name: synthetic-audio, train_speakers: 6, test_speakers: 4, utterances_per_speaker: 4, seconds: 1.0}",
    "model={name: ecapa-tdnn, channels: 32, mfa_channels: 48, attention_channels: 8, se_channels: 8, scale: 4,"
    " embedding_dim: 16, n_mels: 24}",
    "batch_size=8",
    "max_steps=4",
    "amp=none",
    "schedule.warmup_steps=1",
    "log.every_steps=2",
    "log.tensorboard=false",
    "log.progress=false",
    "validate.every_epochs=0",
    "validate.far=[0.01]",
]


def test_tiny_speaker_run_trains_and_evaluates_all_pairs(tmp_path):
    config = load_config(None, [*AUDIO, "loss.name=qmargin", "loss.params={alpha: 1.5, s: 8, m: 0.5}"])
    trainer = Trainer.from_config(config, tmp_path, log=lambda _m: None)
    assert trainer.train_set.num_classes == 6 and trainer.backbone.in_channels == 1
    record = trainer.fit()
    assert record["status"] == "finished" and record["steps"] == 4
    assert record["n_embeddings"] == 16 and record["n_genuine"] == 4 * 6
    assert record["eer"] == float(trainer.evaluate().eer)  # the report is the all-pairs EER of the final weights
    (saved,) = json.loads((tmp_path / "metrics.json").read_text())["systems"]
    assert saved["eer"] == record["eer"]
