"""A tiny synthetic suite for bench tests: a base recipe of seconds and two losses (one with α statistics)."""

from __future__ import annotations

from pathlib import Path

BASE = """\
seed: 0
data: {name: synthetic, image_size: 28, train_identities: 12, test_identities: 8, samples_per_identity: 6}
model: {name: small-cnn, width: 8, embedding_dim: 16}
batch_size: 16
amp: none
max_steps: 3
schedule: {warmup_steps: 1}
log: {every_steps: 1, tensorboard: false, progress: false}
validate: {every_epochs: 100, far: [0.01]}
checkpoint: {every_steps: 100}
loss: {name: arcface, params: {s: 16.0, m: 0.3}}
"""

SUITE = """\
base: tiny_base.yaml
entries:
  arcface:
    loss: {name: arcface, params: {s: 16.0, m: 0.3}}
  qmargin:
    loss: {name: qmargin, params: {alpha: 1.5, s: 8.0, m: 0.5}}
"""


def write_tiny_suite(folder: Path) -> Path:
    """Write ``tiny_base.yaml`` and ``tiny_suite.yaml`` into ``folder``; return the suite's path.

    Test split: 8 identities × 6 images = 48 embeddings, 120 genuine and 1,008 impostor pairs (TAR@FAR = 1e-3 is
    measurable, 1e-4 is not).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny_base.yaml").write_text(BASE)
    path = folder / "tiny_suite.yaml"
    path.write_text(SUITE)
    return path
