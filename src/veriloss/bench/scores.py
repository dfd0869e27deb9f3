"""A run's test scores kept small for the bench's DET plot: exact genuine scores + the impostor summary.

An all-pairs evaluation of Omniglot's 13,180 test images has 87M impostor scores; the all-pairs protocol already
reduces them to an :class:`~veriloss.metrics.ImpostorSummary` (a 2^20-bin histogram, the exact top scores, exact
values of the few bins EER/minDCF need). This module stores that summary with the genuine scores in one ``.npz``
(about 1 MB for Omniglot): the histogram sparsely (occupied bins only) and the top scores only as far as the
largest FAR asked for needs (⌊f·N⌋ + 1). The loaded pair feeds :func:`veriloss.report.plots.det_plot` and every
metric of :mod:`veriloss.metrics`, with the same values as the full evaluation for those FARs.

Choice: scores are float32 (the protocol scores in float32), so the float64 top and refined values are stored as
float32 without loss when they are float32-representable, which is checked; otherwise float64 is kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..metrics import ImpostorSummary
from ..metrics._scores import check_fars, floor_far_count
from ..metrics.bins import n_bins
from ..report._atomic import atomic_write

__all__ = ["SCORES_NAME", "compute_scores", "load_scores", "save_scores"]

SCORES_NAME = "scores.npz"


def _compact(values: np.ndarray) -> np.ndarray:
    """float32 when that is exact, else the float64 values themselves."""
    v32 = values.astype(np.float32)
    return v32 if np.array_equal(v32.astype(np.float64), values) else values


def save_scores(path: str | os.PathLike, genuine: np.ndarray, impostor: ImpostorSummary, far: Sequence[float]) -> Path:
    """Write ``genuine`` and the impostor summary (top kept for TAR@FAR at each ``far``) to ``path`` atomically."""
    fars, _ = check_fars(list(far))
    if not isinstance(impostor, ImpostorSummary):
        raise ValueError(f"impostor must be an ImpostorSummary (the all-pairs protocol's), got {type(impostor)}")
    keep = max(floor_far_count(f, impostor.n) for f in fars) + 1
    if impostor.top.size < min(keep, impostor.n):
        raise ValueError(
            f"the impostor summary keeps {impostor.top.size} top scores; TAR@FAR={min(fars):g}…{max(fars):g} "
            f"needs {min(keep, impostor.n)}"
        )
    occupied = np.flatnonzero(impostor.counts)
    fingerprint, auc_num = impostor.auc_state if impostor.auc_state is not None else ((-1, 0.0), -1)
    arrays = {
        "genuine": np.asarray(genuine),
        "n": np.int64(impostor.n),
        "shift": np.int64(impostor.shift),
        "bins": occupied.astype(np.int64),
        "counts": impostor.counts[occupied].astype(np.int64),
        "top": _compact(np.asarray(impostor.top[:keep], dtype=np.float64)),
        "refined_bins": np.asarray(impostor.refined_bins, dtype=np.int64),
        "refined_values": _compact(np.asarray(impostor.refined_values, dtype=np.float64)),
        "auc_fingerprint_n": np.int64(fingerprint[0]),
        "auc_fingerprint_sum": np.float64(fingerprint[1]),
        "auc_numerator": np.int64(auc_num),
        "far": np.asarray(fars, dtype=np.float64),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def load_scores(path: str | os.PathLike) -> tuple[np.ndarray, ImpostorSummary]:
    """(genuine scores, impostor summary) as written by :func:`save_scores`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"scores file {str(path)!r} does not exist")
    try:
        with np.load(path) as z:
            shift = int(z["shift"])
            counts = np.zeros(n_bins(shift), dtype=np.int64)
            counts[z["bins"]] = z["counts"]
            n_fp = int(z["auc_fingerprint_n"])
            auc_state = None if n_fp < 0 else ((n_fp, float(z["auc_fingerprint_sum"])), int(z["auc_numerator"]))
            summary = ImpostorSummary(
                n=int(z["n"]),
                shift=shift,
                counts=counts,
                top=z["top"].astype(np.float64),
                refined_bins=z["refined_bins"].astype(np.int64),
                refined_values=z["refined_values"].astype(np.float64),
                auc_state=auc_state,
            )
            genuine = z["genuine"]
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"scores file {str(path)!r} is unreadable or not a veriloss scores file: {err}") from None
    return genuine, summary


def compute_scores(run_dir: str | os.PathLike, far: Sequence[float]) -> Path:
    """Re-evaluate a finished run from its checkpoint (all pairs of its test split) and write ``scores.npz``.

    Used for a run whose scores were not captured at the end of training; the embeddings are those of
    :meth:`veriloss.train.Trainer.evaluate` (the final backbone, float32, eval mode).
    """
    from ..checkpoint import load_checkpoint
    from ..data import build_dataset
    from ..inference import embed
    from ..models import load_backbone
    from ..protocols import all_pairs
    from ..train.build import evaluation_chunks

    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir)
    backbone, config = load_backbone(state), state["config"]
    test_set = build_dataset(config["data"], "test")
    chunks = evaluation_chunks(config["data"], test_set)
    emb = embed(backbone, test_set, batch_size=int(config["validate"]["batch_size"]), chunks=chunks)
    result = all_pairs(emb, test_set.labels, far=list(far))
    return save_scores(run_dir / SCORES_NAME, result.genuine, result.impostor, far)
