"""Sweep grids: parsing (bracket-aware commas, YAML values), the cartesian product in order, the configs of each
point, run names, and clear errors for malformed or invalid grids."""

from __future__ import annotations

import itertools

import pytest

from veriloss.bench import expand_grid, parse_grid
from veriloss.bench.grid import split_values
from veriloss.train import load_config
from veriloss.train.config import recipe_path


@pytest.fixture(scope="module")
def qmargin():
    return load_config(recipe_path("omniglot_qmargin"))


def test_split_values_respects_brackets_and_quotes():
    assert split_values("1.25, 1.5,2") == ["1.25", "1.5", "2"]
    assert split_values("{at: 0.1},{at: 0.25}, null") == ["{at: 0.1}", "{at: 0.25}", "null"]
    assert split_values("[1e-3, 1e-4],[0.01]") == ["[1e-3, 1e-4]", "[0.01]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]


def test_the_grid_is_the_cartesian_product_of_the_values(qmargin):
    grid = parse_grid(["loss.params.alpha=1.25,1.5,2", "loss.params.s=8,16"])
    assert grid == [("loss.params.alpha", ["1.25", "1.5", "2"]), ("loss.params.s", ["8", "16"])]
    variants, skipped = expand_grid(qmargin, grid, ["epochs=15", "loss.params.m=0.35"])
    # Q-Margin needs κ ≤ 1, i.e. (α−1)·s·m ≥ 1 with m = 0.35 (set here): only α = 1.25, s = 8 (0.7) is out
    points = [(a, s) for a, s in itertools.product([1.25, 1.5, 2], [8, 16]) if (a - 1) * s * 0.35 >= 1]
    assert len(points) == 5
    assert [(v.config["loss"]["params"]["alpha"], v.config["loss"]["params"]["s"]) for v in variants] == points
    assert [v.name for v in variants] == [f"alpha={a}_s={s}" for a, s in points]
    assert [name for name, _ in skipped] == ["alpha=1.25_s=8"] and "κ" in skipped[0][1]
    assert variants[0].columns == {"alpha": "1.25", "s": "16"}
    for v in variants:  # everything else is the base recipe, with the --set overrides
        assert v.config["epochs"] == 15 and v.config["loss"]["params"]["m"] == 0.35
        rest = {k: x for k, x in v.config.items() if k not in ("loss", "epochs")}
        assert rest == {k: x for k, x in qmargin.items() if k not in ("loss", "epochs")}
        assert v.config["loss"]["name"] == "qmargin"
    variants, skipped = expand_grid(qmargin, grid, ["loss.params.m=null", "loss.params.kappa=0.5"])
    assert len(variants) == 6 and not skipped


def test_grid_over_the_reinitialization_point_and_whole_sections():
    base = load_config(recipe_path("omniglot_a3m-i"))
    variants, _ = expand_grid(base, parse_grid(["loss.reinit.at=0.1,0.5", "loss.params.m=0.1"]))
    assert [v.config["loss"]["reinit"] for v in variants] == [{"at": 0.1}, {"at": 0.5}]
    assert [v.name for v in variants] == ["at=0.1_m=0.1", "at=0.5_m=0.1"]
    variants, _ = expand_grid(base, parse_grid(["loss.reinit={epoch: 1},{step: 50},null"]), ["loss.reinit=null"])
    assert [v.config["loss"]["reinit"] for v in variants] == [{"epoch": 1}, {"step": 50}, None]
    assert [v.name for v in variants] == ["reinit=epoch-1", "reinit=step-50", "reinit=null"]


def test_grid_keys_with_the_same_last_part_keep_their_full_names(qmargin):
    grid = parse_grid(["loss.params.s=16", "loss.params.m=0.3,0.4", "schedule.kind=cosine", "optim.name=sgd"])
    variants, _ = expand_grid(qmargin, grid)
    assert variants[0].columns == {"s": "16", "m": "0.3", "kind": "cosine", "name": "sgd"}
    variants, _ = expand_grid(qmargin, parse_grid(["batch_size=128", "validate.batch_size=256"]))
    assert variants[0].columns == {"batch_size": "128", "validate.batch_size": "256"}
    assert variants[0].name == "batch_size=128_validate.batch_size=256"
    variants, _ = expand_grid(
        qmargin, parse_grid(["loss.params.kappa=0.1", "model.embedding_dim=64"]), ["loss.params.m=null"]
    )
    assert variants[0].config["loss"]["params"]["kappa"] == 0.1 and variants[0].config["model"]["embedding_dim"] == 64


@pytest.mark.parametrize(
    "specs, match",
    [
        ([], "at least one"),
        (["loss.params.alpha"], "expects dotted.key=value1,value2"),
        (["=1,2"], "expects dotted.key"),
        (["loss..alpha=1"], "expects dotted.key"),
        (["loss.params.alpha=1.5,,2"], "empty value"),
        (["loss.params.alpha="], "empty value"),
        (["loss.params.alpha=1.5,1.5"], "repeated value"),
        (["loss.reinit={at: 0.1"], "unbalanced"),
        (["loss.params.s=8", "loss.params.s=16"], "given twice"),
    ],
)
def test_malformed_grids_are_refused(specs, match):
    with pytest.raises(ValueError, match=match):
        parse_grid(specs)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("loss.nope=1,2", "unknown config key 'loss.nope'"),
        ("loss.params.alpha=0.5,0.9", "no point of the grid is a valid config.*alpha must be ≥ 1"),
        ("loss.params.beta=1", r"unknown loss\.params key\(s\) beta"),
        ("loss.name=arcfase", "unknown loss 'arcfase'"),
        ("optim.lr=0.1,{a: [1}", "cannot parse"),
    ],
)
def test_invalid_grid_points_fail_before_training(qmargin, spec, match):
    key, _, values = spec.partition("=")
    with pytest.raises(ValueError, match=match):
        expand_grid(qmargin, [(key, values.split(","))])


def test_values_that_give_the_same_run_name_are_refused(qmargin):
    with pytest.raises(ValueError, match="same run name"):
        expand_grid(qmargin, parse_grid(["data.root=/a/b,/a-b"]))
