"""Real scores: the six VoxCeleb1-O score files reproduce the table in shared/data/voxceleb1_trials/SOURCE.md."""

from __future__ import annotations

import numpy as np
import pytest

from veriloss.metrics import eer, min_dcf, summarize, tar_at_far

from ..voxceleb_data import SCORES, TABLE, score_file


@pytest.mark.skipif(not SCORES.is_dir(), reason=f"VoxCeleb1 score files not found at {SCORES.resolve()}")
@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_voxceleb_scores_reproduce_source_table(row):
    name, e, dcf, t2, t3 = row
    labels = np.load(SCORES / "groundtruth_labels.npy")
    scores = np.load(score_file(name))
    assert labels.shape == scores.shape == (37720,)
    g, i = scores[labels == 1], scores[labels == 0]
    assert (g.size, i.size) == (18860, 18860)
    tars = tar_at_far(g, i, [1e-2, 1e-3])
    got = (f"{100 * eer(g, i).eer:.2f}%", f"{min_dcf(g, i).min_dcf:.3f}", f"{tars[0].tar:.3f}", f"{tars[1].tar:.3f}")
    assert got == (e, dcf, t2, t3)
    assert tars[1].impostors_admitted <= 18  # k = ⌊1e-3·18860⌋
    assert not tar_at_far(g, i, 1e-5).measurable  # 18860 non-targets cannot measure FAR = 1e-5
    # the reduced (streaming) form gives the same numbers
    s = summarize(g, i, top=189, p_targets=(0.01,))
    assert eer(g, s) == eer(g, i) and min_dcf(g, s) == min_dcf(g, i)
    assert tar_at_far(g, s, [1e-2, 1e-3]) == tars
