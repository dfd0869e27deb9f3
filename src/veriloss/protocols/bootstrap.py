"""Subject-level bootstrap front ends (docs/evaluation.md §Confidence intervals): all pairs of labelled embeddings,
and pair/trial lists whose sides name identities. The resampling and the metrics live in
:mod:`veriloss.metrics.bootstrap`; here the pairs are scored once, as :func:`~veriloss.protocols.all_pairs` scores
them, and reduced to what every replicate needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from .._checks import check_embeddings, check_int, check_labels
from ..functional.normalize import l2_norm
from ..metrics import eer, min_dcf
from ..metrics._scores import as_scores
from ..metrics.bootstrap import (
    BootstrapResult,
    StoreTooSmall,
    _check_draw_args,
    _check_rates,
    _Engine,
    _result,
    _Store,
    bootstrap_scores,
)
from .all_pairs import _genuine, _lead, _prepared, _sample_rows, check_pairs

__all__ = ["bootstrap_all_pairs", "bootstrap_trials", "key_identity"]


def key_identity(key: str) -> str:
    """The identity a VoxCeleb/LFW-style key names: its first path component (``id10270/x6u/00001.wav`` →
    ``id10270``, ``Aaron_Peirsol/Aaron_Peirsol_0001.jpg`` → ``Aaron_Peirsol``).

    >>> key_identity("id10270/x6uYqmx31kE/00001.wav")
    'id10270'
    """
    if not isinstance(key, str) or "/" not in key.strip("/"):
        raise ValueError(
            f"key {key!r} names no identity: the subject bootstrap reads the identity from the first path "
            "component (identity/utterance); pass the identities explicitly instead"
        )
    return key.strip("/").split("/", 1)[0]


def bootstrap_trials(
    scores: object,
    labels: object,
    enroll_ids: Sequence[object],
    test_ids: Sequence[object],
    far: float | Sequence[float] = (1e-3, 1e-2),
    p_targets: Sequence[float] = (0.01, 0.05),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Subject bootstrap of a scored trial or pair list: ``labels`` (True = target), and the identity of each side.

    A target trial must join one identity (enroll_ids[k] == test_ids[k]) and counts c_i times; a non-target trial
    must join two and counts c_i·c_j times (convention and interval: :func:`~veriloss.metrics.bootstrap_scores`).

    >>> s = [0.9, 0.8, 0.7, 0.1, 0.3, 0.2, 0.4]
    >>> y = [True, True, True, False, False, False, False]
    >>> a, b = ["x", "y", "z", "x", "y", "x", "z"], ["x", "y", "z", "y", "z", "z", "y"]
    >>> bootstrap_trials(s, y, a, b, far=0.5, replicates=20).eer.value
    0.0
    """
    s = as_scores(scores, "scores")
    y = np.asarray(labels)
    if y.ndim != 1 or y.size != s.size or y.dtype.kind not in "biu" or not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be a 1-D array of {s.size} booleans (True = target trial)")
    y = y.astype(bool)
    ea, eb = np.asarray(enroll_ids), np.asarray(test_ids)
    if ea.shape != (s.size,) or eb.shape != (s.size,):
        raise ValueError(
            f"enroll_ids and test_ids must name one identity per trial ({s.size}), got {ea.shape} and {eb.shape}"
        )
    bad = np.flatnonzero(y & (ea != eb))
    if bad.size:
        raise ValueError(
            f"target trial {int(bad[0])} joins identities {ea[bad[0]].item()!r} and {eb[bad[0]].item()!r} "
            f"({bad.size} such); a target trial must join one identity: check the labels or the identities"
        )
    return bootstrap_scores(s[y], ea[y], s[~y], (ea[~y], eb[~y]), far, p_targets, c_miss, c_fa, replicates, level, seed)


def _genuine_runs(seg_end: np.ndarray) -> np.ndarray:
    """The label run (index of its first row) of each score :func:`all_pairs._genuine` returns, in its order: the
    runs grouped by padded size, each run's scores contiguous."""
    starts = np.flatnonzero(np.diff(seg_end, prepend=-1))
    sizes = seg_end[starts] - starts
    keep = sizes > 1
    starts, sizes = starts[keep], sizes[keep]
    pad = np.left_shift(1, np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64))
    out = [np.repeat(starts[pad == p], (sizes * (sizes - 1) // 2)[pad == p]) for p in np.unique(pad)]
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def _collect(e: torch.Tensor, ys_idx: np.ndarray, seg_end: np.ndarray, tau: float, block_size: int):
    """Every impostor score ≥ tau with the identity indices of its two rows, scored in all_pairs' blocks."""
    n = e.shape[0]
    scores, a, b = [], [], []
    for i0 in range(0, n, block_size):
        i1 = min(n, i0 + block_size)
        w = int(seg_end[i1 - 1])
        lead = _lead(e, seg_end, i0, i1)
        rows, cols = np.nonzero(np.arange(i0, w)[None, :] >= seg_end[i0:i1, None])
        sel = np.flatnonzero(lead >= tau)
        scores.append(lead[sel])
        a.append(ys_idx[i0 + rows[sel]])
        b.append(ys_idx[i0 + cols[sel]])
        if w < n:
            rest = torch.mm(e[i0:i1], e[w:].T).numpy()
            r, c = np.nonzero(rest >= tau)
            scores.append(rest[r, c])
            a.append(ys_idx[i0 + r])
            b.append(ys_idx[w + c])
    return np.concatenate(scores), np.concatenate(a), np.concatenate(b)


def bootstrap_all_pairs(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    far: float | Sequence[float] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
    p_targets: Sequence[float] = (0.01, 0.05),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    block_size: int = 1024,
) -> BootstrapResult:
    """Subject bootstrap of an all-pairs evaluation (the pairs and scores of :func:`~veriloss.protocols.all_pairs`).

    The identities are the distinct ``labels``; a replicate's multiplicities c weight genuine pairs of i by c_i and
    impostor pairs of i ≠ j by c_i·c_j, so N_r = ((Σ c_i n_i)² − Σ (c_i n_i)²)/2 impostors (n_i samples of i). The
    pairs are scored once: the genuine scores are kept with their identity, and the impostor scores above a level
    chosen from a 256-row sample (enough for the largest FAR, the EER and minDCF of every replicate, with margin)
    with their identity pair; every replicate's metrics are then exact (equal to materializing the resampled pairs;
    :func:`~veriloss.metrics.bootstrap_scores`). When a replicate needs a score below the kept ones, the level is
    lowered and the impostors scanned again (never an approximation). The point estimates equal all_pairs'.

    >>> torch.manual_seed(0) and None
    >>> x = torch.randn(40, 8) + 2 * torch.randn(10, 8).repeat_interleave(4, 0)
    >>> r = bootstrap_all_pairs(x, torch.arange(10).repeat_interleave(4), far=1e-2, replicates=100)
    >>> r.eer.low <= r.eer.value <= r.eer.high
    True
    """
    check_embeddings(embeddings)
    n = embeddings.shape[0]
    check_labels(labels, n)
    block_size = check_int(block_size, "block_size", 1, what="a positive integer")
    fars, ps, cm, cf = _check_rates(far, p_targets, c_miss, c_fa)
    replicates, seed, level = _check_draw_args(replicates, seed, level)
    with torch.no_grad():
        x = embeddings.detach().cpu().float()
        if bool((l2_norm(x, dim=1) == 0).any()):
            raise ValueError("embeddings has all-zero row(s); cosine similarity needs non-zero vectors")
        y = labels.detach().cpu().long()
        check_pairs(y)
        e, ys, seg_end = _prepared(x, y)
        identities, ys_idx, sizes = np.unique(ys, return_inverse=True, return_counts=True)
        ys_idx = ys_idx.reshape(-1).astype(np.int32)  # (the identity arrays of millions of impostor scores)
        g = _genuine(e, seg_end)
        g_ids = ys_idx[_genuine_runs(seg_end)]
        n_gen = int(np.sum(seg_end - np.arange(n) - 1))
        n_imp = n * (n - 1) // 2 - n_gen
        sample = np.concatenate(_sample_rows(e, ys))
        q = max(4 * max(fars), 1.5 * eer(g, sample).eer)  # margins for the spread of the replicates
        for p in ps:
            raw = min_dcf(g, sample, p, cm, cf, normalized=False).min_dcf
            q = max(q, 1.5 * raw / (cf * (1 - p)))
        while True:
            complete = q >= 1
            tau = -math.inf if complete else float(np.quantile(sample, 1 - q))
            s, a, b = _collect(e, ys_idx, seg_end, tau, block_size)
            store = _Store(s, a, b, identities.size, complete=complete, blocks=256)
            engine = _Engine(g, g_ids, store, identities.size, sample_sizes=sizes)
            try:
                return _result(engine, identities, fars, ps, cm, cf, replicates, level, seed, n_gen, n_imp)
            except StoreTooSmall:
                q = min(1.0, 4 * q)
