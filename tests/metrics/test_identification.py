"""Identification metrics against per-probe brute-force loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from veriloss.metrics import dir_at_fpir, identification_ranks, rank_k_accuracy


def _setup(seed: int, tied: bool, n_ids: int = 12, per_id: int = 2, n_probe: int = 60):
    rng = np.random.default_rng(seed)
    g_lab = np.repeat(np.arange(n_ids), per_id)
    rng.shuffle(g_lab)
    p_lab = rng.integers(0, n_ids + 6, n_probe)  # labels ≥ n_ids have no mate
    s = rng.integers(0, 4, (n_probe, g_lab.size)).astype(float) if tied else rng.normal(size=(n_probe, g_lab.size))
    s += 0.5 * (p_lab[:, None] == g_lab[None, :])
    return s, p_lab, g_lab


def _bf_rank(s, p, gl):
    """1 + #other identities whose best entry ≥ the mate's best entry; 0 without a mate."""
    ranks = []
    for row, lab in zip(s, p):
        best = {}
        for v, g in zip(row, gl):
            best[g] = max(best.get(g, -math.inf), v)
        if lab not in best:
            ranks.append(0)
            continue
        ranks.append(1 + sum(1 for g, v in best.items() if g != lab and v >= best[lab]))
    return np.array(ranks)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("per_id", [1, 3])
def test_ranks_and_rank_k(tied, per_id):
    s, p, gl = _setup(0, tied, per_id=per_id)
    ref = _bf_rank(s, p, gl)
    np.testing.assert_array_equal(identification_ranks(s, p, gl), ref)
    np.testing.assert_array_equal(identification_ranks(torch.from_numpy(s).float(), torch.from_numpy(p), gl), ref)
    keep = ref > 0
    acc = rank_k_accuracy(s[keep], p[keep], gl, k=[1, 2, 5])
    assert acc == [pytest.approx(np.mean(ref[keep] <= k)) for k in (1, 2, 5)]
    assert rank_k_accuracy(s[keep], p[keep], gl, k=1) == acc[0]


def test_ties_count_against_the_probe():
    s = np.array([[0.5, 0.5, 0.1]])
    assert identification_ranks(s, [0], [0, 1, 2])[0] == 2
    assert rank_k_accuracy(s, [0], [0, 1, 2], k=1) == 0.0


def _bf_dir(s, p, gl, f, rank):
    ranks = _bf_rank(s, p, gl)
    mated = ranks > 0
    nm_top = s[~mated].max(1)
    k = math.floor(f * nm_top.size + 1e-9)
    if k < 1:
        return None
    cands = [*sorted(set(nm_top.tolist()) | {s[i][gl == p[i]].max() for i in np.flatnonzero(mated)}), math.inf]
    t = next(t for t in cands if np.sum(nm_top >= t) <= k)
    hits = sum(1 for i in np.flatnonzero(mated) if ranks[i] <= rank and s[i][gl == p[i]].max() >= t)
    return hits / mated.sum(), t, int(np.sum(nm_top >= t))


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("rank", [1, 3])
def test_dir_at_fpir(tied, rank):
    s, p, gl = _setup(1, tied, n_probe=200, per_id=2)
    fpirs = [0.5, 0.2, 0.1, 0.05, 0.001]
    res = dir_at_fpir(s, p, gl, fpirs, rank=rank)
    for f, r in zip(fpirs, res):
        ref = _bf_dir(s, p, gl, f, rank)
        if ref is None:
            assert not r.measurable and r.dir is None
            with pytest.raises(ValueError, match="not measurable"):
                float(r)
            continue
        d, t, adm = ref
        assert r.dir == pytest.approx(d) and r.fnir == pytest.approx(1 - d)
        assert r.threshold == t and r.nonmated_admitted == adm <= r.k
        assert r.rank == rank and r.n_mated + r.n_nonmated == 200


def test_identification_bad_input():
    s, p, gl = _setup(2, False)
    with pytest.raises(ValueError, match=r"closed-set.*no gallery entry"):
        rank_k_accuracy(s, p, gl)
    with pytest.raises(ValueError, match="probe_labels must be 1-D with 60"):
        identification_ranks(s, p[:-1], gl)
    with pytest.raises(ValueError, match="scores contain 1 NaN"):
        s2 = s.copy()
        s2[0, 0] = np.nan
        identification_ranks(s2, p, gl)
    with pytest.raises(ValueError, match="k must be"):
        rank_k_accuracy(s, p, gl, k=0)
    with pytest.raises(ValueError, match="fpir must be in the open interval"):
        dir_at_fpir(s, p, gl, 1.0)
    with pytest.raises(ValueError, match="non-mated"):
        dir_at_fpir(s, np.zeros(60, dtype=int), gl, 0.1)
