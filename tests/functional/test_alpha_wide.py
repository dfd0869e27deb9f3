"""The α solver at K = 1e5 against the float64 oracle: wide supports (the sampled start of the second pass), ties,
the fallback when the sample overestimates the mass, and the row blocks of the CPU path."""

from __future__ import annotations

import pytest
import torch

import veriloss.functional.alpha_solver as alpha_module
from veriloss.functional import alpha_divergence_loss, alpha_softargmax
from veriloss.functional.alpha import alpha_divergence_loss_with_stats
from veriloss.functional.alpha_solver import solve

from . import alpha_reference as ref

K = 100_000


def _rows(regime: str, b: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if regime == "normal":
        return torch.randn(b, K, generator=g, dtype=torch.float64)
    if regime == "wide":  # s·cos at a fresh init (s = 8, d = 512): ~18% of the classes in the support at α = 1.25
        return 8.0 * torch.randn(b, K, generator=g, dtype=torch.float64) / 512**0.5
    if regime == "flat":  # nearly every class in the support
        return 0.05 * torch.randn(b, K, generator=g, dtype=torch.float64)
    if regime == "ties":  # a few distinct values: large blocks of exact ties
        return torch.randint(0, 12, (b, K), generator=g).double() / 16.0
    raise AssertionError(regime)


CASES = [(a, r) for r in ("normal", "wide", "flat", "ties") for a in (1.25, 1.5, 2.0)] + [(3.0, "wide"), (3.0, "ties")]


@pytest.mark.parametrize(("alpha", "regime"), CASES)
def test_wide_rows_match_the_bisection_oracle(alpha, regime):
    z = _rows(regime, 2)
    y = torch.tensor([K // 2, K - 1])
    p = alpha_softargmax(z, alpha)
    expected = ref.softargmax(z, alpha)
    torch.testing.assert_close(p, expected, rtol=0, atol=5e-12)  # (α = 3 on ties: 2e-12, as the solver always had)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-12)
    zz = z.clone().requires_grad_(True)
    loss = alpha_divergence_loss(zz, y, alpha, reduction="none")
    target = torch.nn.functional.one_hot(y, K).double()
    # the loss of the oracle's p in the form with the Σ q terms cancelled (alpha_reference.loss sums 1e5 divergence
    # terms of about 1/(α(α−1)) each, whose rounding reaches 1e-8 here; at α = 3 on ties the oracle's own p is off
    # by 2e-12 on 25,000 classes, all the same way: 1e-8 in the loss)
    rows = torch.arange(2)
    expected_loss = (expected * (z - z[rows, y, None])).sum(-1) + (1 - expected.pow(alpha).sum(-1)) / (
        alpha * (alpha - 1)
    )
    tol = 1e-7 if (alpha, regime) == (3.0, "ties") else 1e-9
    torch.testing.assert_close(loss.detach(), expected_loss, rtol=tol, atol=tol)
    loss.sum().backward()
    torch.testing.assert_close(zz.grad, expected - target, rtol=0, atol=5e-12)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0])
def test_float32_wide_rows_match_the_oracle_to_float32_precision(alpha):
    z = _rows("wide").float()
    y = torch.tensor([3, 4, 5])
    torch.testing.assert_close(
        alpha_softargmax(z, alpha).double(), ref.softargmax(z.double(), alpha), rtol=0, atol=1e-7
    )
    loss = alpha_divergence_loss(z, y, alpha, reduction="none")
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), ref.loss(z.double(), y, alpha), rtol=1e-6, atol=1e-6)


def test_a_sample_that_overestimates_the_mass_falls_back_to_the_exact_bound(monkeypatch):
    """Every sampled column is high: the sample's start is above the root; the row starts over from the top-k root."""
    g = torch.Generator().manual_seed(1)
    z = 0.05 * torch.randn(2, K, generator=g, dtype=torch.float64)
    z[:, :: K // alpha_module._SAMPLE] += 1.0
    calls = []
    original = alpha_module._candidates
    monkeypatch.setattr(alpha_module, "_candidates", lambda *a: calls.append(1) or original(*a))
    sol = solve(z, 1.25, scratch=alpha_module.Scratch())  # (the fallback's candidates are not in the scratch)
    assert len(calls) == 2  # the sampled start, then the fallback
    p = sol.dense(K)
    torch.testing.assert_close(p, ref.softargmax(z, 1.25), rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [1.25, 1.2])
@pytest.mark.parametrize("boost", [0.0, 0.002, 0.01, 0.03])
def test_the_start_from_the_estimate_is_exact_on_either_side_of_the_root(monkeypatch, alpha, boost):
    """The second pass starts from the sampled estimate: two float32 Newton steps and a margin (α 1.25: β = 4), or
    one float64 tangent step (α 1.2: β = 5, not evaluated in buffers). Slightly biased samples put the estimate left of
    the root (0), or right of it by less or more than the slack (the steps land left; or a fallback). p equals the
    oracle in every case; unbiased, the start is within 2 % of the way from the top-k root to the root (the slack
    start it replaces: about 15 %)."""
    g = torch.Generator().manual_seed(2)
    z = 8.0 * torch.randn(2, K, generator=g, dtype=torch.float64) / 512**0.5
    z[:, :: K // alpha_module._SAMPLE] += boost
    starts = []
    original = alpha_module._solve_threshold

    def spy(w, qc, beta, lower=None, buf=None, tol=None):
        result = original(w, qc, beta, lower, buf, tol)
        starts.append((lower, result[0]))
        return result

    monkeypatch.setattr(alpha_module, "_solve_threshold", spy)
    sol = solve(z, alpha)
    torch.testing.assert_close(sol.dense(K), ref.softargmax(z, alpha), rtol=0, atol=5e-12)
    if boost == 0.0:  # [top-k solve, sample estimate (lower = top-k root), second pass (lower = the tangent step)]
        assert len(starts) == 3
        (c_r, _), (start, root) = starts[1], starts[2]
        assert bool(((root - start) < 0.02 * (root - c_r)).all())


@pytest.mark.parametrize("alpha", [1.25, 2.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("order", ["mixed", "widest last"])
def test_row_blocks_equal_rows_solved_alone(monkeypatch, alpha, dtype, order):
    """More rows than one CPU block (with mixed supports; or the later blocks wider, so that the blocks' shared scratch
    space grows, then is reused by a block as wide while the earlier solutions' probabilities are kept): the loss,
    its gradient and the statistics of the batch equal those of each row solved alone, in float32 and float64."""
    z = torch.cat([_rows("wide", 12, seed=2), _rows("normal", 12, seed=3)]).to(dtype)
    if order == "mixed":
        z = z[torch.randperm(24, generator=torch.Generator().manual_seed(4))]
    else:
        z = torch.cat([_rows("normal", 20, seed=3), _rows("wide", 40, seed=5)]).to(dtype)  # blocks of 20 rows
    y = torch.arange(z.shape[0]) * 7
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # blocks of 20 rows whatever the machine
    assert alpha_module._row_blocks(z.shape[0], K, z.device)[0] == slice(0, 20)
    zz = z.clone().requires_grad_(True)
    loss, stats = alpha_divergence_loss_with_stats(zz, y, alpha, reduction="none")
    loss.sum().backward()
    alone, grads, supports = [], [], []
    for i in range(z.shape[0]):
        zi = z[i : i + 1].clone().requires_grad_(True)
        li, si = alpha_divergence_loss_with_stats(zi, y[i : i + 1], alpha, reduction="none")
        li.sum().backward()
        alone.append(li.detach())
        grads.append(zi.grad)
        supports.append(si["support_size"])
    torch.testing.assert_close(loss.detach(), torch.cat(alone), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(zz.grad, torch.cat(grads), rtol=0, atol=1e-7)
    torch.testing.assert_close(stats["support_size"], torch.stack(supports).mean())


def test_the_two_packings_of_the_candidates_agree():
    """The CPU's row-by-row packing and the vectorized one (the GPU's) give the same index matrix and counts, with
    empty rows (one padding column), full rows and every density between; padding repeats the row's first class."""
    g = torch.Generator().manual_seed(3)
    for density in (0.0, 0.001, 0.2, 0.9, 1.0):
        mask = torch.rand(9, 301, generator=g) < density
        mask[2] = False
        mask[5] = True if density > 0.5 else mask[5]
        a_index, a_counts = alpha_module._pack_by_row(mask.numpy())
        b_index, b_counts = alpha_module._pack_vectorized(mask)
        assert torch.equal(a_counts, b_counts) and torch.equal(a_counts, mask.sum(dim=1))
        assert torch.equal(a_index, b_index) and a_index.shape[1] == max(int(mask.sum(dim=1).max()), 1)
        for i in range(mask.shape[0]):  # each row's classes, in order, first
            n = int(a_counts[i])
            assert torch.equal(a_index[i, :n], mask[i].nonzero()[:, 0])
            assert bool((a_index[i, n:] == (a_index[i, 0] if n else 0)).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_candidates_above_are_the_classes_above_the_threshold(dtype):
    """numpy's comparison (float32, float64) and torch's (other dtypes) list exactly the classes with z > thr, NaN
    never included, ±inf thresholds giving every finite class or none."""
    g = torch.Generator().manual_seed(4)
    z = torch.randn(6, 5000, generator=g).to(dtype)
    z[1, ::7] = float("nan")
    z[5, 100:110] = -float("inf")
    thr = torch.tensor([0.5, 0.0, -1.0, 3.0, float("inf"), -float("inf")]).to(dtype)
    index, valid = alpha_module.candidates_above(z, thr)
    for i in range(6):
        expected = (z[i] > thr[i]).nonzero()[:, 0]
        assert int(valid[i].sum()) == expected.numel()
        assert torch.equal(index[i, : expected.numel()], expected)
    assert int(valid[4].sum()) == 0 and int(valid[5].sum()) == 4990


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("K", [1000, 16_384, 16_400, 40_000, 100_003])
def test_top_k_equals_torch_topk(K, dtype):
    """The two-stage top-k (chunk maxima, then the top of the best chunks and the tail) returns the values of
    torch.topk, and indices that hold them: on continuous rows, rows of exact ties, a row whose top lies in the
    tail, rows with −inf and NaN (NaN ranks first, as in torch.topk)."""
    g = torch.Generator().manual_seed(K)
    z = torch.randn(7, K, generator=g, dtype=dtype)
    z[1] = torch.randint(0, 5, (K,), generator=g).to(dtype)  # ties across many chunks
    z[2, -3:] = 10.0  # the largest in the last K mod 32 columns (when there are any)
    z[3, : K // 2] = -float("inf")
    z[4, 5::97] = 6.0 + torch.arange(len(range(5, K, 97)), dtype=dtype) * 1e-3  # the top spread one per chunk
    z[5, 17] = float("nan")
    z[6, ::2] = 100.0  # more than 32 equal maxima
    vals, idx = alpha_module.top_k(z, 32)
    ref_vals = torch.topk(z, 32, dim=1).values
    assert torch.equal(vals.sort(dim=1, descending=True).values.nan_to_num(7.0), ref_vals.nan_to_num(7.0))
    assert torch.equal(z.gather(1, idx).nan_to_num(7.0), vals.nan_to_num(7.0))
    assert bool((idx.sort(dim=1).values.diff(dim=1) > 0).all())  # 32 distinct classes per row


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0, 4.0, 2.5, 0.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_mass_and_its_slope_equal_the_formula(beta, weighted):
    """f(c) = Σ q (w − c)_+^β − 1 and f'(c) = −β Σ q (w − c)_+^{β−1} (terms with w ≤ c excluded) against a direct
    float64 evaluation, for the integer powers (reused buffers, which then hold d and the terms) and pow."""
    g = torch.Generator().manual_seed(int(beta * 10))
    w = -torch.rand(4, 300, generator=g, dtype=torch.float64)
    w[:, 0] = 0.0
    w[3, 50:] = -float("inf")  # padding
    qc = torch.rand(4, 300, generator=g, dtype=torch.float64) + 0.5 if weighted else None
    c = torch.tensor([-0.9, -0.5, -0.1, -0.3], dtype=torch.float64)
    d = (w - c[:, None]).clamp_min(0.0)
    q = torch.ones_like(w) if qc is None else qc
    f_ref = (q * d**beta).sum(dim=1) - 1.0
    fp_ref = -beta * torch.where(d > 0, q * d ** (beta - 1.0), 0.0).sum(dim=1)
    buf = alpha_module._workspace(w, beta)
    f, fp = alpha_module._mass(w, qc, beta, c, buf)
    torch.testing.assert_close(f, f_ref, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(fp, fp_ref, rtol=1e-14, atol=1e-14)
    if buf is not None:
        assert beta in (1.0, 2.0, 3.0, 4.0)
        torch.testing.assert_close(buf[0], d, rtol=0, atol=0)
        torch.testing.assert_close(buf[1], q * d**beta * (d > 0), rtol=1e-15, atol=0)
    else:
        assert beta in (2.5, 0.5)


@pytest.mark.parametrize(("alpha", "regime"), [(1.25, "wide"), (1.5, "normal"), (2.0, "ties"), (3.0, "wide")])
def test_outside_agrees_with_the_probabilities(alpha, regime):
    """AlphaSolution.outside (from the root, no pass over the candidates) says p = 0 exactly where p is 0, for every
    class of a row (each class tried as the one asked), unit and per-class measures."""
    z = _rows(regime, 2, seed=5)
    q = torch.rand(K, generator=torch.Generator().manual_seed(6), dtype=torch.float64) + 0.5
    for measure in (None, q):
        sol = solve(z, alpha, measure)
        p = sol.dense(K)
        for cls in (0, 1, 999, 54_321):
            classes = torch.full((2,), cls)
            assert torch.equal(sol.outside(z, classes), p[:, cls] <= 0)
        top = p.argmax(dim=1)
        assert not bool(sol.outside(z, top).any())


def test_scratch_slots_do_not_overlap_and_grow():
    """The three slots of a shape are disjoint views of one storage, reused for a smaller shape and replaced (the
    old views intact) for a larger one."""
    scratch = alpha_module.Scratch()
    a = [scratch.get(torch.Size([4, 10]), i, torch.device("cpu")) for i in range(3)]
    for i, t in enumerate(a):
        t.fill_(float(i))
    assert [float(t.mean()) for t in a] == [0.0, 1.0, 2.0]
    small = scratch.get(torch.Size([2, 5]), 2, torch.device("cpu"))
    assert small.untyped_storage().data_ptr() == a[0].untyped_storage().data_ptr()
    big = scratch.get(torch.Size([8, 10]), 0, torch.device("cpu"))
    assert big.untyped_storage().data_ptr() != a[0].untyped_storage().data_ptr()
    big.fill_(9.0)
    assert [float(t.mean()) for t in a[:2]] == [0.0, 1.0]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_fill_padding_by_counts(dtype):
    """The padding fill: numpy slices (float32/64 on the CPU) and the masked fill (other dtypes; the GPU's path) put
    the value from each row's count on, and nothing before it."""
    t = torch.arange(24, dtype=torch.float64).reshape(4, 6).to(dtype)
    counts = torch.tensor([0, 3, 6, 1])
    out = alpha_module._fill_padding(t.clone(), counts, -1.0)
    expected = torch.where(torch.arange(6) >= counts[:, None], torch.tensor(-1.0, dtype=dtype), t)
    assert torch.equal(out, expected)


def test_top_k_of_a_strided_matrix():
    """Rows that are not unit-stride (a transposed view) take torch.topk's path: the same values."""
    z = torch.randn(100_000, 3, generator=torch.Generator().manual_seed(8)).t()
    assert z.stride(1) != 1
    vals, idx = alpha_module.top_k(z, 32)
    assert torch.equal(vals.sort(dim=1).values, torch.topk(z, 32, dim=1).values.sort(dim=1).values)
    assert torch.equal(z.gather(1, idx), vals)


@pytest.mark.parametrize(
    ("regime", "alpha", "estimates"), [("wide", 1.25, True), ("normal", 1.25, False), ("wide", 1.5, False)]
)
def test_the_sampled_estimate_runs_only_on_very_wide_rows(monkeypatch, regime, alpha, estimates):
    """The sampled estimate (a third solve, on the top-k and the sample) runs where the sample puts a quarter of a row
    above the top-k root (fresh-init cosine rows at α 1.25); narrower rows go straight to the second pass. Exact
    either way."""
    z = _rows(regime, 2, seed=9)
    calls = []
    original = alpha_module._solve_threshold
    monkeypatch.setattr(alpha_module, "_solve_threshold", lambda *a, **k: calls.append(1) or original(*a, **k))
    sol = solve(z, alpha)
    assert len(calls) == (3 if estimates else 2)
    torch.testing.assert_close(sol.dense(K), ref.softargmax(z, alpha), rtol=0, atol=5e-12)


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 4.0 / 3.0])
@pytest.mark.parametrize("measure", ["per class", "per row"])
def test_wide_rows_with_a_measure_match_the_oracle(alpha, measure):
    """Wide rows (the sampled estimate, the float32 start) under a reference measure within [1/2, 2]."""
    z = _rows("flat", 2, seed=4)
    g = torch.Generator().manual_seed(5)
    shape = (K,) if measure == "per class" else (2, K)
    q = 0.5 + 1.5 * torch.rand(shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(alpha_softargmax(z, alpha, q=q), ref.softargmax(z, alpha, q), rtol=0, atol=5e-12)


def _second_pass_calls(monkeypatch) -> list:
    """(lower, c, f at lower) of every call of the threshold solver."""
    calls = []
    original = alpha_module._solve_threshold

    def spy(w, qc, beta, lower=None, buf=None, tol=None):
        result = original(w, qc, beta, lower, buf, tol)
        calls.append((lower, result[0], result[1], w.shape[1]))
        return result

    monkeypatch.setattr(alpha_module, "_solve_threshold", spy)
    return calls


@pytest.mark.parametrize(("alpha", "scale"), [(1.25, 8.0 / 512**0.5), (1.5, 0.05), (2.0, 1e-5)])
def test_the_float32_start_is_a_lower_bound_just_left_of_the_root(monkeypatch, alpha, scale):
    """On wide rows (supports of 18 % to all of 1e5 classes), float64 Newton starts where two float32 steps from the
    estimate led, moved left by the margin: f there is positive (a lower bound: the root found from it is exact) and
    at most 1e-4, so that two or three float64 evaluations reach the root (four from the tangent start it replaces);
    p equals the oracle."""
    z = scale * torch.randn(3, K, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    calls = _second_pass_calls(monkeypatch)
    evaluations = []
    original_mass = alpha_module._mass
    monkeypatch.setattr(
        alpha_module, "_mass", lambda w, *a: evaluations.append((w.dtype, w.shape[1])) or original_mass(w, *a)
    )
    sol = solve(z, alpha)
    torch.testing.assert_close(sol.dense(K), ref.softargmax(z, alpha), rtol=0, atol=5e-12)
    assert len(calls) == 3  # top-k, sampled estimate, second pass
    _, _, f_start, width = calls[2]
    assert bool((f_start >= 0).all()) and bool((f_start <= 1e-4).all())
    wide = [dtype for dtype, n in evaluations if n == width]
    # (2 float64 evaluations at α 1.25 and 2, 3 at α 1.5 here: its second lands at |f| ≈ 2.5e-11, just above the
    # stopping tolerance, which the summation order of another CPU may put below it)
    assert wide[:2] == [torch.float32] * 2 and wide[2:] in ([torch.float64] * 2, [torch.float64] * 3)


def test_a_float32_start_right_of_the_root_falls_back_to_the_exact_bound(monkeypatch):
    """A margin of the wrong sign puts the float32 start right of the root (f < 0 there in float64): the rows start
    over from the top-k root, and p still equals the oracle."""
    monkeypatch.setattr(alpha_module, "_ROUGH_MARGIN", -1e-2)
    z = _rows("wide", 2, seed=7)
    candidates = []
    original = alpha_module._candidates
    monkeypatch.setattr(alpha_module, "_candidates", lambda *a: candidates.append(1) or original(*a))
    calls = _second_pass_calls(monkeypatch)
    sol = solve(z, 1.25, scratch=alpha_module.Scratch())
    assert bool((calls[2][2] < 0).all())  # the start was right of the root in every row
    assert len(candidates) == 2  # the sampled start, then the fallback from the top-k root
    torch.testing.assert_close(sol.dense(K), ref.softargmax(z, 1.25), rtol=0, atol=5e-12)
