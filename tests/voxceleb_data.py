"""The real VoxCeleb1-O score files in ../shared/data/voxceleb1_trials and the table of their SOURCE.md."""

from __future__ import annotations

from pathlib import Path

import pytest

VOX = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "voxceleb1_trials"
SCORES = VOX / "vgg_thin_resnet34_scores"
needs_vox = pytest.mark.skipif(not SCORES.is_dir(), reason=f"VoxCeleb1 score files not found at {VOX.resolve()}")

# (model as SOURCE.md names it, EER, minDCF(p=0.01), TAR@FAR=1e-2, TAR@FAR=1e-3) as printed in SOURCE.md
TABLE = [
    ("gvlad_softmax/2019-01-11_..._ohemlevel2", "3.31%", "0.339", "0.907", "0.731"),
    ("gvlad_softmax/2019-01-21_..._ohemlevel3", "3.56%", "0.366", "0.897", "0.724"),
    ("gvlad_amsoftmax/2019-01-11_..._ohemlevel0", "3.66%", "0.287", "0.907", "0.794"),
    ("gvlad_amsoftmax/2019-01-21_..._ohemlevel0", "3.98%", "0.368", "0.886", "0.719"),
    ("gvlad_softmax/2019-01-04_..._vlad12_..._bdim256", "3.98%", "0.392", "0.882", "0.657"),
    ("gvlad_amsoftmax/2019-01-17_..._sgd_lr0.05", "5.31%", "0.486", "0.819", "0.606"),
]


def score_file(name: str) -> Path:
    """The one score file whose name matches SOURCE.md's abbreviated model name ("/" → "_", "..." → "*")."""
    (path,) = SCORES.glob(name.replace("/", "_").replace("...", "*") + "*__prediction_scores.npy")
    return path
