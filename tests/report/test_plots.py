"""ROC/DET plots: valid PNGs of the expected size for one or several systems, arrays or impostor summaries, with
FARs that are not measurable; the drawn staircase and the thinned points are exact ROC points; the marked TAR@FAR
points lie on the drawn curves; axes in, axes out, and no pyplot or backend change when writing files."""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from veriloss.metrics import roc, summarize, tar_at_far
from veriloss.protocols import all_pairs
from veriloss.report.plots import _roc_points, det_plot, roc_plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def systems():
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(1)
    res = all_pairs(torch.randn(200, 6, generator=gen), torch.arange(200) // 5, far=[1e-5, 1e-3, 1e-2])
    return {
        "gaussian": (rng.normal(2.0, 1.0, 500), rng.normal(0.0, 1.0, 20000)),
        "few impostors": (rng.normal(1.0, 1.0, 200), rng.normal(0.0, 1.0, 300)),  # 1e-3·300 < 1
        "all-pairs summary": (res.genuine, res.impostor),
    }


def _check_png(path, width, min_height):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG" and im.size[0] == width and im.size[1] >= min_height
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 10  # not a blank image
    assert not [p for p in path.parent.iterdir() if "tmp" in p.name]  # written atomically: no leftovers


@pytest.mark.parametrize("plot", [roc_plot, det_plot])
def test_several_systems_with_not_measurable_fars(plot, systems, tmp_path):
    out = plot(systems, tmp_path / "p.png", far=[1e-6, 1e-5, 1e-3, 1e-2], title="t")
    assert out == tmp_path / "p.png"
    _check_png(out, width=704, min_height=540)


@pytest.mark.parametrize("plot", [roc_plot, det_plot])
def test_single_system_and_perfect_separation(plot, tmp_path):
    g, imp = np.linspace(2, 3, 50), np.linspace(-1, 1, 1000)  # TAR = 1 at every FAR, EER = 0
    _check_png(plot({"perfect": (g, imp)}, tmp_path / "p.png", far=[1e-3]), width=704, min_height=500)


def test_staircase_reads_tar_at_far(systems):
    """At FAR = f the drawn ROC (steps-post over increasing FAR) shows TAR of the last point with FAR ≤ f, which is
    TAR@FAR=f; this holds for the thinned points too (thinning keeps the point at or below each grid FAR)."""
    g, imp = systems["gaussian"]
    for max_points in (10**9, 300):
        far, tar, n = _roc_points(g, imp, max_points)
        assert n == imp.size
        for f in (1e-4, 1e-3, 1e-2, 0.1, 0.3):
            shown = tar[np.searchsorted(far, f, side="right") - 1]
            exact = tar_at_far(g, imp, f).tar
            assert shown <= exact
            if max_points == 10**9:  # not thinned
                assert shown == exact


def test_thinned_points_are_exact_roc_points(systems):
    g, imp = systems["gaussian"]
    r = roc(g, imp)
    far, tar, _ = _roc_points(g, imp, 300)
    assert 150 < far.size <= 300 < r.far.size
    full = set(zip(r.far.tolist(), r.tar.tolist()))
    assert all(p in full for p in zip(far.tolist(), tar.tolist()))
    assert (far[0], tar[0], far[-1], tar[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0)


def test_bad_input(tmp_path, systems):
    with pytest.raises(ValueError, match="non-empty mapping"):
        roc_plot({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"systems\['a'\] must be a \(genuine, impostor\) pair"):
        det_plot({"a": np.zeros(3)}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"open interval \(0, 1\)"):
        roc_plot(systems, tmp_path / "x.png", far=[0.0])
    with pytest.raises(ValueError, match="NaN"):
        roc_plot({"a": (np.array([1.0, np.nan]), np.zeros(3))}, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("plot", [roc_plot, det_plot])
def test_many_systems_have_distinct_line_styles(plot, systems, tmp_path, monkeypatch):
    """More systems than the ten colours: every curve still differs from the others by colour or dash."""
    import veriloss.report.plots as plots

    seen = {}
    save = plots.save_figure

    def capture(fig, path, *args, **kwargs):
        seen["legend"] = [(h.get_color(), str(h.get_linestyle())) for h in fig.legends[0].legend_handles]
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(plots, "save_figure", capture)
    g, imp = systems["gaussian"]
    many = {f"system {i}": (g + 0.01 * i, imp) for i in range(16)}
    _check_png(plot(many, tmp_path / "p.png", far=[1e-3]), width=704, min_height=700)
    styles = seen["legend"]
    assert len(styles) == 16 and len(set(styles)) == 16
    assert {ls for _, ls in styles[:10]} == {"-"} and {ls for _, ls in styles[10:]} == {"--"}


# --- the marked TAR@FAR points lie on the drawn curve -------------------------------------------------------------
def _on_staircase(xs, ys, x, y) -> bool:
    """(x, y) lies on the axis-aligned polyline through (xs, ys), to float tolerance."""
    close = lambda a, b: abs(a - b) <= 1e-9 * (1 + abs(b))  # noqa: E731
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
        assert close(x0, x1) or close(y0, y1)  # a staircase: only horizontal and vertical segments
        lo_x, hi_x, lo_y, hi_y = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        if (lo_x <= x or close(x, lo_x)) and (x <= hi_x or close(x, hi_x)):
            if (lo_y <= y or close(y, lo_y)) and (y <= hi_y or close(y, hi_y)):
                return True
    return False


def _drawn(ax, n_systems):
    """Per system: the curve's vertices and its TAR@FAR markers, as drawn (data coordinates)."""
    out = []
    for i in range(n_systems):
        color = f"C{i % 10}"
        mine = [ln for ln in ax.lines if ln.get_color() == color]
        (curve,) = [ln for ln in mine if not ln.get_label().startswith("_")]  # the one in the legend
        dots = [ln for ln in mine if ln.get_marker() == "o"]
        marks = np.concatenate([ln.get_xydata() for ln in dots]) if dots else np.empty((0, 2))
        out.append((curve.get_xdata(), curve.get_ydata(), marks))
    return out


_CASES = ["arrays", "few impostors pass", "all-pairs summary", "coarse summary", "ties"]


@functools.cache
def _cases():
    rng = np.random.default_rng(7)
    g, imp = rng.normal(2.0, 1.0, 800), rng.normal(0.0, 1.0, 20000)
    gen = torch.Generator().manual_seed(3)
    y = torch.arange(160) // 8
    x = torch.randn(20, 6, generator=gen)[y] + 0.8 * torch.randn(160, 6, generator=gen)  # 20 identities
    x += 8.0 * torch.randn(6, generator=gen)  # cosines near 1 (as early in training): many scores per summary bin
    res = all_pairs(x, y, far=[1e-4, 1e-3, 1e-2])
    big_g, big_imp = rng.normal(1.5, 1.0, 3000).astype(np.float32), rng.normal(0.0, 1.0, 200000).astype(np.float32)
    tied_g, tied_imp = np.round(rng.normal(1.0, 1.0, 500), 1), np.round(rng.normal(0.0, 1.0, 5000), 1)
    tied_imp[np.argsort(tied_imp)[-2:]] = 9.0  # the two largest impostors tie: at FAR = 1/N no impostor is admitted
    return {
        "arrays": ({"a": (g, imp), "b": (g - 1.0, imp[:3000])}, [5e-5, 1e-4, 2e-4, 1e-3, 1e-2, 0.1]),
        "few impostors pass": ({"few": (g, imp[:300])}, [1 / 300, 0.005, 0.01, 0.1]),
        "all-pairs summary": ({"ap": (res.genuine, res.impostor)}, [1e-4, 1e-3, 1e-2]),
        "coarse summary": (
            {"coarse": (big_g, summarize(big_g, big_imp, top=2001, mantissa_bits=1))},
            [5e-6, 1e-5, 2e-5, 1e-4, 1e-3, 1e-2],
        ),
        "ties": ({"tied": (tied_g, tied_imp)}, [2e-4, 4e-4, 1e-3, 1e-2]),
    }


@pytest.mark.parametrize("case", _CASES)
@pytest.mark.parametrize("max_points", [6000, 40])
def test_marked_points_lie_on_the_drawn_roc(case, max_points):
    from matplotlib.figure import Figure

    systems, fars = _cases()[case]
    ax = Figure().add_subplot()
    assert roc_plot(systems, far=fars, max_points=max_points, ax=ax) is ax
    for (name, (g, imp)), (xs, ys, marks) in zip(systems.items(), _drawn(ax, len(systems))):
        want = [(p.far_target, p.tar) for p in tar_at_far(g, imp, fars) if p.measurable]
        assert len(want) >= 3 and np.allclose(marks, want, rtol=0, atol=0)
        for f, t in want:
            assert _on_staircase(xs, ys, f, t), (case, name, f, t)


@pytest.mark.parametrize("case", _CASES)
def test_marked_points_lie_on_the_drawn_det(case):
    from matplotlib.figure import Figure

    from veriloss.report.plots import _probit

    systems, fars = _cases()[case]
    ax = Figure().add_subplot()
    det_plot(systems, far=fars, max_points=40, ax=ax)
    for (g, imp), (xs, ys, marks) in zip(systems.values(), _drawn(ax, len(systems))):
        pts = [p for p in tar_at_far(g, imp, fars) if p.measurable and 0 < p.tar < 1]
        want = np.c_[_probit([p.far_target for p in pts]), _probit([1 - p.tar for p in pts])]
        assert len(pts) >= 3 and np.allclose(marks, want, rtol=1e-12, atol=0)
        for x, y in want:
            assert _on_staircase(xs, ys, x, y)


def test_coarse_summary_curve_is_exact_at_the_low_end():
    """From a summary the drawn points above its smallest kept top score are every exact operating point there
    (before: only its coarse bin edges, so the TAR@FAR=1e-5 dot sat above the step)."""
    rng = np.random.default_rng(1)
    g, imp = rng.normal(1.5, 1.0, 3000).astype(np.float32), rng.normal(0.0, 1.0, 200000).astype(np.float32)
    s = summarize(g, imp, top=500, mantissa_bits=1)
    far, tar, n = _roc_points(g, s, 10**9)
    exact = roc(g, imp)
    low = exact.false_accepts < 500  # thresholds above the 500th largest impostor
    want = set(zip((exact.false_accepts[low] / n).tolist(), exact.tar[low].tolist()))
    assert want <= set(zip(far.tolist(), tar.tolist()))
    full = set(zip(exact.far.tolist(), exact.tar.tolist()))
    assert all(p in full for p in zip(far.tolist(), tar.tolist()))  # and nothing but exact points


def test_the_curve_starts_at_one_over_n(systems):
    """Operating points with FAR = 0 are drawn from FAR = 1/N (not measurable below): one vertex there."""
    from matplotlib.figure import Figure

    g, imp = systems["gaussian"]
    ax = Figure().add_subplot()
    roc_plot({"g": (g, imp)}, far=[1e-3], ax=ax)
    ((xs, ys, _),) = _drawn(ax, 1)
    zero = roc(g, imp).tar[roc(g, imp).far == 0].max()
    assert (xs[0], ys[0]) == (1 / imp.size, zero) and xs.min() == 1 / imp.size
    assert ax.get_xlim()[0] == pytest.approx(1e-5)  # not far_min = 1e-6: the decade below 1/N = 5e-5


# --- axes in, axes out; the backend is left alone ---------------------------------------------------------------
def test_draws_on_the_callers_axes_and_saves_their_figure(systems, tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    a, b = fig.subplots(1, 2)
    assert roc_plot(systems, far=[1e-3], ax=a, title="roc") is a
    assert det_plot(systems, tmp_path / "both.png", far=[1e-3], ax=b) == tmp_path / "both.png"
    assert a.get_title() == "roc" and a.get_legend() is not None and not fig.legends  # legend inside the axes
    assert len(b.get_legend().get_texts()) == 3 + 4 + 2  # systems, keys, not-measurable note (2 lines)
    with Image.open(tmp_path / "both.png") as im:
        assert im.size == (1100, 440)  # the caller's figure, as it is


def test_import_and_file_output_leave_pyplot_and_the_backend_alone(tmp_path):
    code = f"""
import sys, numpy as np, matplotlib
matplotlib.use("svg")
import veriloss.report.plots as p, veriloss.report.histograms as h, veriloss.report.curves as c
s = {{"x": (np.linspace(1, 2, 50), np.linspace(0, 1.5, 500))}}
out = {str(tmp_path)!r}
p.roc_plot(s, out + "/r.png", far=[0.01]); p.det_plot(s, out + "/d.png", far=[0.01])
h.score_histograms(s, out + "/h.png"); c.plot_training_curves([{{"step": 1, "loss": 1.0}}], out + "/c.png")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["svg", "False"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "d.png", "h.png", "r.png"]


def test_without_path_or_axes_a_pyplot_figure_is_returned(systems):
    import matplotlib.pyplot as plt

    ax = roc_plot(systems, far=[1e-3])
    try:
        assert ax.figure.number in plt.get_fignums() and len(ax.figure.legends) == 1
    finally:
        plt.close(ax.figure)
