"""Identification (1:N) metrics (docs/evaluation.md §Metrics): closed-set rank-k and open-set DIR/FNIR at FPIR.

Inputs: a probe × gallery similarity matrix (tensor or array, higher = more similar), integer probe labels and
gallery labels. A gallery identity may have several entries: its score for a probe is the best of them.

Ties are counted against the probe (pessimistic): the rank of the mate is 1 + the number of *other* gallery
identities scoring at least as high as the mate, so a result never depends on the order of tied entries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_int
from ._scores import check_fars, floor_far_count, top_values

__all__ = ["DirAtFpir", "dir_at_fpir", "identification_ranks", "rank_k_accuracy"]


@dataclass(frozen=True)
class DirAtFpir:
    """Open-set detection-and-identification rate at a false-positive identification rate (FNIR = 1 − DIR).

    ``threshold`` is the smallest observed score above the (k+1)-th largest non-mated top score, k = ⌊fpir·N_nm⌋;
    ``nonmated_admitted`` ≤ k non-mated searches pass it. Not measurable (None values) when fpir·N_nm < 1.
    """

    dir: float | None
    fnir: float | None
    threshold: float | None
    fpir_target: float
    rank: int
    k: int
    nonmated_admitted: int | None
    n_mated: int
    n_nonmated: int
    measurable: bool

    def __float__(self) -> float:
        if self.dir is None:
            raise ValueError(
                f"DIR@FPIR={self.fpir_target:g} is not measurable with {self.n_nonmated} non-mated searches "
                f"(FPIR·N = {self.fpir_target * self.n_nonmated:.3g} < 1)"
            )
        return self.dir


def _matrix(scores: object) -> torch.Tensor:
    s = scores if isinstance(scores, torch.Tensor) else torch.as_tensor(np.asarray(scores))
    s = s.detach().cpu()
    if s.dim() != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"scores must be a non-empty (probes, gallery) matrix, got shape {tuple(s.shape)}")
    if not s.is_floating_point():
        s = s.double()
    if not bool(torch.isfinite(s).all()):
        raise ValueError(f"scores contain {int((~torch.isfinite(s)).sum())} NaN/infinite value(s); they must be finite")
    return s.double()


def _labels(y: object, n: int, name: str) -> np.ndarray:
    a = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with {n} entries (one per row/column of scores), got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer identity labels, got dtype {a.dtype}")
    return a.astype(np.int64)


def _identity_scores(scores: object, probe_labels: object, gallery_labels: object):
    """(best score per probe and gallery identity (P × I), identity labels, probe labels)."""
    s = _matrix(scores)
    p_lab = _labels(probe_labels, s.shape[0], "probe_labels")
    g_lab = _labels(gallery_labels, s.shape[1], "gallery_labels")
    ids, inv = np.unique(g_lab, return_inverse=True)
    if ids.size == g_lab.size:
        id_s = s[:, torch.from_numpy(np.argsort(inv))]
    else:
        idx = torch.from_numpy(inv).expand(s.shape[0], -1)
        id_s = torch.full((s.shape[0], ids.size), -math.inf, dtype=s.dtype).scatter_reduce_(1, idx, s, "amax")
    return id_s, ids, p_lab


def _mates(id_s: torch.Tensor, ids: np.ndarray, p_lab: np.ndarray):
    """(has a mate, mate score, pessimistic rank) per probe (score and rank meaningful where mated)."""
    pos = np.searchsorted(ids, p_lab)
    mated = (pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == p_lab)
    col = torch.from_numpy(np.where(mated, pos, 0))
    mate = id_s.gather(1, col[:, None])[:, 0]
    rank = (id_s >= mate[:, None]).sum(1)
    return mated, mate.numpy(), rank.numpy()


def identification_ranks(scores: object, probe_labels: object, gallery_labels: object) -> np.ndarray:
    """Rank of each probe's mate (1 = best), ties counted against it; 0 for probes without a mate in the gallery."""
    id_s, ids, p_lab = _identity_scores(scores, probe_labels, gallery_labels)
    mated, _, rank = _mates(id_s, ids, p_lab)
    return np.where(mated, rank, 0).astype(np.int64)


def rank_k_accuracy(
    scores: object, probe_labels: object, gallery_labels: object, k: int | Sequence[int] = 1
) -> float | list[float]:
    """Closed-set rank-k identification accuracy: the fraction of probes whose mate ranks ≤ k (CMC at k).

    Every probe must have a mate in the gallery (closed set). ``k`` may be a sequence (one float each).
    """
    what = "an integer ≥ 1 or a non-empty sequence of them"
    scalar = not isinstance(k, (list, tuple, np.ndarray, torch.Tensor)) or np.ndim(k) == 0
    ks = [check_int(v, "k", 1, what=what) for v in ([k] if scalar else list(k))]
    if not ks:
        raise ValueError(f"k must be {what}, got {k!r}")
    ranks = identification_ranks(scores, probe_labels, gallery_labels)
    if np.any(ranks == 0):
        raise ValueError(
            f"closed-set identification needs a mate for every probe, but {int(np.sum(ranks == 0))} probe(s) "
            "have no gallery entry with their label; use dir_at_fpir for open-set evaluation"
        )
    out = [float(np.mean(ranks <= v)) for v in ks]
    return out[0] if scalar else out


def dir_at_fpir(
    scores: object,
    probe_labels: object,
    gallery_labels: object,
    fpir: float | Sequence[float],
    rank: int = 1,
) -> DirAtFpir | list[DirAtFpir]:
    """Open-set DIR (and FNIR = 1 − DIR) at FPIR = f, rank R (NIST FRVT 1:N / IJB-C definitions).

    Non-mated probes (label absent from the gallery) give their top gallery score; FPIR(t) is the fraction of them
    ≥ t. With k = ⌊f·N_nm⌋ and v the (k+1)-th largest non-mated top score, every threshold > v has FPIR ≤ f, so
    DIR = #{mated probes whose mate ranks ≤ R and scores > v} / N_mated (the same order-statistic rule as
    TAR@FAR). Not measurable when f·N_nm < 1.
    """
    fpirs, scalar = check_fars(fpir, "fpir")
    rank = check_int(rank, "rank", 1)
    id_s, ids, p_lab = _identity_scores(scores, probe_labels, gallery_labels)
    mated, mate, ranks = _mates(id_s, ids, p_lab)
    n_m, n_nm = int(mated.sum()), int((~mated).sum())
    if n_m == 0 or n_nm == 0:
        raise ValueError(
            f"open-set identification needs mated and non-mated probes; got {n_m} mated and {n_nm} non-mated"
        )
    nm_top = id_s[torch.from_numpy(~mated)].amax(1).numpy()
    hit = np.sort(mate[mated & (ranks <= rank)])
    ks = [floor_far_count(f, n_nm) for f in fpirs]
    top = top_values(nm_top, max(ks) + 1)
    asc = top[::-1]
    observed = np.sort(np.concatenate([mate[mated], nm_top]))
    out = []
    for f, k in zip(fpirs, ks):
        if k < 1:
            out.append(DirAtFpir(None, None, None, f, int(rank), k, None, n_m, n_nm, False))
            continue
        v = top[k]
        admitted = int(asc.size - np.searchsorted(asc, v, side="right"))
        above = observed[np.searchsorted(observed, v, side="right") :]
        thr = float(above[0]) if above.size else math.inf
        d = (hit.size - int(np.searchsorted(hit, v, side="right"))) / n_m
        out.append(DirAtFpir(d, 1.0 - d, thr, f, int(rank), k, admitted, n_m, n_nm, True))
    return out[0] if scalar else out
