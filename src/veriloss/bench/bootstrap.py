"""A run's subject-bootstrap replicates, kept small for paired comparisons: ``bootstrap.npz`` in its run folder.

At the end of a run the bench embeds the evaluated split once more with the final backbone and calls
:func:`veriloss.protocols.bootstrap_all_pairs` with fixed settings (:data:`BOOTSTRAP_SETTINGS`: 1000 replicates,
seed 0, 95%), so that every run of a bench scored on the same identities gets the *same* multiplicities in replicate
r (common random numbers: the draws depend only on the seed and the sorted identity set). The file keeps, per
metric (TAR@FAR at each bench FAR, EER, minDCF at p_target = 0.01), the point estimate and the R replicate values,
plus what the draws depended on (identities, seed, replicates) so that :mod:`.compare` can refuse to pair runs
drawn differently. About 50 kB per run.

``bootstrap.npz`` arrays: ``metrics`` (M metric names: ``tar@far=<f>``, ``eer``, ``min_dcf@p=<p>``), ``point`` (M,),
``replicates`` (M, R) float64 (NaN where a replicate's metric is undefined), ``identities`` (the sorted labels drawn
over), ``far``, ``p_targets``, ``seed``, ``level``, ``n_genuine``, ``n_impostor`` and ``split`` (the evaluated split:
"test" or "validation").

Runs finished before this file existed have none; :func:`compute_bootstrap` makes it from the run's checkpoint (one
embedding pass and the bootstrap, no training).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..report._atomic import atomic_write

__all__ = [
    "BOOTSTRAP_NAME",
    "BOOTSTRAP_SETTINGS",
    "RunBootstrap",
    "bootstrap_embeddings",
    "compute_bootstrap",
    "load_bootstrap",
    "save_bootstrap",
    "trainer_bootstrap",
]

BOOTSTRAP_NAME = "bootstrap.npz"

#: the same for every run of every bench, so that runs on the same identities share their draws
BOOTSTRAP_SETTINGS = {"replicates": 1000, "seed": 0, "level": 0.95, "p_targets": (0.01,)}


@dataclass(frozen=True, eq=False)
class RunBootstrap:
    """One run's replicates: ``point[k]`` and ``replicates[k]`` (shape (R,)) of metric ``metrics[k]``."""

    metrics: tuple[str, ...]
    point: np.ndarray
    replicates: np.ndarray = field(repr=False)
    identities: np.ndarray = field(repr=False)
    seed: int
    level: float
    split: str
    n_genuine: int
    n_impostor: int

    def index(self, metric: str) -> int:
        try:
            return self.metrics.index(metric)
        except ValueError:
            raise KeyError(f"no {metric!r} in this run's bootstrap (it has {', '.join(self.metrics)})") from None

    @property
    def draws(self) -> int:
        return int(self.replicates.shape[1])


def bootstrap_embeddings(embeddings, labels, far: Sequence[float], split: str = "test") -> RunBootstrap:
    """The bench's bootstrap (:data:`BOOTSTRAP_SETTINGS`) of all pairs of ``embeddings`` at the bench FARs."""
    from ..protocols import bootstrap_all_pairs

    s = BOOTSTRAP_SETTINGS
    res = bootstrap_all_pairs(
        embeddings,
        labels,
        far=[float(f) for f in far],
        p_targets=list(s["p_targets"]),
        replicates=int(s["replicates"]),
        level=float(s["level"]),
        seed=int(s["seed"]),
    )
    names = tuple(res.metrics)
    return RunBootstrap(
        names,
        np.array([res.metrics[k].value for k in names], dtype=np.float64),
        np.stack([np.asarray(res.metrics[k].replicates, dtype=np.float64) for k in names]),
        np.asarray(res.identities),
        res.seed,
        res.level,
        split,
        res.n_genuine,
        res.n_impostor,
    )


def save_bootstrap(path: str | os.PathLike, run: RunBootstrap, far: Sequence[float]) -> Path:
    """Write ``run`` to ``path`` atomically (compressed .npz)."""
    arrays = {
        "metrics": np.asarray(run.metrics, dtype=str),
        "point": run.point,
        "replicates": run.replicates,
        "identities": run.identities,
        "far": np.asarray(list(far), dtype=np.float64),
        "p_targets": np.asarray(BOOTSTRAP_SETTINGS["p_targets"], dtype=np.float64),
        "seed": np.int64(run.seed),
        "level": np.float64(run.level),
        "n_genuine": np.int64(run.n_genuine),
        "n_impostor": np.int64(run.n_impostor),
        "split": np.asarray(run.split, dtype=str),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def load_bootstrap(path: str | os.PathLike) -> RunBootstrap:
    """A :class:`RunBootstrap` as written by :func:`save_bootstrap`; ``ValueError`` names an unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"bootstrap file {str(path)!r} does not exist")
    try:
        with np.load(path) as z:
            return RunBootstrap(
                tuple(str(m) for m in z["metrics"]),
                z["point"].astype(np.float64),
                z["replicates"].astype(np.float64),
                z["identities"],
                int(z["seed"]),
                float(z["level"]),
                str(z["split"]),
                int(z["n_genuine"]),
                int(z["n_impostor"]),
            )
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(
            f"bootstrap file {str(path)!r} is unreadable or not a veriloss bootstrap file: {err}"
        ) from None


def trainer_bootstrap(trainer, far: Sequence[float]) -> RunBootstrap:
    """The bootstrap of a trained :class:`~veriloss.train.Trainer`'s evaluated split, embedded as its final
    evaluation embeds it (final backbone, eval mode, its test-time chunks)."""
    from ..inference import embed
    from ..train.build import evaluation_split

    extra = {"channels_last": True} if getattr(trainer, "channels_last", False) else {}
    emb = embed(
        trainer.backbone,
        trainer.test_set,
        None,
        int(trainer.config["validate"]["batch_size"]),
        trainer.device,
        chunks=trainer.test_chunks,
        **extra,
    )
    return bootstrap_embeddings(emb, trainer.test_set.labels, far, evaluation_split(trainer.config))


def compute_bootstrap(run_dir: str | os.PathLike, far: Sequence[float]) -> Path:
    """Make ``bootstrap.npz`` for a finished run from its checkpoint (the final backbone): embed the split its config
    evaluates (``validate.split``) and bootstrap all its pairs. No training."""
    from ..checkpoint import load_checkpoint
    from ..data import build_dataset
    from ..inference import embed
    from ..models import load_backbone
    from ..train.build import evaluation_chunks, evaluation_split

    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir)
    backbone, config = load_backbone(state), state["config"]
    split = evaluation_split(config)
    data = build_dataset(config["data"], split)
    chunks = evaluation_chunks(config["data"], data)
    emb = embed(backbone, data, batch_size=int(config["validate"]["batch_size"]), chunks=chunks)
    return save_bootstrap(run_dir / BOOTSTRAP_NAME, bootstrap_embeddings(emb, data.labels, far, split), far)
