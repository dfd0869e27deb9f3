"""Score histograms: counts against numpy, the ImpostorSummary route within its bin resolution, valid PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from veriloss.metrics import summarize
from veriloss.metrics.summary import bin_index
from veriloss.report.histograms import histogram_counts, score_histograms, score_range


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(5)
    return rng.normal(0.6, 0.1, 400).astype(np.float32), rng.normal(0.0, 0.15, 50000).astype(np.float32)


def test_counts_equal_numpy(scores):
    g, imp = scores
    edges = np.linspace(-1, 1, 41)
    assert np.array_equal(histogram_counts(imp, edges), np.histogram(imp, edges)[0])
    assert histogram_counts(g, edges).dtype == np.int64


def test_summary_counts_within_fine_bin_resolution(scores):
    g, imp = scores
    s = summarize(g, imp, top=10)
    lo, hi = score_range(s)
    assert lo <= imp.min() and hi == imp.max()  # exact top kept
    edges = np.linspace(lo, hi, 61)
    got, want = histogram_counts(s, edges), np.histogram(imp, edges)[0]
    assert got.sum() == imp.size
    # a score can only change plotting bin if its fine bin holds a plotting edge
    fine_imp = bin_index(imp, s.shift)
    straddle = np.array([np.count_nonzero(fine_imp == b) for b in bin_index(edges.astype(np.float32), s.shift)])
    slack = straddle[:-1] + straddle[1:]
    assert np.all(np.abs(got - want) <= slack)
    assert np.abs(got - want).sum() < 0.02 * imp.size
    assert score_range(imp) == (float(imp.min()), float(imp.max()))


@pytest.mark.parametrize("n_systems,rows", [(1, 1), (4, 2)])
def test_png(scores, tmp_path, n_systems, rows):
    g, imp = scores
    systems = {f"s{i}": (g + 0.05 * i, imp if i % 2 else summarize(g, imp, top=2)) for i in range(n_systems)}
    out = score_histograms(systems, tmp_path / "hist.png", bins=50, title="h")
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (round(4.6 * min(3, n_systems) * 110), round(3.4 * rows * 110))
    assert [p.name for p in tmp_path.iterdir()] == ["hist.png"]


def test_bad_input(scores, tmp_path):
    g, imp = scores
    with pytest.raises(ValueError, match="non-empty mapping"):
        score_histograms({}, tmp_path / "h.png")
    with pytest.raises(ValueError, match="bins must be an integer"):
        score_histograms({"a": (g, imp)}, tmp_path / "h.png", bins=1)
    with pytest.raises(ValueError, match="increasing"):
        histogram_counts(imp, np.array([1.0, 0.0]))
