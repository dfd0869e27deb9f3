"""Training curves: a two-column grid of readable panels, markers for short series, validation on its own panel."""

from __future__ import annotations

import pytest
from PIL import Image

from veriloss.report.curves import plot_training_curves


def _history(n_train: int, n_val: int) -> list[dict]:
    rows = [
        {"step": 10 * (i + 1), "epoch": 0, "lr": 0.1, "loss": 5.0 - 0.01 * i, "accuracy": 0.01 * i,
         "support_size": 12.0, "py_zero": 0.5, "seconds": 1.0 * i}
        for i in range(n_train)
    ]  # fmt: skip
    for j in range(n_val):
        rows.append({"step": 10 * (j + 1) * n_train // n_val, "epoch": j + 1, "val_eer": 0.3, "val_tar@0.001": 0.2})
    return rows


def test_grid_of_panels(tmp_path):
    out = plot_training_curves(_history(5, 2), tmp_path / "curves.png", title="run")
    assert out == tmp_path / "curves.png"
    with Image.open(out) as im:
        assert im.size == (1056, 929)  # 6 panels: 3 rows × 2 columns of 4.8 × 2.7 in (+ the title), at 110 dpi
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_panels_markers_and_validation():
    fig = plot_training_curves([*_history(5, 2), {"step": 50, "epoch": 1, "extra_stat": 1.5}])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "training loss", "batch accuracy", "learning rate", "α support size", "fraction with p_y = 0",
        "extra_stat", "validation",
    ]  # fmt: skip
    assert all(ax.get_xlim() == pytest.approx((0, 51.5)) for ax in fig.axes)  # one step axis for all
    val = fig.axes[-1]
    assert [ln.get_label() for ln in val.lines] == ["EER", "TAR@FAR=0.001"] and val.get_legend() is not None
    assert {ln.get_marker() for ax in fig.axes for ln in ax.lines} == {"o"}  # fewer than 30 points
    many = plot_training_curves(_history(40, 3))
    assert many.axes[0].lines[0].get_marker() == "None" and many.axes[-1].lines[0].get_marker() == "o"
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(many)


def test_into_a_subfigure_and_nothing_to_plot(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6))
    left, _ = fig.subfigures(1, 2)
    assert plot_training_curves(_history(3, 0), fig=left) is left
    assert len(fig.axes) == 5
    assert plot_training_curves([{"step": 1, "epoch": 0, "seconds": 2.0}], tmp_path / "c.png") is None
    assert not list(tmp_path.iterdir())
