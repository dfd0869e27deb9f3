"""Score histograms: counts against numpy, the ImpostorSummary route within its bin resolution (exact on snapped
edges), valid PNGs, log density and the TAR@FAR threshold lines."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from veriloss.metrics import summarize, tar_at_far
from veriloss.metrics.bins import bin_index, bin_low_edge
from veriloss.report.histograms import _edges, _title, histogram_counts, score_histograms, score_range, thresholds


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


def test_log_density_and_threshold_lines_from_arrays(scores):
    from matplotlib.figure import Figure

    g, imp = scores
    fars = [1e-5, 1e-4, 1e-3, 1e-2]  # 1e-5 · 50,000 < 1: not measurable, no line
    ax = Figure().add_subplot()
    assert score_histograms({"s": (g, imp)}, far=fars, ax=ax) == [ax]
    assert ax.get_yscale() == "log"
    lines = [ln for ln in ax.lines if not ln.get_label().startswith("_")]
    want = [p for p in tar_at_far(g, imp, fars) if p.measurable]
    assert [ln.get_xdata()[0] for ln in lines] == [p.threshold for p in want]
    assert [ln.get_label().split(":")[0] for ln in lines] == ["FAR=1e-4", "FAR=0.001", "FAR=0.01"]
    assert thresholds(g, imp, fars) == [(p.far_target, p.threshold) for p in want]
    # one impostor in a bin is above the axis floor; the peaks are below the legend's room at the top
    lo, hi = ax.get_ylim()
    assert 0 < lo < 1 / (imp.size * (imp.max() - min(g.min(), imp.min())) / 80)
    assert np.log(hi / lo) > 1.5 * np.log(max(np.max(p.get_data().values) for p in ax.patches) / lo)


def test_thresholds_from_a_summary_only_where_its_top_resolves_them(scores):
    g, imp = scores
    s = summarize(g, imp, top=60)  # resolves FAR ≤ 59/50,000
    assert thresholds(g, s, [1e-4, 1e-3, 1e-2]) == thresholds(g, imp, [1e-4, 1e-3])
    assert thresholds(g, summarize(g, imp, top=imp.size), [1e-2]) == thresholds(g, imp, [1e-2])


def test_linear_option(scores):
    from matplotlib.figure import Figure

    g, imp = scores
    fig = Figure()
    axes = list(fig.subplots(1, 2).flat)
    assert score_histograms({"a": (g, imp), "b": (g, imp)}, log=False, far=(), ax=axes) == axes
    assert {a.get_yscale() for a in axes} == {"linear"} and not [ln for a in axes for ln in a.lines]
    with pytest.raises(ValueError, match="one Axes per system"):
        score_histograms({"a": (g, imp), "b": (g, imp)}, ax=axes[0])


def test_summary_panels_snap_to_fine_bins_exact_counts_no_comb():
    """Scores near 1 (fine bins 2^-12 wide) on plotting bins ~1.5 fine bins wide: counts are exact on the snapped
    edges and the densities of a smooth distribution do not alternate (the comb the linear edges gave)."""
    rng = np.random.default_rng(2)
    g = np.clip(rng.normal(0.997, 0.001, 500), 0.98, 0.99999).astype(np.float32)
    imp = np.clip(rng.normal(0.99, 0.003, 40000), 0.97, 0.99999).astype(np.float32)
    s = summarize(g, imp, top=5)
    edges = _edges(0.97, 1.0, 80, [s])
    assert np.array_equal(histogram_counts(s, edges), np.histogram(imp, edges)[0])
    assert np.array_equal(bin_low_edge(bin_index(edges, s.shift), s.shift), edges)  # edges are fine-bin edges
    density = histogram_counts(s, edges) / np.diff(edges)
    core = density[(edges[:-1] > 0.985) & (edges[1:] < 0.995)]  # the bulk of the impostors
    assert np.max(np.abs(np.diff(core))) < 0.35 * core.max()
    linear = np.linspace(0.97, 1.0, 81)
    comb = histogram_counts(s, linear) / np.diff(linear)
    core_lin = comb[(linear[:-1] > 0.985) & (linear[1:] < 0.995)]
    assert np.max(np.abs(np.diff(core_lin))) > 0.5 * core_lin.max()  # what the snapping removes


def test_long_names_are_wrapped_in_panel_titles():
    name = "gvlad_amsoftmax_2019-01-11_resnet34_bs142_adam_lr0.001_vlad8_ghost2_bdim512_ohemlevel0__prediction_scores"
    first, second = _title(name).split("\n")
    assert first + second == name and len(first) <= 62 and first.endswith("_")
    assert _title("short") == "short" and _title("x" * 200).count("\n") == 1 and "…" in _title("x" * 200)
