"""Datasets by name (veriloss.data.registry): a user's own dataset named in a config, load-time checks of a data
section (name, keys, value types) without building anything, and every packaged recipe's data section."""

import inspect
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

import veriloss
from veriloss.data import (
    build_dataset,
    check_dataset_config,
    datasets_available,
    describe_dataset,
    register_dataset,
    unregister_dataset,
)
from veriloss.data import builders as image_builders
from veriloss.data.audio import builders as audio_builders
from veriloss.registry import Registry
from veriloss.train.config import load_config

RECIPES = sorted((Path(veriloss.__file__).parent / "configs").glob("*.yaml"))
PACKAGED = ["synthetic", "omniglot", "image-folder", "recordio", "speechocean", "synthetic-audio", "audio-folder"]
PACKAGED += ["audio-list"]


class Tiny(Dataset):
    """A user's dataset: ``identities`` × ``per_identity`` constant images (test registration)."""

    channels = 1

    def __init__(
        self, split: str, *, identities: int = 3, per_identity: int = 2, image_size: int = 8, level: float = 0.5
    ):
        self.split, self.image_size, self.level = split, image_size, level
        self.labels = torch.arange(identities).repeat_interleave(per_identity)
        self.num_classes = identities

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.full((1, self.image_size, self.image_size), self.level), int(self.labels[i])


def test_a_registered_dataset_is_built_from_its_config_name_and_removed():
    assert register_dataset("test-tiny", Tiny, aliases=("test-t",)) is Tiny
    try:
        assert datasets_available()[-1] == "test-tiny"
        ds = build_dataset({"name": "test-tiny", "identities": 4, "level": 1}, "test")
        assert isinstance(ds, Tiny) and ds.split == "test" and ds.num_classes == 4 and len(ds) == 8
        assert ds[3][0].shape == (1, 8, 8) and ds[3][1] == 1 and ds.level == 1
        assert build_dataset({"name": "TEST-T"}, "train").num_classes == 3  # an alias, any case
        info = describe_dataset("test-t")
        assert info["name"] == "test-tiny" and info["aliases"] == ["test-t"]
        assert info["keys"] == ["name", "identities", "per_identity", "image_size", "level"]
        assert info["parameters"]["image_size"] == 8 and info["required"] == []
        assert info["types"]["level"] == "a number" and info["summary"].startswith("A user's dataset")
        with pytest.raises(ValueError, match=r"data\.identities must be an integer, got '4'"):
            build_dataset({"name": "test-tiny", "identities": "4"}, "train")
        with pytest.raises(ValueError, match=r"unknown data key\(s\) idents for 'test-tiny'; valid keys: name, ident"):
            check_dataset_config({"name": "test-tiny", "idents": 4})
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("test-tiny", Tiny)
    finally:
        unregister_dataset("test-tiny")
    assert "test-tiny" not in datasets_available()
    with pytest.raises(ValueError, match="'test-tiny' is unknown; valid names: synthetic"):
        build_dataset({"name": "test-tiny"}, "train")


def test_a_builder_function_with_required_and_typed_keys():
    made = []

    def pairs(split: str, *, root: str, sizes: list[int] = (4, 8), mode: str | None = None, scale: float = 1.0):
        """Built from a function (test registration)."""
        made.append((split, root, tuple(sizes), mode, scale))
        return Tiny(split, image_size=sizes[0])

    register_dataset("test-pairs", pairs)
    try:
        ds = build_dataset({"name": "test-pairs", "root": "/nowhere", "sizes": [2, 3], "scale": 2}, "train")
        assert isinstance(ds, Tiny) and ds.image_size == 2
        assert made == [("train", "/nowhere", (2, 3), None, 2)]
        check_dataset_config({"name": "test-pairs", "root": "/nowhere", "mode": None})
        with pytest.raises(ValueError, match=r"data\.root is required for 'test-pairs' \(a string\)"):
            check_dataset_config({"name": "test-pairs"})
        with pytest.raises(ValueError, match=r"data\.sizes must be a list \(each item an integer\), got \[2, 'x'\]"):
            check_dataset_config({"name": "test-pairs", "root": "r", "sizes": [2, "x"]})
        with pytest.raises(ValueError, match=r"data\.mode must be a string or null, got 1"):
            check_dataset_config({"name": "test-pairs", "root": "r", "mode": 1})
        assert made == [("train", "/nowhere", (2, 3), None, 2)]  # checks build nothing
    finally:
        unregister_dataset("test-pairs")


def test_register_dataset_refuses_builders_whose_keys_cannot_be_config_keys():
    def no_split(which, *, n: int = 1): ...

    def kwargs(split, **keys): ...

    def named(split, *, name: str = "x"): ...

    for builder, match in ((no_split, "first parameter must be split"), (kwargs, "keys"), (named, "'name' is taken")):
        with pytest.raises(ValueError, match=match):
            register_dataset("test-bad", builder)
    with pytest.raises(ValueError, match="must be a function or a class"):
        register_dataset("test-bad", 3)
    assert "test-bad" not in datasets_available()


def test_the_packaged_datasets_their_order_keys_and_defaults():
    assert datasets_available() == PACKAGED
    sizes = {name: describe_dataset(name)["parameters"]["image_size"] for name in PACKAGED[:4]}
    assert sizes == {"synthetic": 32, "omniglot": 28, "image-folder": 112, "recordio": 112}
    assert describe_dataset("synthetic")["keys"] == [
        "name",
        "image_size",
        "augment",
        "skip_corrupt",
        "train_identities",
        "test_identities",
        "samples_per_identity",
        "seed",
        "validation_identities",
    ]
    crops = {name: describe_dataset(name)["parameters"]["crop_seconds"] for name in PACKAGED[4:]}
    assert crops == {"speechocean": 2.0, "synthetic-audio": None, "audio-folder": 2.0, "audio-list": 2.0}
    assert {describe_dataset(name)["parameters"]["sample_rate"] for name in PACKAGED[4:]} == {16000}
    assert describe_dataset("speechocean")["required"] == ["root"]
    assert describe_dataset("omniglot")["types"]["root"] == "a path"
    for name, keys in audio_builders.AUDIO_KEYS.items():
        assert describe_dataset(name)["keys"] == list(keys)
    builders = {**image_builders.IMAGE_BUILDERS, **audio_builders.AUDIO_BUILDERS}
    for name in PACKAGED:
        assert describe_dataset(name)["summary"], name
        assert next(iter(inspect.signature(builders[name]).parameters)) == "split"


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"name": "mnist"}, r"^data\.name 'mnist' is unknown; valid names: synthetic, omniglot, image-folder, recor"),
        ({"name": "omniglott"}, r"is unknown; .*audio-list \(did you mean 'omniglot'\?\); a dataset of your own"),
        ({"name": ["omniglot"]}, r"data\.name must be a dataset name \(a string\), got \['omniglot'\]"),
        ({"name": "omniglot", "root": "x", "image_size": "28"}, r"^data\.image_size must be an integer, got '28'$"),
        ({"name": "omniglot", "root": 28}, r"data\.root must be a path, got 28"),
        ({"name": "omniglot", "rotations": "no", "root": "x"}, r"data\.rotations must be true or false, got 'no'"),
        ({"name": "omniglot"}, r"^data\.root is required for 'omniglot' \(a path\)"),
        ({"name": "synthetic", "augment": "yes"}, r"^data\.augment must be true or false, got 'yes'$"),
        ({"name": "synthetic", "train_identities": 2.5}, r"^data\.train_identities must be an integer, got 2\.5$"),
        ({"name": "synthetic", "seed": True}, r"data\.seed must be an integer, got True"),
        ({"name": "synthetic", "image_size": 28.0}, r"data\.image_size must be an integer, got 28\.0 \(write 28\)"),
        ({"name": "synthetic", "imagesize": 8}, r"unknown data key\(s\) imagesize .*did you mean 'image_size'"),
        ({"name": "image-folder", "grayscale": 1}, r"data\.grayscale must be true or false, got 1"),
        ({"name": "recordio", "test_root": ["a"]}, r"data\.test_root must be a path or null, got \['a'\]"),
        ({"name": "speechocean", "root": "x", "crop_seconds": "2"}, r"data\.crop_seconds must be a number or null"),
        ({"name": "speechocean", "root": "x", "train_speakers": 95.5}, r"data\.train_speakers must be an integer"),
        ({"name": "synthetic-audio", "seconds": None}, r"data\.seconds must be a number, got None"),
        ({"name": "audio-folder", "sample_rate": "16k"}, r"data\.sample_rate must be an integer, got '16k'"),
        ({"name": "audio-list", "chunk_hop": False}, r"data\.chunk_hop must be a number or null, got False"),
        ({"name": "audio-list", "image_size": 3}, r"unknown data key\(s\) image_size for 'audio-list'"),
    ],
)
def test_check_dataset_config_names_the_key_the_value_and_the_fix(config, match):
    with pytest.raises(ValueError, match=match):
        check_dataset_config(config)


def test_check_dataset_config_reports_every_problem_and_touches_nothing(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a check built or opened something")

    monkeypatch.setattr(Path, "exists", boom)
    monkeypatch.setattr(Path, "is_file", boom)
    monkeypatch.setattr(image_builders, "Omniglot", boom)
    bad = {"name": "omniglot", "image_size": "28", "augment": "yes", "seed": 1}
    with pytest.raises(ValueError) as info:
        check_dataset_config(bad, where="bench.data")
    assert str(info.value).splitlines() == [
        "unknown bench.data key(s) seed for 'omniglot'; valid keys: name, image_size, augment, skip_corrupt, root, "
        "rotations, validation_alphabets",
        "bench.data.root is required for 'omniglot' (a path): it has no default",
        "bench.data.image_size must be an integer, got '28'",
        "bench.data.augment must be true or false, got 'yes'",
    ]
    check_dataset_config({"name": "omniglot", "root": "/definitely/missing"})  # paths are the builder's business
    check_dataset_config({"name": "speechocean", "root": Path("/definitely/missing"), "crop_seconds": None})
    check_dataset_config({})  # synthetic
    with pytest.raises(ValueError, match=r"data must be a mapping"):
        check_dataset_config([("name", "synthetic")])


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_packaged_recipe_data_section_passes(recipe):
    check_dataset_config(load_config(recipe)["data"])


def test_registry_entries_may_be_functions():
    reg = Registry("thing", positional=("split",))

    def make(split, *, size: int = 3, colour="red"):
        return (split, size, colour)

    class Made:
        def __init__(self, split, size: int = 2):
            self.args = (split, size)

    reg.register("made", Made)
    reg.register("make", make, aliases=("mk",))
    assert reg.names() == ["made", "make"] and reg.available() == ["made", "make"]
    assert reg.describe("mk")["parameters"] == {"size": 3, "colour": "red"}
    assert reg.describe("made")["parameters"] == {"size": 2}
    assert reg.create("mk", "train", size=4) == ("train", 4, "red")
    assert reg.create("made", "test").args == ("test", 2)
    with pytest.raises(ValueError, match=r"unknown parameter.*accepted: size, colour"):
        reg.create("make", "train", shape=1)
