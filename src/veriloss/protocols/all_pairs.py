"""All-pairs open-set verification (docs/evaluation.md §Scores and pairs): every unordered pair of N embeddings.

Cosine similarities of the L2-normalized embeddings are computed in blocks of rows (upper triangle only, the N×N
matrix is never formed). The genuine scores (same label) come first and are kept exactly (a batched matmul over the
label runs); the impostor scores are then reduced on the fly, in one pass, to an
:class:`~veriloss.metrics.ImpostorSummary`: a 2^20-bin histogram whose bins are split at the genuine values (exact
AUC), plus the exact scores of the bins that TAR@FAR, EER and minDCF need, predicted from a sample of 256 rows of
the score matrix (a missed prediction costs a second scoring pass, never exactness). So every metric is exact and
10^8 impostor pairs need about 100 MB besides one block of scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_embeddings, check_int, check_labels, unchecked
from ..functional.normalize import l2_norm, l2_normalize
from ..metrics import DET, EER, ImpostorSummary, MinDCF, SummaryBuilder, TarAtFar, auc, eer, min_dcf, roc, tar_at_far
from ..metrics._scores import check_cost, check_fars, check_rate, floor_far_count
from ..metrics.bins import MANTISSA_BITS

__all__ = ["AllPairsResult", "all_pairs"]

SAMPLE_ROWS = 256  # rows scored first against every column, to predict where EER/minDCF need exact values


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


def _genuine(e: torch.Tensor, seg_end: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """Every same-label score: the strict upper triangle of each label run's Gram matrix (rows are sorted by label).

    Runs are padded to the next power of two (rows of zeros) and scored in batches of ≤ ``chunk`` scores; a run
    longer than that is scored in row blocks.
    """
    n, dim = e.shape
    starts = np.flatnonzero(np.diff(seg_end, prepend=-1))
    sizes = seg_end[starts] - starts
    keep = sizes > 1
    starts, sizes = starts[keep], sizes[keep]
    out = []
    ext = torch.cat([e, e.new_zeros(1, dim)])  # row n: zeros for padding
    pad = np.left_shift(1, np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64))
    for p in np.unique(pad):
        sel = np.flatnonzero(pad == p)
        if p * p > chunk:  # a long run: row blocks of its own Gram matrix
            for a, z in zip(starts[sel], sizes[sel]):
                rows = max(1, chunk // int(z))
                for r0 in range(0, int(z), rows):
                    r1 = min(int(z), r0 + rows)
                    g = (e[a + r0 : a + r1] @ e[a + r0 + 1 : a + z].T).numpy()
                    out.append(g[np.arange(r0, r1)[:, None] < np.arange(r0 + 1, z)[None, :]])
            continue
        tri = torch.triu(torch.ones(p, p, dtype=torch.bool), 1)
        for q0 in range(0, sel.size, max(1, chunk // (p * p))):
            part = sel[q0 : q0 + max(1, chunk // (p * p))]
            idx = starts[part, None] + np.arange(p)[None, :]
            valid = np.arange(p)[None, :] < sizes[part, None]
            x = ext[torch.from_numpy(np.where(valid, idx, n))]
            g = torch.bmm(x, x.transpose(1, 2))
            mask = tri & torch.from_numpy(valid)[:, None, :]  # row < col < run size
            out.append(g[mask].numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def _lead(e: torch.Tensor, seg_end: np.ndarray, i0: int, i1: int) -> np.ndarray:
    """Impostor scores of rows [i0, i1) against the "lead" columns [i0, w), w the end of the last row's label run
    (the block's diagonal square plus that run): rows are sorted by label, so for row r the columns c ≥ seg_end[r]
    are impostors (the others are the lower triangle or same-label pairs)."""
    w = int(seg_end[i1 - 1])
    lead = (e[i0:i1] @ e[i0:w].T).numpy()
    return lead[np.arange(i0, w)[None, :] >= seg_end[i0:i1, None]]


def _blocks(e: torch.Tensor, seg_end: np.ndarray, block_size: int) -> Iterator[list[np.ndarray]]:
    """Yield per block of rows [i0, i1) its impostor score arrays: the lead's and the rest's (columns [w, N), all
    impostors: one matmul into a reused buffer, no mask)."""
    n = e.shape[0]
    buf = torch.empty(min(block_size, n) * n, dtype=e.dtype)
    for i0 in range(0, n, block_size):
        i1 = min(n, i0 + block_size)
        w = int(seg_end[i1 - 1])
        parts = [_lead(e, seg_end, i0, i1)]
        if w < n:
            out = buf[: (i1 - i0) * (n - w)].view(i1 - i0, n - w)
            torch.mm(e[i0:i1], e[w:].T, out=out)
            parts.append(out.numpy().reshape(-1))
        yield parts


def _prepared(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(normalized embeddings sorted by label, their labels, end of each row's label run)."""
    y = labels.detach().cpu().long()
    order = torch.argsort(y, stable=True)
    e = l2_normalize(embeddings.detach().cpu().float()[order], dim=1).contiguous()
    ys = y[order].numpy()
    _, starts, sizes = np.unique(ys, return_index=True, return_counts=True)
    return e, ys, np.repeat(starts + sizes, sizes)


def _sample_rows(e: torch.Tensor, ys: np.ndarray, rows: int = SAMPLE_ROWS) -> list[np.ndarray]:
    """Impostor scores of a few rows spread over the label-sorted embeddings (each row against every column): the
    sample from which the summary predicts where EER and minDCF need exact values."""
    idx = np.unique(np.linspace(0, e.shape[0] - 1, min(rows, e.shape[0])).round().astype(np.int64))
    s = (e[torch.from_numpy(idx)] @ e.T).numpy()
    return [s[k][ys != ys[i]] for k, i in enumerate(idx)]


def _score_blocks(embeddings: torch.Tensor, labels: torch.Tensor, block_size: int = 1024) -> Iterator:
    """(genuine, [impostor arrays]) per block, scored as :func:`all_pairs` scores them (for tests and benchmarks;
    the genuine scores all come with the first block)."""
    with torch.no_grad():
        e, _, seg_end = _prepared(embeddings, labels)
        g = _genuine(e, seg_end)
        for i, parts in enumerate(_blocks(e, seg_end, block_size)):
            yield (g if i == 0 else g[:0]), parts


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
    scored at a time (memory ≈ block_size·N·4 bytes per block); impostors are scored once, or twice if the
    summary's prediction of the bins to keep missed (see :meth:`~veriloss.metrics.SummaryBuilder.prepare`).
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
        check_pairs(y)
        e, ys, seg_end = _prepared(x, y)
        n_gen = int(np.sum(seg_end - np.arange(n) - 1))  # row r pairs with the rest of its label run
        n_imp = n * (n - 1) // 2 - n_gen
        top = max(floor_far_count(f, n_imp) for f in fars) + 1
        builder = SummaryBuilder(top=top, mantissa_bits=mantissa_bits)
        g = np.sort(_genuine(e, seg_end))  # first (a small batched matmul): then one pass over the impostors
        builder.prepare(g, sample=_sample_rows(e, ys), p_targets=p_targets, c_miss=c_miss, c_fa=c_fa, n=n_imp)
        with unchecked():  # the scores are finite: cosines of the checked, normalized embeddings (no scan per block)
            for parts in _blocks(e, seg_end, block_size):
                for part in parts:
                    builder.add(part)
            builder.plan(g, p_targets=p_targets, c_miss=c_miss, c_fa=c_fa)
            if builder.needs_second_pass:  # only when a bin that EER/minDCF needs was not predicted
                for parts in _blocks(e, seg_end, block_size):
                    for part in parts:
                        builder.refine(part)
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
