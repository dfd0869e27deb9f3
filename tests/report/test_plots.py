"""ROC/DET plots: valid PNGs of the expected size for one or several systems, arrays or impostor summaries, with
FARs that are not measurable; the drawn staircase and the thinned points are exact ROC points."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from veriloss.metrics import roc, tar_at_far
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
