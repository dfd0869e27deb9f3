"""All-pairs open-set verification (docs/EVALUATION.md §Scores and pairs): every unordered pair of N embeddings.

Cosine similarities of the L2-normalized embeddings are computed in blocks of rows (upper triangle only, the N×N
matrix is never formed). Genuine scores (same label) are kept exactly; impostor scores are reduced on the fly to an
:class:`~veriloss.metrics.ImpostorSummary` (exact top scores for TAR@FAR, a 2^20-bin histogram, then a second
scoring pass that keeps the exact scores of the few bins EER/minDCF need and counts AUC pairs), so every metric is
exact and 10^8 impostor pairs need a few tens of MB.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_embeddings, check_int, check_labels
from ..functional.normalize import l2_norm, l2_normalize
from ..metrics import DET, EER, ImpostorSummary, MinDCF, SummaryBuilder, TarAtFar, auc, eer, min_dcf, roc, tar_at_far
from ..metrics._scores import check_cost, check_fars, check_rate, floor_far_count
from ..metrics.summary import MANTISSA_BITS

__all__ = ["AllPairsResult", "all_pairs"]


@dataclass(frozen=True, eq=False)
class AllPairsResult:
    """Every verification metric of an all-pairs evaluation, with its counts.

    ``genuine`` holds the exact genuine scores, ``impostor`` the impostor summary (both can be fed to any function
    of :mod:`veriloss.metrics`).
    """

    n_embeddings: int
    n_genuine: int
    n_impostor: int
    tar: tuple[TarAtFar, ...]
    eer: EER
    min_dcf: tuple[MinDCF, ...]
    auc: float
    genuine: np.ndarray
    impostor: ImpostorSummary

    def det(self) -> DET:
        """DET points at the impostor histogram's bin boundaries (exact points of the full curve)."""
        r = roc(self.genuine, self.impostor)
        return DET(r.far[::-1].copy(), 1.0 - r.tar[::-1], r.thresholds[::-1].copy())

    def __str__(self) -> str:
        lines = [
            f"all-pairs: {self.n_embeddings} embeddings, {self.n_genuine} genuine / {self.n_impostor} impostor pairs",
            str(self.eer),
            *(str(m) for m in self.min_dcf),
            f"AUC: {self.auc:.6f}",
            *(str(t) for t in self.tar),
        ]
        return "\n".join(lines)


def _blocks(e: torch.Tensor, seg_end: np.ndarray, same: np.ndarray, block_size: int) -> Iterator:
    """Yield (genuine scores, impostor scores...) per block of rows of the label-sorted, normalized embeddings.

    Row block [i0, i1) is scored against columns [i0, N). Columns up to the end w of the last row's label run form
    the "lead" (it holds the diagonal, the lower triangle and every same-label pair of the block); the columns after
    it are all impostors of every row, scored by a second matmul so no mask is needed there.
    """
    n = e.shape[0]
    for i0 in range(0, n, block_size):
        i1 = min(n, i0 + block_size)
        w = int(seg_end[i1 - 1])
        lead = e[i0:i1] @ e[i0:w].T
        r = torch.arange(i0, i1)[:, None]
        c = torch.arange(i0, w)[None, :]
        upper = c > r
        gen_mask = upper & torch.from_numpy(same[i0:i1, None] == same[None, i0:w])
        rest = e[i0:i1] @ e[w:].T if w < n else None
        yield lead[gen_mask], lead[upper & ~gen_mask], rest


def check_pairs(labels: torch.Tensor, what: str = "labels", fix: str = "") -> None:
    """Raise ``ValueError`` unless the identity ``labels`` give all-pairs verification both kinds of pairs: genuine
    (an identity with two samples) and impostor (two identities). ``what`` names the labels, ``fix`` what to change.

    >>> check_pairs(torch.tensor([0, 1, 2]))
    Traceback (most recent call last):
    ...
    ValueError: labels has 3 samples of 3 identities, none with two or more samples: there are no genuine pairs
    """
    counts = torch.bincount(labels.detach().cpu().long()) if len(labels) else torch.zeros(0, dtype=torch.long)
    ids, repeated = int((counts > 0).sum()), int((counts >= 2).sum())
    if repeated == 0 or ids < 2:
        why = "there are no genuine pairs" if repeated == 0 else "there are no impostor pairs (a single identity)"
        some = f"{repeated} of them" if repeated else "none"
        raise ValueError(
            f"{what} has {len(labels)} samples of {ids} identities, {some} with two or more samples: {why}"
            + (f"; check {fix}" if fix else "")
        )


def all_pairs(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    far: float | Sequence[float] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
    p_targets: Sequence[float] = (0.01, 0.05),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    block_size: int = 1024,
    mantissa_bits: int = MANTISSA_BITS,
) -> AllPairsResult:
    """All-pairs verification over N labelled embeddings: TAR@FAR (each ``far``), EER, minDCF (each p_target), AUC.

    Score = cos(x_i, x_j) = ⟨x_i/‖x_i‖, x_j/‖x_j‖⟩ for i < j; genuine when labels match. There are N(N−1)/2 pairs;
    Σ_c n_c(n_c−1)/2 of them genuine. Scores are float32 (torch matmul, all CPU threads); the metrics are exact for
    these scores and equal :func:`veriloss.metrics.tar_at_far` etc. on the full score arrays; the normalization is
    overflow-safe (:func:`~veriloss.functional.l2_normalize`), so any finite scale gives the same scores.
    ``block_size`` rows are
    scored at a time (memory ≈ block_size·N·4 bytes per block); impostors are scored twice (two passes).
    ``mantissa_bits`` sets the impostor histogram's resolution (see :class:`~veriloss.metrics.SummaryBuilder`).
    """
    check_embeddings(embeddings)
    n = embeddings.shape[0]
    check_labels(labels, n)
    block_size = check_int(block_size, "block_size", 1, what="a positive integer")
    fars, _ = check_fars(far)
    if isinstance(p_targets, (str, bytes)):
        raise ValueError(f"p_targets must be a sequence of rates in (0, 1), got the string {p_targets!r}")
    p_targets = [check_rate(p, "p_target") for p in p_targets]
    c_miss, c_fa = check_cost(c_miss, "c_miss"), check_cost(c_fa, "c_fa")
    with torch.no_grad():
        x = embeddings.detach().cpu().float()
        norms = l2_norm(x, dim=1)
        if bool((norms == 0).any()):
            raise ValueError(
                f"embeddings has {int((norms == 0).sum())} all-zero row(s); cosine similarity needs non-zero vectors"
            )
        y = labels.detach().cpu().long()
        order = torch.argsort(y, stable=True)
        e = l2_normalize(x[order], dim=1).contiguous()
        ys = y[order].numpy()
        _, starts, sizes = np.unique(ys, return_index=True, return_counts=True)
        seg_end = np.repeat(starts + sizes, sizes)
        n_gen = int(np.sum(sizes * (sizes - 1) // 2))
        n_imp = n * (n - 1) // 2 - n_gen
        check_pairs(y)
        top = max(floor_far_count(f, n_imp) for f in fars) + 1
        builder = SummaryBuilder(top=top, mantissa_bits=mantissa_bits)
        genuine = []
        for gen, imp_lead, rest in _blocks(e, seg_end, ys, block_size):
            genuine.append(gen.numpy())
            builder.add(imp_lead)
            if rest is not None:
                builder.add(rest)
        g = np.concatenate(genuine)
        builder.plan(g, p_targets=p_targets, c_miss=c_miss, c_fa=c_fa)
        if builder.needs_second_pass:
            for _, imp_lead, rest in _blocks(e, seg_end, ys, block_size):
                builder.refine(imp_lead)
                if rest is not None:
                    builder.refine(rest)
        summary = builder.build()
    return AllPairsResult(
        n_embeddings=n,
        n_genuine=n_gen,
        n_impostor=n_imp,
        tar=tuple(tar_at_far(g, summary, fars)),
        eer=eer(g, summary),
        min_dcf=tuple(min_dcf(g, summary, p, c_miss, c_fa) for p in p_targets),
        auc=auc(g, summary),
        genuine=g,
        impostor=summary,
    )
