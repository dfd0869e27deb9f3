"""The exact α-softargmax solver (a kernel of :mod:`veriloss.functional.alpha`): per row, the threshold τ of
``p_j = q_j [1 + (α−1)(z_j − τ)]_+^{1/(α−1)}`` with ``Σ_j p_j = 1``, in float64, stored sparsely.

The support ``{j : z_j > τ − 1/(α−1)}`` is a top-r set of each row whatever q is (q only scales), so τ is solved on
the top-32 logits of each row; rows whose support may reach further are solved again on every class above the
candidates' root, a lower bound of τ (see :func:`solve`). The root of ``f(c) = Σ_j q_j (w_j − c)_+^{1/(α−1)} = 1`` is
found by Newton's method (monotone for α ≤ 2) or a safeguarded Newton–bisection (α > 2).

Everything here trusts its caller (the checked entries are in :mod:`veriloss.functional.alpha`); it reads tensor
values where the maths needs it (the Newton iterations stop when every row has converged, the second pass runs only
for rows that need it, the width of the second pass is the largest count of a row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["AlphaSolution", "Scratch", "candidates_above", "solve", "top_k"]

_INITIAL_CANDIDATES = 32
_MAX_NEWTON_STEPS = 200
_SAMPLE = 2048  # columns of the strided sample that estimates a wide support's threshold (at most; see _sample_stride)
_SAMPLE_STRIDE = 16  # the sample's stride at least
_WIDE_FRACTION = 0.25  # the estimate runs where the sample puts this share of a row above the top-k root (see solve)
_ROUGH_STEPS = 2  # float32 Newton steps from a wide row's estimate (see _rough_root)
_ROUGH_MARGIN = 4e-6  # how far in f their result is moved left: 8× float32's error in f measured near the root
_ESTIMATE_TOL = 1e-3  # |f| at which the sampled estimate stops: its mass is only known to a few % anyway
_BLOCK_ELEMENTS = 1 << 21  # on the CPU, rows are solved in blocks of about this many logits a thread (_row_blocks)
_NUMPY_DTYPES = (torch.float32, torch.float64)  # compared by numpy on the CPU (see candidates_above)
_SAFE_SCALE = 2.0**256  # rows with a measure scale max(q)^(α−1) in [1/_SAFE_SCALE, _SAFE_SCALE] are solved as given


@dataclass
class AlphaSolution:
    """The α-softargmax of each row, stored sparsely: ``prob[i, c]`` is ``p`` at class ``index[i, c]``.

    Padding entries (rows with fewer candidates than the widest row) carry probability 0.
    """

    index: torch.Tensor  # (B, k) long
    prob: torch.Tensor  # (B, k) in the compute dtype; sums to 1 over each row
    tau: torch.Tensor  # (B,) float64, the threshold τ of each row
    power: torch.Tensor | None = None  # (B,) float64 Σ_j p_j^α where the solver has it (the unit measure)
    shift: tuple[torch.Tensor, torch.Tensor] | None = None  # (Σ_j p_j (z_j − top), top) likewise, float64
    cut: tuple[torch.Tensor, torch.Tensor, torch.Tensor, float] | None = None  # (top, c, λ, α): see `outside`

    @property
    def support_size(self) -> torch.Tensor:
        return (self.prob > 0).sum(dim=1)

    def dense(self, num_classes: int) -> torch.Tensor:
        out = torch.zeros(self.prob.shape[0], num_classes, dtype=self.prob.dtype, device=self.prob.device)
        return out.scatter_add_(1, self.index, self.prob)

    def at(self, classes: torch.Tensor) -> torch.Tensor:
        """``p`` at one class per row (0 when the class is outside the candidates)."""
        hit = self.index == classes[:, None]
        return (self.prob * hit).sum(dim=1)

    def outside(self, z: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Whether one class per row is outside the support, from the logits ``z`` that were solved: its scaled
        ``w = λ(α−1)(z − top)`` is at most the root c, computed as the solver computed it (so it agrees with d = (w −
        c)_+ = 0; not a pass over the candidates as :meth:`at`)."""
        top, c, lam, alpha = self.cut
        return _shifted(z.gather(1, classes[:, None]), top, lam, alpha)[:, 0] <= c


def _power(d: torch.Tensor, beta: float) -> torch.Tensor:
    """``d^β`` for ``d ≥ 0``, by multiplications when β is a small integer (α = 2, 1.5, 1.25: β = 1, 2, 4; pow with
    a float exponent costs several multiplications per element), else by pow (a new tensor either way)."""
    if beta == 1.0:
        return d.clone()
    if beta in (2.0, 3.0):  # special cases of pow: one pass
        return d.pow(int(beta))
    if beta == 4.0:
        return d.square().square_()
    return d.pow(beta)


def _buffered(beta: float) -> bool:
    """Whether :func:`_mass` evaluates β by multiplications in two reused buffers: β ∈ {1, 2, 3, 4}."""
    return beta == int(beta) and 1 <= beta <= 4


def _mass(
    w: torch.Tensor, qc: torch.Tensor | None, beta: float, c: torch.Tensor, buf=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(c) = Σ_j qc_j (w_j − c)_+^β − 1`` and its derivative in c, per row (``qc`` None: the unit measure).

    For β ∈ {1, 2, 3, 4} (α = 2, 1.5, 4/3, 1.25) the temporaries live in ``buf`` (two tensors shaped like ``w``; made
    when None): afterwards ``buf[0]`` holds d = (w − c)_+ and ``buf[1]`` the terms qc·d^β, so that the caller can
    evaluate again without allocating (a fresh wide temporary is page-faulted by the C allocator on every call: as
    much time as the arithmetic) and normalize from the last evaluation."""
    if _buffered(beta):  # integer powers, by multiplications (much cheaper than pow)
        d, t = buf if buf is not None else (torch.empty_like(w), torch.empty_like(w))
        torch.sub(w, c[:, None], out=d).clamp_min_(0.0)
        if beta == 1.0:
            torch.sign(d, out=t)  # d^0 on the support (d ≥ 0)
        elif beta == 2.0:
            t.copy_(d)
        else:
            torch.mul(d, d, out=t)
            if beta == 4.0:
                t.mul_(d)
        if qc is not None:
            t.mul_(qc)
        fp = -beta * t.sum(dim=1)  # −β Σ qc d^{β−1}
        return t.mul_(d).sum(dim=1) - 1.0, fp
    d = (w - c[:, None]).clamp_min_(0.0)
    qc = 1.0 if qc is None else qc
    f = (qc * d.pow(beta)).sum(dim=1) - 1.0
    fp = -beta * torch.where(d > 0, qc * d.pow(beta - 1.0), torch.zeros_like(d)).sum(dim=1)
    return f, fp


def _newton_step(f: torch.Tensor, fp: torch.Tensor, beta: float) -> torch.Tensor:
    """Newton's displacement in c on ``F = (f + 1)^{1/β} − 1`` (same root as f, convex for β ≥ 1) from f and f' = df/dc:
    ``F/F' = β (f + 1)(1 − (f + 1)^{−1/β}) / f'`` (c − this is the next iterate; f itself when β = 1)."""
    step = f if beta == 1.0 else -beta * (f + 1.0) * torch.expm1(-torch.log1p(f) / beta)
    return step / fp


def _solve_threshold(
    w: torch.Tensor,
    qc: torch.Tensor | None,
    beta: float,
    lower: torch.Tensor | None = None,
    buf=None,
    tol: float | None = None,
):
    """The root c of ``f(c) = Σ_j qc_j (w_j − c)_+^β − 1 = 0`` for each row (float64; ``w`` has max 0 per row).

    f is decreasing; ``lo = max_j(w_j − qc_j^{−1/β})`` has f(lo) ≥ 0 (one term alone reaches 1) and f(0) = −1.
    - β ≥ 1 (α ≤ 2): f is convex, so Newton from lo increases monotonically to the root, never overshooting.
    - β < 1 (α > 2): f is not convex and its slope is unbounded at each support kink, so Newton is safeguarded
      (Numerical Recipes' rtsafe): bisection replaces a step that leaves the bracket or shrinks it too slowly.
    (Newton runs on ``F = (f + 1)^{1/β} − 1``, which has the same root and is convex too for β ≥ 1.)
    A row stops when |f| is at rounding level (then every p_j is exact to that level, since all terms share a
    sign) or its bracket is a few ulps wide; a small step alone never stops it. ``lower``, a known lower bound of
    the root (f ≥ 0 there), is a better start. Returns (c, f at the start, state): f at the start tells whether
    ``lower`` was a lower bound indeed (f ≥ 0; else that row's c is its start); with ``buf`` (see :func:`_mass`;
    β ∈ {1, 2, 3, 4}) every evaluation reuses it and state is (d, terms, mass) at c, else (or where the steps ran
    out, the last evaluation not at c) None. ``tol``: stop where |f| ≤ tol instead (an estimate, not a root).
    """
    eps = torch.finfo(torch.float64).eps
    tol_f = 4 * eps * w.shape[1] if tol is None else tol
    if lower is not None:  # (better than the one-term bound below wherever it is a lower bound at all)
        lo = lower
    else:
        lo = (w.amax(dim=1) - 1.0) if qc is None else (w - qc.pow(-1.0 / beta)).amax(dim=1)
    hi = torch.zeros_like(lo)
    c = lo.clone()
    dx = hi - lo
    dx_old = dx.clone()
    f0 = state = None
    for _ in range(_MAX_NEWTON_STEPS):
        f, fp = _mass(w, qc, beta, c, buf)
        f0 = f if f0 is None else f0
        if beta >= 1.0:
            done = f.abs() <= tol_f
            # Newton on F(c) = S(c)^{1/β} − 1 (S = f + 1), not on f: the same root, F is convex too (a β-norm of the
            # convex (w_j − c)_+), so the steps from the left still increase to the root without overshooting, and F is
            # nearly linear in c far left of the root (a norm of w − c), where f grows like its β-th power: a few steps
            # from a far start, where Newton on f creeps by a factor (1 − 1/β) per step
            newton = torch.where(f > 0, c - _newton_step(f, fp, beta), c)  # f < 0 only by rounding at the root
            done |= newton <= c
            c = torch.where(done, c, newton)
        else:
            lo = torch.where(f >= 0, c, lo)
            hi = torch.where(f < 0, c, hi)
            done = (f.abs() <= tol_f) | (hi - lo <= 2 * eps * c.abs().clamp_min(1.0))
            newton = c - f / fp
            slow = (2 * f).abs() > (dx_old * fp).abs()
            bisect = ~torch.isfinite(newton) | (newton < lo) | (newton > hi) | (newton == c) | slow
            dx_old = dx
            dx = torch.where(bisect, 0.5 * (hi - lo), (f / fp).abs())
            c = torch.where(done, c, torch.where(bisect, 0.5 * (lo + hi), newton))
        if bool(done.all()):
            state = None if buf is None else (buf[0], buf[1], buf[1].sum(dim=1))  # c unchanged since this evaluation
            break
    return c, f0, state


def _rough_root(w: torch.Tensor, qc: torch.Tensor | None, beta: float, estimate: torch.Tensor, buf) -> torch.Tensor:
    """A start for Newton in float64 just left of the root, from :data:`_ROUGH_STEPS` Newton steps on ``F = S^{1/β} −
    1`` in float32 from ``estimate`` (the first a tangent step, left of the root from either side), moved left by
    :data:`_ROUGH_MARGIN` in f. A heuristic (float32 f is off by ≈ 5·10⁻⁷ near the root): the caller checks f ≥ 0
    there in float64. Float32 halves the memory traffic of an evaluation; its arrays live in ``buf`` (float64, β ∈
    {1, 2, 3, 4}), whose contents it overwrites."""
    R, n = w.shape

    def half(b: torch.Tensor, i: int) -> torch.Tensor:
        return b.view(-1).view(torch.float32)[i * R * n : (i + 1) * R * n].view(R, n)

    w32 = half(buf[0], 0).copy_(w)
    work = (half(buf[0], 1), half(buf[1], 0))
    q32 = None if qc is None else qc.float()
    c = estimate.float()
    for _ in range(_ROUGH_STEPS):
        f, fp = _mass(w32, q32, beta, c, work)
        c = c - _newton_step(f, fp, beta)
    return c.double() - _ROUGH_MARGIN / fp.double().abs()


class Scratch:
    """Float64 scratch space shared by the row blocks of one call (a kernel's helper): the wide second pass's
    candidates' values and Newton buffers are views of one storage, grown when a block needs more, so that
    consecutive blocks reuse memory instead of page-faulting fresh temporaries. A solution solved with it holds
    views of that storage (its ``prob``): read or copy it before the next solve."""

    def __init__(self) -> None:
        self._storage: torch.Tensor | None = None

    def get(self, shape: torch.Size, slot: int, device: torch.device) -> torch.Tensor:
        """View number ``slot`` (0, 1, 2) of shape ``shape``; slots do not overlap; growing drops the old storage."""
        n = math.prod(shape)
        if self._storage is None or self._storage.numel() < 3 * n or self._storage.device != device:
            self._storage = torch.empty(3 * n + n // 4, dtype=torch.float64, device=device)  # (room to grow)
        return self._storage[slot * n : (slot + 1) * n].view(shape)


def _workspace(w: torch.Tensor, beta: float, scratch: Scratch | None = None):
    """The two temporaries of :func:`_mass` for ``w`` (slots 1 and 2 of ``scratch`` where given, whose slot 0 may
    hold ``w``), or None where β is not in {1, 2, 3, 4}."""
    if not _buffered(beta):
        return None
    if scratch is not None:
        return scratch.get(w.shape, 1, w.device), scratch.get(w.shape, 2, w.device)
    return torch.empty_like(w), torch.empty_like(w)


def _measure_scale(qc: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, ``(q̄, λ)`` for the solve in scaled units, by ``p(z; q) = p(λ z; q/q̄)`` with ``λ = q̄^(α−1)``:
    (1, 1) when λ of ``q̄ = max qc`` is within [2^-256, 2^256] (rows solved exactly as given), else q̄ and λ (λ
    clamped to [0, 2^1000]). Without it a measure such as q = 1e-300 at α = 3 puts the root at −1e600 (NaN)."""
    qbar = qc.amax(dim=1)
    lam = torch.exp((alpha - 1.0) * torch.log(qbar))
    safe = (lam >= 1.0 / _SAFE_SCALE) & (lam <= _SAFE_SCALE)
    one = torch.ones_like(qbar)
    return torch.where(safe, one, qbar), torch.where(safe, one, lam.clamp(max=2.0**1000))


def _scaled(w: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """``λ·w`` per row, −inf (excluded classes) kept as −inf also where λ underflows to 0."""
    return torch.where(torch.isinf(w), w, w * lam[:, None])


def _shifted(values: torch.Tensor, top: torch.Tensor, lam: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """The solver's units of logits ``values`` (R×n): ``w = λ(α−1)(z − top)`` in float64 (``lam`` None: λ = 1). Every
    w of a row is computed this way (or, for the candidates, the same operations in place), so that comparing a
    class's w with the root decides its membership exactly as the solver did."""
    w = (alpha - 1.0) * (values.double() - top[:, None])
    return w if lam is None else _scaled(w, lam)


def _gather_measure(q: torch.Tensor | None, rows: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor:
    """q at the classes ``idx`` (R×k) of rows ``rows`` (None: all rows); q is None, (K,) or (B, K)."""
    if q is None:
        return torch.ones(idx.shape, dtype=torch.float64, device=idx.device)
    if q.dim() == 1:
        return q[idx].double()
    if rows is None:
        return q.gather(1, idx).double()
    return q[rows[:, None], idx].double()


def _shift(mean: torch.Tensor | None, top: torch.Tensor, alpha: float):
    """(Σ_j p_j (z_j − top), top) from ``mean = Σ_j p_j w_j`` (w = (α−1)(z − top)), or None."""
    return None if mean is None else (mean / (alpha - 1.0), top)


def _sample_stride(K: int) -> int:
    """The stride of the sampled estimate's columns: :data:`_SAMPLE` columns, one in :data:`_SAMPLE_STRIDE` at most."""
    return max(K // _SAMPLE, _SAMPLE_STRIDE)


def _row_blocks(B: int, K: int, device: torch.device) -> list[slice]:
    """The blocks of rows that are solved together: on the CPU, about :data:`_BLOCK_ELEMENTS` logits per intra-op
    thread each (each thread's share of the solver's temporaries, B×n candidates in float64, stays cache-sized and
    below what the C allocator maps fresh and page-faults on every call: the same work runs several times faster;
    fewer, larger blocks with more threads: measured at 1 and 2 threads). Elsewhere one block (a caching allocator)."""
    n = B if device.type != "cpu" else max(1, _BLOCK_ELEMENTS * torch.get_num_threads() // max(K, 1))
    return [slice(a, min(B, a + n)) for a in range(0, B, n)]


def _pad(t: torch.Tensor, width: int, fill: float | int) -> torch.Tensor:
    """``t`` (R×n) padded on the right with ``fill`` to ``width`` columns."""
    return torch.cat([t, t.new_full((t.shape[0], width - t.shape[1]), fill)], dim=1) if t.shape[1] < width else t


def _pack_by_row(mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(index, counts) of :func:`candidates_above` on the CPU, row by row: numpy's ``flatnonzero`` of each row of the
    (R, K) bool array (a vectorized count then write; 4–7× faster than torch's CPU ``nonzero`` on rows of 10^5
    classes), the counts read from their lengths (no pass over the mask to count), written into one array whose
    padding repeats the row's first class."""
    found = [np.flatnonzero(row) for row in mask]
    counts = [f.size for f in found]
    index = np.empty((len(found), max(max(counts, default=0), 1)), dtype=np.int64)
    for row, f in zip(index, found):
        row[: f.size] = f
        row[f.size :] = f[0] if f.size else 0
    return torch.from_numpy(index), torch.tensor(counts, dtype=torch.long)


def _pack_vectorized(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index, counts) of :func:`candidates_above` in one pass over the (row, column) pairs (one kernel per step);
    the padding repeats the row's first class."""
    rows, cols = mask.nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=mask.shape[0])
    pos = torch.arange(rows.numel(), device=mask.device) - (torch.cumsum(counts, 0) - counts)[rows]
    index = torch.zeros(mask.shape[0], max(int(counts.max()), 1), dtype=torch.long, device=mask.device)
    index[rows, pos] = cols
    valid = torch.arange(index.shape[1], device=mask.device) < counts[:, None]
    return torch.where(valid, index, index[:, :1]), counts


def _candidates(z: torch.Tensor, thr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index, counts) of :func:`candidates_above`: the padding of each row repeats its first class."""
    if z.device.type == "cpu" and z.dtype in _NUMPY_DTYPES:
        return _pack_by_row(np.greater(z.detach().numpy(), thr.detach().to(z.dtype).numpy()[:, None]))
    mask = z > thr[:, None]
    return _pack_by_row(mask.numpy()) if z.device.type == "cpu" else _pack_vectorized(mask)


def _fill_padding(t: torch.Tensor, counts: torch.Tensor, value: float) -> torch.Tensor:
    """``t`` (R×n) with ``value`` from column ``counts[i]`` on in each row i, in place: on the CPU by a numpy slice per
    row (no R×n mask), elsewhere by one masked fill."""
    if t.device.type == "cpu" and t.dtype in _NUMPY_DTYPES:
        arr = t.numpy()
        for row, n in zip(arr, counts.tolist()):
            row[n:] = value
        return t
    return t.masked_fill_(torch.arange(t.shape[1], device=t.device) >= counts[:, None], value)


def candidates_above(z: torch.Tensor, thr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the classes with ``z > thr`` packed left into a (R, n_max) index matrix (n_max ≥ 1: a row without
    candidates, NaN logits, gets one padding column), and its validity mask. Row by row on the CPU (the comparison
    by numpy: torch's broadcast comparison is several times slower there), vectorized elsewhere."""
    index, counts = _candidates(z, thr)
    valid = torch.arange(index.shape[1], device=z.device) < counts[:, None]  # each row's candidates come first
    return index, valid  # (padding repeats a real class: its p is set to 0)


def top_k(z: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(z, k, dim=1, sorted=False)`` of a 2-D ``z`` (values, indices; equal values may come from other
    columns). On the CPU, for rows of at least 16k² unit-stride columns, in two stages: the columns split into n = K//k
    groups {g, g + n, …, g + (k−1)n} (their maxima: an elementwise max of k contiguous slices), the k groups of
    largest maxima, then the top k of their k² logits and of the last K mod k columns. Exact: each of the k largest
    logits lies in a group whose maximum is at least as large, and fewer than k other groups can rank above it.
    2–3× faster than one top-k over 10^5 columns (slower below 16k²: the per-row work of the second stage)."""
    R, K = z.shape
    if z.device.type != "cpu" or K < 16 * k * k or z.stride(1) != 1:  # (below, one top-k is faster)
        return torch.topk(z, k, dim=1, sorted=False)
    n = K // k
    groups = z.as_strided((R, k, n), (z.stride(0), n, 1)).amax(dim=1)
    best = torch.topk(groups, k, dim=1, sorted=False).indices
    cols = (best[:, :, None] + torch.arange(0, k * n, n)).reshape(R, k * k)
    if K > n * k:
        cols = torch.cat([cols, torch.arange(n * k, K).expand(R, -1)], dim=1)
    vals, j = torch.topk(z.gather(1, cols), k, dim=1, sorted=False)
    return vals, cols.gather(1, j)


def solve(
    z: torch.Tensor,
    alpha: float,
    q: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    target_q: torch.Tensor | None = None,
    scratch: Scratch | None = None,
) -> AlphaSolution:
    """Exact α-softargmax (α > 1) of each row of ``z`` (B×K), in two passes over the logits at most. A kernel: the
    largest logit of every row must be finite, q > 0.

    ``q`` is None, per class (K,) or per row (B, K). ``target`` and ``target_q`` (both (B,)) override the measure of
    one class per row (Q-Margin's κ) without a (B, K) measure. ``scratch`` (a :class:`Scratch`), shared by the
    calls on consecutive row blocks, holds the second pass's temporaries, ``prob`` included: copy it before the next
    call.

    1. Solve on the top-k logits of each row (k = 32). If the threshold c satisfies ``c ≥ w_k`` (the smallest
       candidate), every other class has p = 0 and the row is exact.
    2. Otherwise the root c_k of the candidates alone is a lower bound of the true root (more classes only add
       mass), so the support lies within ``{j : w_j > c_k}``: those classes are gathered (one masked pass) and the
       row is solved on them, starting from c_k. Exact by construction, whatever the support size.

    A row whose measure is extreme (``max(q)^(α−1)`` outside [2^-256, 2^256]) is solved in scaled units (see
    :func:`_measure_scale`); its τ may then be −inf (λ underflows: every class is in the support).
    """
    B, K = z.shape
    beta = 1.0 / (alpha - 1.0)
    unit = q is None and target is None  # the unit measure: no weights, no rescaling (qc is None below)

    def measure(rows, idx):
        if unit:
            return None
        qc = _gather_measure(q, rows, idx)
        if target is not None:
            t_rows = target if rows is None else target[rows]
            tq_rows = target_q if rows is None else target_q[rows]
            qc = torch.where(idx == t_rows[:, None], tq_rows[:, None].double(), qc)
        return qc

    def normalized(w, qc, c, state=None):
        """p on the candidates and, for the unit measure (λ = 1), Σ p^α = Σ p·(w − c) / S^{α−1} with S = Σ (w − c)_+^β
        (no pow) and Σ p·w = Σ p·(w − c) + c (Σ p = 1; p = 0 off the support), the mean logit less the top one times
        (α − 1). ``state``: (d, qc·d^β, S) at c from the solver's last evaluation (its buffers become p), else None."""
        if state is None:
            d = (w - c[:, None]).clamp_min_(0.0)
            p = _power(d, beta)
            if qc is not None:
                p = p.mul_(qc)
            mass = p.sum(dim=1)
        else:
            d, p, mass = state
        p = p.div_(mass[:, None])
        if qc is not None:
            return p, None, None
        pd = torch.mul(p, d, out=d if state is not None else None).sum(dim=1)
        return p, pd / mass.pow(alpha - 1.0), pd + c

    k = min(K, _INITIAL_CANDIDATES)
    vals, idx = top_k(z, k)  # unsorted: half the cost of sorted on the CPU
    qc = measure(None, idx)
    top = vals.amax(dim=1).double()
    if unit:  # nothing to rescale
        qbar = lam = torch.ones_like(top)
        w = _shifted(vals, top, None, alpha)  # ≤ 0 per row; −inf for excluded classes
    else:
        qbar, lam = _measure_scale(qc, alpha)
        qc, w = qc / qbar[:, None], _shifted(vals, top, lam, alpha)
    c, _, state = _solve_threshold(w, qc, beta, buf=_workspace(w, beta))  # scaled units of w; c/λ in the logits' units
    w_min = w.amin(dim=1, keepdim=True)  # the smallest candidate
    done = c >= w_min[:, 0] if k < K else torch.ones_like(c, dtype=torch.bool)
    prob, power, mean = normalized(w, qc, c, state)
    index, tau = idx, top + (c / lam + 1.0) / (alpha - 1.0)
    if bool(done.all()):
        cut = (top, c, lam, alpha)
        return AlphaSolution(index=index, prob=prob, tau=tau, power=power, shift=_shift(mean, top, alpha), cut=cut)

    # second pass, for the rows whose support may reach past the top-k
    rows = (~done).nonzero(as_tuple=True)[0]
    top_r, c_r, qbar_r, lam_r = top[rows], c[rows], qbar[rows], lam[rows]

    def above(start: torch.Tensor, r: torch.Tensor, out: Scratch | None = None):
        """Every class above the threshold ``start`` (scaled units) of the rows ``rows[r]``, packed left: their
        classes, scaled values (−inf on padding; in slot 0 of ``out`` where given) and measure (1 on padding). One
        masked pass over all the rows of z (the others get no candidates), not over a copy of the rows."""
        t, s_, l_ = top_r[r], qbar_r[r], lam_r[r]
        thr = (t + start / l_ / (alpha - 1.0)).to(z.dtype)
        thr = torch.nextafter(thr, torch.full_like(thr, -math.inf))  # round down: never drop a support member
        if r.numel() == B:  # every row (then r is 0..B−1): no selection
            idx2, counts = _candidates(z, thr)
        else:
            thr_all = torch.full((B,), math.inf, dtype=z.dtype, device=z.device).index_copy_(0, rows[r], thr)
            idx2, counts = _candidates(z, thr_all)
            idx2, counts = idx2[rows[r]], counts[rows[r]]  # (the other rows have no candidates: no wider)
        values = z.gather(1, idx2) if r.numel() == B else torch.take(z, idx2 + (rows[r] * K)[:, None])
        w2 = out.get(idx2.shape, 0, z.device) if out is not None else None
        w2 = _fill_padding(torch.sub(values, t[:, None], out=w2).mul_(alpha - 1.0), counts, -math.inf)  # (_shifted)
        if unit:
            return idx2, w2, None
        qc2 = _fill_padding(measure(rows[r], idx2), counts, 1.0) / s_[:, None]
        return idx2, _scaled(w2, l_), qc2

    start = c_r
    sample = None
    if K >= 4 * _SAMPLE:  # does a strided sample put a quarter of some row above the top-k root? Then gathering
        # above that root would take most of the row (86–96 % of it on fresh-init cosine rows at α 1.25, supports of
        # 18–52 %) and Newton would start far left; on narrower rows (≤ 8 % above it) gathering above it is cheaper
        stride = _sample_stride(K)
        sample = z[:, ::stride][rows]
        thr_r = (top_r + c_r / lam_r / (alpha - 1.0)).to(z.dtype)
        if not bool(((sample > thr_r[:, None]).sum(dim=1) > _WIDE_FRACTION * sample.shape[1]).any()):
            sample = None
    if sample is not None:
        # a sharper start than the top-k root where the support is wide: the root of the top-k plus the sample of
        # the other classes (their mass scaled to the row's), moved left along F's tangent (F = S^{1/β} is convex
        # for β ≥ 1: the mass there is at least γ× the estimate's) by a slack γ of four standard errors of the
        # sampled mass. A heuristic: it is kept only where the row's mass there is ≥ 1, i.e. where it is a lower
        # bound of the root (checked below); the other rows start from the top-k root
        ws = _shifted(sample, top_r, lam_r, alpha)
        w_k = w[rows]
        ws = torch.where(ws < w_min[rows], ws, -math.inf)  # the top-k count once, exactly
        scale = (K - k) / ws.shape[1]
        if unit:
            qs = torch.cat([torch.ones_like(w_k), torch.full_like(ws, scale)], dim=1)
        else:
            cols = torch.arange(0, K, stride, device=z.device).expand(rows.numel(), -1)
            qs = torch.cat([qc[rows], measure(rows, cols) / qbar_r[:, None] * scale], dim=1)
        ws = torch.cat([w_k, ws], dim=1)
        buf_s = _workspace(ws, beta)
        estimate = _solve_threshold(ws, qs, beta, lower=c_r, buf=buf_s, tol=_ESTIMATE_TOL)[0]
        slope = -_mass(ws, qs, beta, estimate, buf_s)[1] / beta  # T = Σ qs (ws − c)_+^{β−1}: −F' at the estimate
        # the sampled part of the mass (1 at the estimate) has a standard error of about √(Σ_sampled term²)
        if buf_s is not None:  # the terms qs (ws − c)_+^β at the estimate
            terms = buf_s[1][:, k:]
        else:
            terms = qs[:, k:] * _power((ws[:, k:] - estimate[:, None]).clamp_min_(0.0), beta)
        gamma = 1.0 + 4.0 * terms.square_().sum(dim=1).sqrt()
        start = estimate - (gamma.pow(1.0 / beta) - 1.0) / slope
        start = torch.where(start > c_r, start, c_r)  # (NaN, from a zero slope, keeps c_r)
    idx2, w2, qc2 = above(start, torch.arange(rows.numel(), device=z.device), scratch)
    buf = _workspace(w2, beta, scratch)
    lower = start
    rough_start = sample is not None and buf is not None
    if rough_start:
        # Newton on the candidates in float64 starts where two float32 steps from the estimate led, moved left by a
        # margin (two float64 evaluations then reach the root, where the tangent start below needs four): a heuristic,
        # checked by the sign of f there (f ≥ 0: a lower bound, and the root is exact; else the fallback below)
        rough = _rough_root(w2, qc2, beta, estimate, buf)
        lower = torch.where(rough > start, rough, start)  # (NaN keeps `start`)
    elif sample is not None and beta >= 1.0:
        # Newton on the candidates starts one tangent step from the estimate rather than at `start` (one evaluation of
        # a wide row saved): the candidates' F = S^{1/β} − 1 is convex and decreasing, so the step lands at or left of
        # its root from either side. Where it lands right of `start`, the candidates' root is too, and there their f
        # is the true f: the root is exact, with no further check. (NaN, from a zero slope, keeps `start`)
        f_e, fp_e = _mass(w2, qc2, beta, estimate, buf)
        tangent = estimate - _newton_step(f_e, fp_e, beta)
        lower = torch.where(tangent > start, tangent, start)
    c2, f0, state = _solve_threshold(w2, qc2, beta, lower=lower, buf=buf)
    # the estimate was above the root (the mass at `start` is < 1), or the float32 start was: from the top-k root
    bad = (f0 < 0) & torch.where(lower > start, rough_start, start > c_r)
    if bool(bad.any()):
        b = bad.nonzero(as_tuple=True)[0]
        start = torch.where(bad, c_r, start)
        idx_b, w_b, qc_b = above(c_r[b], b)
        n = max(idx2.shape[1], idx_b.shape[1])
        idx2, w2 = _pad(idx2, n, 0), _pad(w2, n, -math.inf)
        idx2[b], w2[b] = _pad(idx_b, n, 0), _pad(w_b, n, -math.inf)
        if qc2 is not None:
            qc2 = _pad(qc2, n, 1.0)
            qc2[b] = _pad(qc_b, n, 1.0)
        c2, state = torch.where(bad, _solve_threshold(w2, qc2, beta, lower=start)[0], c2), None
    p2, power2, mean2 = normalized(w2, qc2, c2, state)
    tau[rows] = top_r + (c2 / lam_r + 1.0) / (alpha - 1.0)
    c = c.index_copy(0, rows, c2)
    cut = (top, c, lam, alpha)
    if rows.numel() == B:
        return AlphaSolution(index=idx2, prob=p2, tau=tau, power=power2, shift=_shift(mean2, top, alpha), cut=cut)
    width = max(index.shape[1], idx2.shape[1])
    index = torch.cat([index, index[:, :1].expand(B, width - index.shape[1])], dim=1)
    prob = torch.cat([prob, prob.new_zeros(B, width - prob.shape[1])], dim=1)
    index[rows] = torch.cat([idx2, idx2[:, :1].expand(-1, width - idx2.shape[1])], dim=1)
    prob[rows] = torch.cat([p2, p2.new_zeros(p2.shape[0], width - p2.shape[1])], dim=1)
    if power is not None:
        power[rows], mean[rows] = power2, mean2
    return AlphaSolution(index=index, prob=prob, tau=tau, power=power, shift=_shift(mean, top, alpha), cut=cut)
