"""Cohort score normalization: z-norm, t-norm, s-norm and adaptive s-norm (AS-norm).

For a trial (e, t) with raw score s, each side is compared (cosine) with every row of a cohort of impostor
embeddings:
  * z-norm (enrollment side): s_z = (s − μ_e) / σ_e, with μ_e, σ_e the mean and std of cos(e, c) over the
    cohort;
  * t-norm (test side):       s_t = (s − μ_t) / σ_t;
  * s-norm (symmetric):       (s_z + s_t) / 2;
  * adaptive (``top_k``): μ and σ over the k largest cohort scores of that side only (Sturim & Reynolds,
    ICASSP 2005; Cumani et al., Interspeech 2011; Matějka et al., Interspeech 2017). ``as-norm`` is s-norm
    with ``top_k``.
Choices: σ is the population std (ddof=0), as in WeSpeaker's ``score_norm.py``; the raw scores are taken as
given (they should be cosine scores of the same embeddings for the statistics to be on the same scale).
"""

from __future__ import annotations

import numpy as np
import torch

from veriloss._checks import check_embeddings, check_finite_tensor, check_int
from veriloss.functional.normalize import l2_norm, l2_normalize

__all__ = ["METHODS", "cohort_stats", "normalize_scores"]

METHODS = ("z-norm", "t-norm", "s-norm", "as-norm")


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(x)
    return t if t.dtype in (torch.float32, torch.float64) or not t.is_floating_point() else t.float()


def _unit(x: torch.Tensor, name: str) -> torch.Tensor:
    """Rows scaled to unit norm (overflow-safe, :func:`~veriloss.functional.l2_normalize`); all-zero rows raise."""
    zero = (l2_norm(x, dim=1) == 0).nonzero().flatten()
    if zero.numel():
        raise ValueError(f"{name} has {zero.numel()} all-zero row(s) (cosine undefined), e.g. {zero[:5].tolist()}")
    return l2_normalize(x, dim=1)


def cohort_stats(
    embeddings: torch.Tensor | np.ndarray,
    cohort: torch.Tensor | np.ndarray,
    top_k: int | None = None,
    batch_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (ddof=0) of cos(x_i, c_j) over the cohort rows j, per row i of ``embeddings``.

    With ``top_k`` only the k largest cohort scores of each row count (adaptive normalization). Rows are
    processed ``batch_size`` at a time, so memory is O(batch_size × cohort size). Statistics are returned
    in float64.
    """
    x = _as_tensor(embeddings)
    c = _as_tensor(cohort)
    check_embeddings(x, "embeddings")
    check_embeddings(c, "cohort", dim=x.shape[1])
    batch_size = check_int(batch_size, "batch_size", 1, what="a positive integer")
    n_cohort = c.shape[0]
    if top_k is not None:
        top_k = check_int(top_k, "top_k", 2, n_cohort, what=f"an integer in [2, cohort size = {n_cohort}]")
    elif n_cohort < 2:
        raise ValueError(f"cohort must have at least 2 rows to estimate a std, got {n_cohort}")
    dtype = torch.promote_types(x.dtype, c.dtype)
    xu = _unit(x.to(dtype), "embeddings")
    cu = _unit(c.to(dtype), "cohort")
    mean = torch.empty(x.shape[0], dtype=torch.float64)
    std = torch.empty(x.shape[0], dtype=torch.float64)
    for start in range(0, x.shape[0], batch_size):
        sims = xu[start : start + batch_size] @ cu.T
        if top_k is not None:
            sims = sims.topk(top_k, dim=1, largest=True, sorted=False).values
        sims = sims.double()
        mean[start : start + batch_size] = sims.mean(dim=1)
        std[start : start + batch_size] = sims.std(dim=1, correction=0)
    return mean, std


def _side_stats(
    emb: torch.Tensor | np.ndarray,
    n: int,
    name: str,
    cohort: torch.Tensor,
    top_k: int | None,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    x = _as_tensor(emb)
    check_embeddings(x, name)
    if x.shape[0] != n:
        raise ValueError(f"{name} must have one row per score ({n}), got shape {tuple(x.shape)}")
    uniq, inverse = torch.unique(x, dim=0, return_inverse=True)  # each distinct embedding is compared once
    mean, std = cohort_stats(uniq, cohort, top_k, batch_size)
    bad = (std <= 0).nonzero().flatten()
    if bad.numel():
        raise ValueError(
            f"{name}: {bad.numel()} distinct row(s) have zero spread of cohort scores (std = 0), "
            "so the normalized "
            "score is undefined; use a larger or more varied cohort or a larger top_k"
        )
    return mean[inverse], std[inverse]


def normalize_scores(
    scores: torch.Tensor | np.ndarray,
    enroll: torch.Tensor | np.ndarray,
    test: torch.Tensor | np.ndarray,
    cohort: torch.Tensor | np.ndarray,
    method: str = "s-norm",
    top_k: int | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Normalize raw trial scores with cohort statistics (formulas in the module docstring).

    ``scores`` (N,) are the raw scores; ``enroll`` and ``test`` (N, d) the two embeddings of each trial
    (repeated rows are detected and scored against the cohort once); ``cohort`` (C, d) the impostor cohort.
    ``method`` is one of ``z-norm``, ``t-norm``, ``s-norm``, ``as-norm``; ``as-norm`` requires ``top_k``,
    and ``top_k`` with the others gives their adaptive variants. Returns float64 (N,).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "as-norm" and top_k is None:
        raise ValueError("method='as-norm' needs top_k (the number of closest cohort scores per side, e.g. 300)")
    s = _as_tensor(scores)
    if s.dim() != 1 or s.shape[0] == 0 or not s.is_floating_point():
        raise ValueError(f"scores must be a non-empty 1-D float tensor, got shape {tuple(s.shape)}, dtype {s.dtype}")
    check_finite_tensor(s, "scores")
    s = s.double()
    c = _as_tensor(cohort)
    out = torch.zeros_like(s)
    sides = {"z-norm": ("enroll",), "t-norm": ("test",)}.get(method, ("enroll", "test"))
    for side in sides:
        mean, std = _side_stats(enroll if side == "enroll" else test, s.shape[0], side, c, top_k, batch_size)
        out += (s - mean) / std
    return out / len(sides)
