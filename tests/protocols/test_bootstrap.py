"""Subject bootstrap front ends: all pairs of labelled embeddings (every replicate equals brute force, also when the
kept impostors must be enlarged; point estimates equal all_pairs'), and trial lists with identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import veriloss.protocols.bootstrap as pb
from veriloss.metrics.bootstrap import _brute_force_metrics, subject_multiplicities
from veriloss.protocols import all_pairs, bootstrap_all_pairs, bootstrap_trials, key_identity
from veriloss.protocols.all_pairs import _genuine, _prepared

FARS = [1e-3, 1e-2, 0.1]
PS = [0.01, 0.05]


def _data(seed=0, k=12):
    torch.manual_seed(seed)
    per = torch.randint(1, 6, (k,))
    lab = torch.repeat_interleave(torch.arange(k) * 3, per)
    x = torch.randn(len(lab), 8) + 1.5 * torch.randn(k, 8).repeat_interleave(per, 0)
    return x, lab


def _brute(x, lab, cs):
    e, ys, _ = _prepared(x, lab)
    s = (e @ e.T).numpy()
    iu = np.triu_indices(len(ys), 1)
    _, yi = np.unique(ys, return_inverse=True)
    a, b, sc = yi[iu[0]], yi[iu[1]], s[iu]
    gm = a == b
    return [_brute_force_metrics(sc[gm], a[gm], sc[~gm], a[~gm], b[~gm], c, FARS, PS) for c in cs]


def _check(res, refs):
    for r, ref in enumerate(refs):
        for key, v in ref.items():
            got = res.metrics[key].replicates[r]
            assert got == v or (math.isnan(got) and math.isnan(v)), (r, key)


def test_all_pairs_replicates_equal_brute_force_and_point_equals_all_pairs():
    x, lab = _data()
    res = bootstrap_all_pairs(x, lab, far=FARS, p_targets=PS, replicates=30, seed=1)
    _check(res, _brute(x, lab, subject_multiplicities(12, 30, 1)))
    ap = all_pairs(x, lab, far=FARS, p_targets=PS)
    assert res.eer.value == ap.eer.eer
    assert [m.value for m in res.min_dcf] == [m.min_dcf for m in ap.min_dcf]
    assert [t.tar for t in ap.tar if t.measurable] == [t.value for t in res.tar if not math.isnan(t.value)]
    assert res.n_impostor == ap.n_impostor and res.n_genuine == ap.n_genuine
    assert res.identities.tolist() == sorted(set(lab.tolist()))


def test_genuine_identities_follow_all_pairs_order():
    x, lab = _data(3, k=40)
    e, _, seg_end = _prepared(x, lab)
    g = _genuine(e, seg_end)
    runs = pb._genuine_runs(seg_end)
    assert runs.size == g.size
    for r in np.unique(runs):  # the scores of each run are that run's Gram upper triangle
        z = int(seg_end[r] - r)
        block = (e[r : r + z] @ e[r : r + z].T).numpy()[np.triu_indices(z, 1)]
        np.testing.assert_allclose(np.sort(g[runs == r]), np.sort(block), rtol=0, atol=1e-6)  # bmm vs mm rounding


def test_all_pairs_enlarges_the_kept_impostors(monkeypatch):
    """A too-small first guess (EER predicted as 1e-4) is detected and corrected: still exact."""
    x, lab = _data(2)

    class Tiny:
        eer = 1e-4

    calls = []
    real = pb._collect
    monkeypatch.setattr(pb, "eer", lambda *a: Tiny())
    monkeypatch.setattr(pb, "min_dcf", lambda *a, **k: type("M", (), {"min_dcf": 1e-6})())
    monkeypatch.setattr(pb, "_collect", lambda *a: calls.append(a[3]) or real(*a))
    res = bootstrap_all_pairs(x, lab, far=[1e-3], p_targets=PS, replicates=20, seed=2)
    assert len(calls) > 1 and calls[1] < calls[0]
    refs = _brute(x, lab, subject_multiplicities(12, 20, 2))
    for r, ref in enumerate(refs):
        assert res.eer.replicates[r] == ref["eer"]
        assert res.metrics["min_dcf@p=0.05"].replicates[r] == ref["min_dcf@p=0.05"]


def test_all_pairs_argument_errors():
    x, lab = _data()
    with pytest.raises(ValueError, match="replicates must be"):
        bootstrap_all_pairs(x, lab, replicates=0)
    with pytest.raises(ValueError, match="no genuine pairs"):
        bootstrap_all_pairs(x[:3], torch.arange(3))
    with pytest.raises(ValueError, match="block_size"):
        bootstrap_all_pairs(x, lab, block_size=0)


def test_trials_front_end():
    rng = np.random.default_rng(0)
    ids = [f"id{k}" for k in range(8)]
    enroll, test, y, s = [], [], [], []
    for i in range(8):
        for j in range(8):
            for _ in range(2):
                enroll.append(f"{ids[i]}/a.wav")
                test.append(f"{ids[j]}/b.wav")
                y.append(i == j)
                s.append(rng.normal(2.0 if i == j else 0.0))
    a = [key_identity(k) for k in enroll]
    b = [key_identity(k) for k in test]
    res = bootstrap_trials(s, y, a, b, far=[0.05], replicates=50, seed=0)
    assert res.identities.tolist() == ids and res.eer.replicates.shape == (50,)
    yy = np.array(y)
    with pytest.raises(ValueError, match=r"target trial 1 joins identities .id0. and .id1."):
        bootstrap_trials(s, yy, a, b[1:] + b[:1], replicates=5)
    with pytest.raises(ValueError, match="names no identity"):
        key_identity("utt001.wav")
    with pytest.raises(ValueError, match="one identity per trial"):
        bootstrap_trials(s, yy, a[:-1], b)
