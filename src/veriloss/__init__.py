"""veriloss: losses, exact low-FAR evaluation and training for biometric verification (face and speaker).

Subpackages load when first used (``import veriloss`` alone imports nothing heavy):

- :mod:`veriloss.heads` (prototype heads), :mod:`veriloss.pairwise` (pair, triplet, centre losses),
  :mod:`veriloss.losses` (one factory for both), :mod:`veriloss.functional` (the maths);
- :mod:`veriloss.metrics` (TAR@FAR, EER, minDCF, ROC/DET), :mod:`veriloss.protocols` (all pairs, trial lists, IJB);
- :mod:`veriloss.models` (backbones), :mod:`veriloss.data` (datasets, samplers), :mod:`veriloss.inference` (embed);
- :mod:`veriloss.train` (the trainer), :mod:`veriloss.bench`, :mod:`veriloss.report`.

>>> import veriloss
>>> veriloss.heads.create("arcface", 128, 10).num_classes
10
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "bench",
    "checkpoint",
    "data",
    "functional",
    "heads",
    "inference",
    "losses",
    "metrics",
    "models",
    "pairwise",
    "protocols",
    "report",
    "train",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'veriloss' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES))
