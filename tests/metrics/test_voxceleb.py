"""Real scores: the six VoxCeleb1-O score files reproduce the table in shared/data/voxceleb1_trials/SOURCE.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from veriloss.metrics import eer, min_dcf, summarize, tar_at_far

DATA = Path(__file__).parents[2] / ".." / "shared" / "data" / "voxceleb1_trials" / "vgg_thin_resnet34_scores"

# (model as SOURCE.md names it, EER, minDCF(p=0.01), TAR@FAR=1e-2, TAR@FAR=1e-3) as printed in SOURCE.md
TABLE = [
    ("gvlad_softmax/2019-01-11_..._ohemlevel2", "3.31%", "0.339", "0.907", "0.731"),
    ("gvlad_softmax/2019-01-21_..._ohemlevel3", "3.56%", "0.366", "0.897", "0.724"),
    ("gvlad_amsoftmax/2019-01-11_..._ohemlevel0", "3.66%", "0.287", "0.907", "0.794"),
    ("gvlad_amsoftmax/2019-01-21_..._ohemlevel0", "3.98%", "0.368", "0.886", "0.719"),
    ("gvlad_softmax/2019-01-04_..._vlad12_..._bdim256", "3.98%", "0.392", "0.882", "0.657"),
    ("gvlad_amsoftmax/2019-01-17_..._sgd_lr0.05", "5.31%", "0.486", "0.819", "0.606"),
]


def _score_file(name: str) -> Path:
    """The one score file whose name matches SOURCE.md's abbreviated model name ("/" → "_", "..." → "*")."""
    pattern = name.replace("/", "_").replace("...", "*") + "*__prediction_scores.npy"
    (path,) = DATA.glob(pattern)
    return path


@pytest.mark.skipif(not DATA.is_dir(), reason=f"VoxCeleb1 score files not found at {DATA.resolve()}")
@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_voxceleb_scores_reproduce_source_table(row):
    name, e, dcf, t2, t3 = row
    labels = np.load(DATA / "groundtruth_labels.npy")
    scores = np.load(_score_file(name))
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
