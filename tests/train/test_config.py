"""The config loader: every key checked at load time, each error naming the key, the value, the rule and where the
value came from (``recipe.yaml:LINE`` or ``--set key=value``)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from veriloss.train.config import DEFAULTS, FREE_FORM, _parse, apply_override, load_config, merge
from veriloss.train.schema import SCHEMA, Rule, validate_config

RECIPES = sorted((Path(__file__).resolve().parents[2] / "src" / "veriloss" / "configs").glob("*.yaml"))
HEADER = ["# a recipe", "# (two comment lines so that the keys start at line 3)"]


def _recipe(tmp_path: Path, key: str, text: str) -> tuple[Path, dict[str, int]]:
    """A recipe setting the dotted ``key`` to the YAML ``text`` in block style; the line of each section and key."""
    lines, where = list(HEADER), {}
    parts = key.split(".")
    for depth, part in enumerate(parts):
        lines.append("  " * depth + part + ":" + (f" {text}" if depth == len(parts) - 1 else ""))
        where[".".join(parts[: depth + 1])] = len(lines)
    path = tmp_path / "recipe.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, where


# (dotted key, YAML value, the value as the message shows it, the key the message names if not the same)
BAD = [
    ("grad_clip", "-1", "-1", None),
    ("grad_clip", "0", "0", None),
    ("max_steps", "0", "0", None),
    ("max_steps", "-5", "-5", None),
    ("epochs", "0", "0", None),
    ("epochs", "-1", "-1", None),
    ("epochs", "1.5", "1.5", None),
    ("epochs", "2.0", "2.0 is not an integer (write 2)", None),
    ("epochs", "null", "null", None),
    ("epochs", "abc", "'abc'", None),
    ("seed", "1.7", "1.7", None),
    ("seed", "true", "true", None),
    ("seed", "-1", "-1", None),
    ("optim.nesterov", "maybe", "'maybe'", None),
    ("optim.nesterov", "1", "1", None),
    ("batch_size", "0", "0", None),
    ("checkpoint.every_steps", "0", "0", None),
    ("log.every_steps", "0", "0", None),
    ("log.tensorboard", "'on'", "'on'", None),
    ("log.progress", "null", "null", None),
    ("optim.betas", "5", "5", None),
    ("optim.betas", "[0.9]", "[0.9]", None),
    ("optim.betas", "[0.9, 1.0]", "1.0", "optim.betas[1]"),
    ("loss.name", "123", "123", None),
    ("loss.name", "''", "''", None),
    ("optim.lr", ".nan", "nan", None),
    ("optim.lr", ".inf", "inf", None),
    ("optim.lr", "0", "0", None),
    ("optim.lr", "'0.1'", "'0.1'", None),
    ("device", "gpu", "'gpu'", None),
    ("device", "cuda:x", "'cuda:x'", None),
    ("amp", "fp32", "'fp32'", None),
    ("schedule.kind", "linear", "'linear'", None),
    ("optim.name", "adam", "'adam' is not a valid choice (did you mean 'adamw'?)", None),
    ("schedule.milestones", "[0.5, 0.2]", "[0.5, 0.2] is not strictly increasing", None),
    ("schedule.milestones", "[0, 0.5]", "0", "schedule.milestones[0]"),
    ("schedule.milestones", "0.5", "0.5", None),
    ("schedule.warmup_steps", "-1", "-1", None),
    ("schedule.min_lr_scale", "1.5", "1.5", None),
    ("schedule.gamma", "0", "0", None),
    ("schedule.gamma", "1.5", "1.5", None),
    ("optim.head_lr_scale", "-1", "-1", None),
    ("optim.weight_decay", "-1e-4", "-0.0001", None),
    ("optim.head_weight_decay", "-1", "-1", None),
    ("optim.momentum", "1", "1", None),
    ("optim.momentum", "-0.1", "-0.1", None),
    ("validate.far", "[]", "[] is empty", None),
    ("validate.far", "1e-3", "0.001 is not a list", None),
    ("validate.far", "[0.1, 1]", "1", "validate.far[1]"),
    ("validate.far", "[1e-3, .nan]", "nan", "validate.far[1]"),
    ("validate.every_epochs", "-1", "-1", None),
    ("validate.every_epochs", "1.5", "1.5", None),
    ("validate.max_samples", "1", "1", None),
    ("validate.max_samples", "0", "0", None),
    ("validate.batch_size", "0", "0", None),
    ("num_workers", "-1", "-1", None),
    ("sampler.name", "pk", "'name': 'pk'", "sampler"),
    ("sampler.name", "balanced", "'balanced'", None),
    ("sampler.p", "0", "0", None),
    ("sampler.k", "1.5", "1.5", None),
    ("loss.aux", "[{name: triplet}]", "no 'weight'", "loss.aux[0]"),
    ("loss.aux", "[{name: triplet, weight: .nan}]", "nan", "loss.aux[0].weight"),
    ("loss.aux", "[{name: triplet, weight: 1, params: 3}]", "3", "loss.aux[0].params"),
    ("loss.aux", "[{name: 3, weight: 1}]", "3", "loss.aux[0].name"),
    ("loss.aux", "[{name: triplet, weight: 1, wieght: 2}]", "unknown key(s) 'wieght'", "loss.aux[0]"),
    ("loss.aux", "[{name: triplet, weight: 1}, {name: triplet, weight: 2}]", "repeats the name 'triplet'", None),
    ("loss.aux", "{name: triplet, weight: 1}", "is not a list", None),
    ("loss.reinit", "{}", "{}", None),
    ("loss.reinit", "{at: 1.0}", "1.0", "loss.reinit.at"),
    ("loss.reinit", "{at: 0.2, step: 3}", "{'at': 0.2, 'step': 3}", None),
    ("loss.reinit", "{epoch: -1}", "-1", "loss.reinit.epoch"),
    ("loss.reinit", "{step: 1.5}", "1.5", "loss.reinit.step"),
    ("loss.reinit", "0.25", "0.25", None),
    ("loss.margin_warmup_steps", "-1", "-1", None),
    ("loss.init_std", "0", "0", None),
    ("loss.init_std", ".inf", "inf", None),
    ("optim", "5", "5", None),
]
IDS = [f"{key}={text}" for key, text, _, _ in BAD]


def _explains(message: str, named: str, shown: str) -> None:
    assert named in message and shown in message, message
    assert " must be " in message or " needs " in message, message  # the fix: what is allowed


@pytest.mark.parametrize("key, text, shown, named", BAD, ids=IDS)
def test_a_bad_value_in_a_file_names_the_file_line_key_value_and_rule(tmp_path, key, text, shown, named):
    path, lines = _recipe(tmp_path, key, text)
    named = named or key
    line = lines.get(named.split("[")[0], lines[key])
    with pytest.raises(ValueError) as err:
        load_config(path)
    message = str(err.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{path}:{line}: {named}: "), message
    _explains(message, named, shown)


@pytest.mark.parametrize("key, text, shown, named", BAD, ids=IDS)
def test_a_bad_value_in_an_override_names_the_set(key, text, shown, named):
    with pytest.raises(ValueError) as err:
        load_config(None, [f"{key}={text}"])
    message = str(err.value)
    assert message.startswith(f"--set {key}={text}: {named or key}: "), message
    _explains(message, named or key, shown)


def test_the_message_format(tmp_path):
    path = tmp_path / "omniglot.yaml"
    path.write_text("".join(f"# line {i}\n" for i in range(1, 12)) + "epochs: 1.5\n")
    with pytest.raises(ValueError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}:12: epochs: 1.5 is not an integer; "
        "epochs must be an integer ≥ 1 (number of passes over the training set)"
    )


def test_every_problem_is_reported_in_one_error_one_per_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: 0\noptim:\n  lr: .nan\n  name: adam\nvalidate:\n  far: [0.1, 2]\n")
    with pytest.raises(ValueError) as err:
        load_config(path, ["batch_size=-1"])
    lines = str(err.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"{path}:4",
        f"{path}:3",
        f"{path}:1",
        "--set batch_size=-1",
        f"{path}:6",
    ], lines
    assert [line.split(": ")[1] for line in lines] == [
        "optim.name",
        "optim.lr",
        "epochs",
        "batch_size",
        "validate.far[1]",
    ]


def test_skip_bad_batches_is_gone_and_unknown_keys_name_their_line(tmp_path):
    assert "skip_bad_batches" not in DEFAULTS
    path = tmp_path / "old.yaml"
    path.write_text("seed: 0\nskip_bad_batches: false\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}:2: unknown config key 'skip_bad_batches'"):
        load_config(path)
    with pytest.raises(ValueError, match=r"^--set skip_bad_batches=true: unknown config key 'skip_bad_batches'"):
        load_config(None, ["skip_bad_batches=true"])
    path.write_text("seed: 0\noptim:\n  learning_rate: 0.1\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}:3: unknown config key 'optim.learning_rate'"):
        load_config(path)
    path.write_text("seed: 0\ndata: omniglot\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}:2: config section 'data' must be a mapping"):
        load_config(path)


def test_cross_key_rules(tmp_path):
    path = tmp_path / "pk.yaml"
    path.write_text("batch_size: 16\nsampler: {name: pk, p: 3, k: 3}\n")
    with pytest.raises(
        ValueError, match=rf"^{re.escape(str(path))}:2: sampler: .*p·k = 3·3 = 9, not batch_size \(16\)"
    ):
        load_config(path)
    assert load_config(path, ["sampler.p=4", "sampler.k=4"])["sampler"] == {"name": "pk", "p": 4, "k": 4}
    with pytest.raises(ValueError, match=r"^--set batch_size=32: sampler: .*not batch_size \(32\)"):
        load_config(path, ["sampler.p=4", "sampler.k=4", "batch_size=32"])  # the latest of the keys involved
    with pytest.raises(ValueError, match=r"^--set optim.nesterov=true: optim.nesterov: true needs momentum"):
        load_config(None, ["optim.momentum=0", "optim.nesterov=true"])
    assert load_config(None, ["optim.name=adamw", "optim.momentum=0", "optim.nesterov=true"])  # adamw: unused


def test_overrides_are_checked_after_all_are_applied_and_point_at_themselves(tmp_path):
    path, _ = _recipe(tmp_path, "epochs", "0")
    assert load_config(path, ["epochs=2"])["epochs"] == 2  # fixed by the override: valid
    path, _ = _recipe(tmp_path, "epochs", "2")
    with pytest.raises(ValueError, match=r"^--set epochs=abc: epochs: 'abc' is not an integer"):
        load_config(path, ["epochs=abc"])
    path, _ = _recipe(tmp_path, "validate.far", "[0.1, 0.01]")
    with pytest.raises(ValueError, match=r"^--set validate=\{far: \[2\]\}: validate.far\[0\]: 2 "):
        load_config(path, ["validate={far: [2]}"])
    with pytest.raises(ValueError, match=r"^--set epochs: cannot parse"):
        load_config(None, ["epochs=[1"])


def test_values_at_their_limits_load(tmp_path):
    config = load_config(
        None,
        [
            "max_steps=1",
            "epochs=1",
            "grad_clip=0.5",
            "seed=4294967295",
            "device=cuda:1",
            "amp=none",
            "optim.betas=[0, 0.999]",
            "optim.momentum=0",
            "optim.head_lr_scale=0",
            "optim.head_weight_decay=0",
            "schedule={kind: step, milestones: [0.5, 0.75], gamma: 1, warmup_steps: 0, min_lr_scale: 1}",
            "validate={every_epochs: null, max_samples: 2, far: [1e-6]}",
            "loss.aux=[{name: triplet, weight: -0.5, params: null}, {name: contrastive, weight: 1, params: {}}]",
            "loss.reinit={step: 0}",
            "loss.init_std=1e-3",
            "sampler={name: pk, p: 64, k: 4}",
            "num_workers=0",
        ],
    )
    assert config["loss"]["reinit"] == {"step": 0} and config["validate"]["far"] == [1e-6]
    assert load_config(None, ["validate.every_epochs=0", "validate.max_samples=null", "max_steps=null"])


def test_a_file_with_a_bom_loads(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeff# été\nepochs: 2\nbatch_size: 64\n".encode())
    config = load_config(path)
    assert config["epochs"] == 2 and config["batch_size"] == 64
    path.write_bytes("\ufeff# été\nepochs: 0\n".encode())
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}:2: epochs: 0 "):
        load_config(path)


def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("epochs: 2\n# café\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"is not UTF-8: byte 0xe9 at offset 15 \(line 2\)") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_validate_config_returns_the_config_and_takes_a_label_or_nothing():
    config = copy.deepcopy(DEFAULTS)
    assert validate_config(config) is config
    config["epochs"] = 0
    with pytest.raises(ValueError, match=r"^suite omniglot, entry x: epochs: 0 is out of range"):
        validate_config(config, "suite omniglot, entry x")
    with pytest.raises(ValueError, match=r"^epochs: 0 is out of range"):
        validate_config(config)
    del config["epochs"]
    config["extra"] = 1
    with pytest.raises(ValueError, match=r"unknown config key 'extra'") as err:
        validate_config(config)
    assert "epochs is missing" in str(err.value)


def test_the_schema_covers_the_defaults_exactly():
    def leaves(tree: dict, prefix: str = ""):
        for key, value in tree.items():
            dotted = prefix + key
            if isinstance(value, dict) and dotted not in FREE_FORM:
                yield from leaves(value, dotted + ".")
            else:
                yield dotted, value

    rules = dict(leaves(SCHEMA))
    assert set(rules) == {key for key, _ in leaves(DEFAULTS)}
    assert all(isinstance(rule, Rule) for rule in rules.values()), rules
    assert all(rule.doc for rule in rules.values()), [k for k, r in rules.items() if not r.doc]
    assert validate_config(copy.deepcopy(DEFAULTS)) == DEFAULTS


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_packaged_recipe_loads_unchanged_and_validates(recipe):
    config = load_config(recipe)
    raw = _parse(recipe.read_text(encoding="utf-8"))
    if "base" in raw:  # the base recipe with this recipe's sections: its loss whole, the others key by key
        base = _parse((recipe.parent / f"{raw.pop('base')}.yaml").read_text(encoding="utf-8"))
        assert "base" not in base and set(raw) == {"loss"}
        raw = {**base, "loss": raw["loss"]}
    assert config == merge(DEFAULTS, raw)  # validation changes nothing
    assert validate_config(copy.deepcopy(config)) == config
    assert apply_override(config, f"epochs={config['epochs']}") == config


def test_every_suite_entry_validates():
    from veriloss.bench.suites import available_suites, load_suite, suite_variants

    for name in available_suites():
        for variant in suite_variants(load_suite(name)):
            validate_config(copy.deepcopy(variant.config), f"suite {name}, entry {variant.name}")


# --- recipes that inherit a base; --set that replaces -----------------------------------------------------------------
def test_a_recipe_inherits_its_base_merging_sections_and_giving_its_loss_whole(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "epochs: 5\noptim: {name: sgd, lr: 0.2}\ndata: {name: synthetic, train_identities: 40}\n"
        "loss: {name: arcface, params: {s: 30, m: 0.5}, reinit: null}\n"
    )
    (tmp_path / "child.yaml").write_text(
        "base: base\noptim: {lr: 0.05}\ndata: {test_identities: 9}\nloss: {name: cosface, params: {m: 0.2}}\n"
    )
    config = load_config(tmp_path / "child.yaml")
    assert config["epochs"] == 5 and config["optim"]["name"] == "sgd" and config["optim"]["lr"] == 0.05
    assert config["data"] == {"name": "synthetic", "train_identities": 40, "test_identities": 9}
    assert config["loss"]["params"] == {"m": 0.2} and config["loss"]["name"] == "cosface"  # no s from the base
    (tmp_path / "grandchild.yaml").write_text("base: child.yaml\nepochs: 2\n")
    config = load_config(tmp_path / "grandchild.yaml")
    assert config["epochs"] == 2 and config["loss"]["name"] == "cosface" and config["optim"]["lr"] == 0.05
    packaged = tmp_path / "packaged.yaml"
    packaged.write_text("base: omniglot_softmax\nepochs: 1\n")
    assert load_config(packaged)["data"]["name"] == "omniglot"


def test_base_errors_name_the_file_and_line(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b\n")
    (tmp_path / "b.yaml").write_text("epochs: 2\nbase: a\n")
    with pytest.raises(ValueError, match=r"base recipes form a cycle"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("epochs: 2\nbase: nowhere\n")
    with pytest.raises(ValueError, match=r"c\.yaml:2: base: recipe 'nowhere' is neither a file nor a packaged"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("epochs: 1.5\n")
    (tmp_path / "e.yaml").write_text("base: d\nbatch_size: 8\n")
    with pytest.raises(ValueError, match=r"d\.yaml:1: epochs: 1\.5 is not an integer"):
        load_config(tmp_path / "e.yaml")


def test_set_with_colon_equals_replaces_instead_of_merging():
    config = load_config("omniglot_qmargin", ["loss:={name: cosface, params: {s: 30, m: 0.2}}"])
    assert config["loss"]["params"] == {"s": 30, "m": 0.2} and config["loss"]["init_std"] is None
    config = load_config("omniglot_qmargin", ["loss.init_std=0.02", "loss.name=cosface", "loss.params:={s: 30}"])
    assert config["loss"]["params"] == {"s": 30} and config["loss"]["init_std"] == 0.02  # the section's other keys stay
    with pytest.raises(ValueError, match=r"--set loss\.name=cosface: unknown loss\.params key\(s\) alpha"):
        load_config("omniglot_qmargin", ["loss.name=cosface"])  # merging keeps the recipe's alpha: a clear error
    config = load_config("omniglot_softmax", ["optim:={name: adamw}"])
    assert config["optim"] == {**DEFAULTS["optim"], "name": "adamw"}  # the section's defaults, not the recipe's
    assert load_config("omniglot_softmax", ["data:={name: synthetic}"])["data"] == {"name": "synthetic"}
    with pytest.raises(ValueError, match=r"--set optim\.nope:=1: unknown config key 'optim\.nope'"):
        load_config(None, ["optim.nope:=1"])
