"""scores.npz: the genuine scores and the impostor summary of an all-pairs evaluation, stored small, give back the
same EER, minDCF, AUC, TAR@FAR (for the stored FARs) and ROC points as the full evaluation; checked against the
plain score arrays (an independent brute-force reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veriloss.bench import load_scores, save_scores
from veriloss.metrics import auc, eer, min_dcf, roc, tar_at_far
from veriloss.protocols import all_pairs

FARS = [1e-2, 1e-3]


@pytest.fixture(scope="module")
def evaluation():
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(300) // 6
    emb = torch.randn(300, 8, generator=g) + 1.5 * torch.randn(50, 8, generator=g)[labels]
    result = all_pairs(emb, labels, far=[*FARS, 0.1])
    x = torch.nn.functional.normalize(emb.double(), dim=1)
    s = (x @ x.T).float().numpy().astype(np.float64)
    i, j = np.triu_indices(300, 1)
    same = labels.numpy()[i] == labels.numpy()[j]
    return result, s[i, j][same], s[i, j][~same]


def test_round_trip_keeps_every_metric(evaluation, tmp_path):
    result, gen_ref, imp_ref = evaluation
    path = save_scores(tmp_path / "scores.npz", result.genuine, result.impostor, FARS)
    genuine, summary = load_scores(path)
    assert np.array_equal(genuine, result.genuine) and genuine.dtype == result.genuine.dtype
    assert summary.n == imp_ref.size == result.n_impostor
    assert summary.top.size == int(1e-2 * imp_ref.size) + 1  # only what TAR@FAR=1e-2 needs
    full = (result.genuine, result.impostor)
    assert eer(genuine, summary) == eer(*full)
    assert auc(genuine, summary) == auc(*full)
    assert min_dcf(genuine, summary) == min_dcf(*full)
    assert tar_at_far(genuine, summary, FARS) == tar_at_far(*full, FARS)
    r_ours, r_full = roc(genuine, summary), roc(*full)
    assert np.array_equal(r_ours.far, r_full.far) and np.array_equal(r_ours.tar, r_full.tar)
    # and against the brute-force score arrays (float64 cosines: equal up to float32 rounding of the scores)
    assert eer(genuine, summary).eer == pytest.approx(eer(gen_ref, imp_ref).eer, abs=1e-4)
    assert auc(genuine, summary) == pytest.approx(auc(gen_ref, imp_ref), abs=1e-6)
    for ours, ref in zip(tar_at_far(genuine, summary, FARS), tar_at_far(gen_ref, imp_ref, FARS)):
        assert ours.k == ref.k and ours.tar == pytest.approx(ref.tar, abs=2 / gen_ref.size)
    assert path.stat().st_size < summary.counts.nbytes / 100  # histogram stored sparsely
    assert not [p for p in tmp_path.iterdir() if "tmp" in p.name]


def test_a_summary_without_enough_top_scores_is_refused(evaluation, tmp_path):
    result, _, _ = evaluation
    with pytest.raises(ValueError, match="needs"):
        save_scores(tmp_path / "s.npz", result.genuine, result.impostor, [0.5])
    with pytest.raises(ValueError, match="ImpostorSummary"):
        save_scores(tmp_path / "s.npz", result.genuine, np.zeros(10), FARS)


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_scores(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a veriloss scores file"):
        load_scores(tmp_path / "other.npz")
