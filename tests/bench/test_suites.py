"""Suites: the packaged omniglot and speaker suites hold the required losses with the packaged recipes' configs;
an entry replaces the base's loss (no parameter leaks); selection by --losses; clear errors for bad suite files."""

from __future__ import annotations

import json

import pytest

from veriloss.bench import available_suites, load_suite, suite_variants
from veriloss.train import load_config
from veriloss.train.config import recipe_path

OMNIGLOT = [
    "softmax", "normface", "sphereface", "cosface", "arcface", "arcface-tuned", "combined", "elasticface-arc",
    "elasticface-arc+", "sface", "harmonic", "alpha", "qmargin", "a3m", "a3m-i", "triplet", "contrastive",
]  # fmt: skip


def _json(x):
    return json.loads(json.dumps(x))


def test_packaged_suites():
    assert {"omniglot", "speaker"} <= set(available_suites())


def test_omniglot_suite_is_the_omniglot_recipe_with_only_the_loss_changed():
    suite = load_suite("omniglot")
    variants = suite_variants(suite)
    assert [v.name for v in variants] == OMNIGLOT
    base = _json(load_config(recipe_path("omniglot_softmax")))
    for v in variants:
        same = {k: x for k, x in v.config.items() if k not in ("loss", "sampler")}
        assert same == {k: x for k, x in base.items() if k not in ("loss", "sampler")}
        if v.name in ("triplet", "contrastive"):
            assert v.config["sampler"] == {"name": "pk", "p": 64, "k": 4}
            assert 64 * 4 == v.config["batch_size"]
        else:
            assert v.config["sampler"] == base["sampler"]
        try:  # where a packaged recipe exists, the suite's config is exactly that recipe
            recipe = recipe_path(f"omniglot_{v.name}")
        except ValueError:
            continue
        assert v.config == _json(load_config(recipe)), v.name
    by_name = {v.name: v.config["loss"] for v in variants}
    assert by_name["harmonic"]["params"] == {"distance": "cosine"}
    assert by_name["a3m-i"]["reinit"] == {"at": 0.25} and by_name["a3m"]["reinit"] is None
    assert by_name["softmax"]["params"] == {}  # the base's loss is replaced, not merged
    assert by_name["elasticface-arc+"]["params"] == {"s": 30.0, "m": 0.5, "sigma": 0.05}
    assert by_name["arcface-tuned"] == {**by_name["arcface"], "params": {"s": 30.0, "m": 0.1}}
    labels = {v.name: v.columns["loss"] for v in variants}
    assert labels["arcface"] == "arcface" and labels["arcface-tuned"] == "arcface-tuned (arcface)"


def test_speaker_suite_is_the_speechocean_recipes():
    variants = suite_variants(load_suite("speaker"))
    assert [v.name for v in variants] == ["arcface", "cosface", "qmargin", "a3m-i", "alpha"]
    for v in variants:
        assert v.config == _json(load_config(recipe_path(f"speechocean_{v.name}"))), v.name


def test_losses_selects_in_suite_order_and_overrides_apply_to_each():
    variants = suite_variants(load_suite("omniglot"), ["epochs=15"], ["qmargin", " arcface"])
    assert [v.name for v in variants] == ["arcface", "qmargin"]
    assert all(v.config["epochs"] == 15 for v in variants)
    assert variants[0].columns == {"loss": "arcface", "parameters": "s=30.0, m=0.5"}


@pytest.mark.parametrize("losses", [["arcfase"], ["arcface", "nope"], [""]])
def test_unknown_losses_are_named(losses):
    with pytest.raises(ValueError, match=r"--losses: unknown loss\(es\).*its losses: softmax, normface"):
        suite_variants(load_suite("omniglot"), (), losses)


def test_an_override_that_does_not_fit_an_entry_names_it():
    with pytest.raises(ValueError, match=r"softmax: unknown loss\.params key\(s\) s for head .softmax."):
        suite_variants(load_suite("omniglot"), ["loss.params.s=8"])


@pytest.mark.parametrize(
    "text, match",
    [
        ("entries: {a: {loss: {name: softmax}}}\nbase: omniglot_softmax\nextra: 1\n", "and nothing else"),
        ("base: omniglot_softmax\nentries: {}\n", "non-empty mapping"),
        ("base: omniglot_softmax\nentries: {a: {sampler: {name: pk}}}\n", "must be a mapping with 'loss'"),
        ("base: omniglot_softmax\nentries: {a: {loss: {params: {}}}}\n", "with a 'name'"),
        ("base: omniglot_softmax\nentries: {a: {loss: {name: softmax}, optim: {}}}\n", "optionally 'sampler'"),
        ("base: no_such_recipe\nentries: {a: {loss: {name: softmax}}}\n", "neither a file nor a packaged recipe"),
        ("base: omniglot_softmax\nentries: [a\n", "not valid YAML"),
    ],
)
def test_bad_suite_files(tmp_path, text, match):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_suite(path)


def test_bad_entries_fail_when_the_suite_is_expanded(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("base: omniglot_softmax\nentries: {a: {loss: {name: softmax, margin: 1}}}\n")
    with pytest.raises(ValueError, match=r"entry 'a': unknown config key 'loss\.margin'"):
        suite_variants(load_suite(path))
    path.write_text("base: omniglot_softmax\nentries: {a: {loss: {name: arcface, params: {s: -1}}}}\n")
    with pytest.raises(ValueError, match=r"^a: "):
        suite_variants(load_suite(path))


def test_unknown_suite():
    with pytest.raises(ValueError, match=r"neither a file nor a packaged suite .*omniglot"):
        load_suite("no_such_suite")
