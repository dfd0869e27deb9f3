"""Validation splits held out of training: disjoint from the training identities, deterministic, test unchanged;
the config keys validate (typos name the choices); a sweep that selects on validation records it and never builds
the test split before its --then-test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from veriloss.data import build_dataset, validation_key
from veriloss.data.audio.builders import validation_speaker_split
from veriloss.data.audio.lists import speaker_split
from veriloss.train.config import load_config

OMNIGLOT = Path("/work/shared/data/omniglot")
SYN = {"name": "synthetic", "image_size": 8, "train_identities": 10, "test_identities": 4, "samples_per_identity": 2}


def _ids(ds) -> set[int]:
    return set(range(ds.identity_offset, ds.identity_offset + ds.num_classes))


def test_synthetic_validation_identities_leave_training():
    cfg = {**SYN, "validation_identities": 3}
    train, val, test = (build_dataset(cfg, s) for s in ("train", "validation", "test"))
    assert _ids(train) == set(range(7)) and _ids(val) == {7, 8, 9} and _ids(test) == {10, 11, 12, 13}
    assert torch.equal(val[0][0], build_dataset(SYN, "train")[7 * 2][0])  # the same images as before, held out
    assert torch.equal(build_dataset(cfg, "validation")[1][0], val[1][0])  # deterministic
    assert validation_key(cfg) == "validation_identities"
    with pytest.raises(ValueError, match=r"data\.validation_identities is 0"):
        build_dataset(SYN, "validation")
    with pytest.raises(ValueError, match=r"below data\.train_identities"):
        build_dataset({**SYN, "validation_identities": 10}, "train")


def test_a_dataset_without_a_validation_key_has_no_validation_split(tmp_path):
    with pytest.raises(ValueError, match=r"has no validation split.*datasets with one: synthetic, omniglot"):
        build_dataset({"name": "image-folder", "test_root": str(tmp_path)}, "validation")


def test_speechocean_validation_speakers_come_from_training_speakers():
    speakers = [f"{i:04d}" for i in range(125)]
    train, test = speaker_split(speakers, 95, seed=0)
    kept, val = validation_speaker_split(train, 15, seed=0)
    assert len(kept) == 80 and len(val) == 15 and not set(kept) & set(val) and set(kept) | set(val) == set(train)
    assert not set(val) & set(test)
    assert validation_speaker_split(train, 15, seed=0) == (kept, val)
    assert validation_speaker_split(train, 0) == (train, [])


@pytest.mark.skipif(not (OMNIGLOT / "images_background.zip").is_file(), reason="no Omniglot data")
def test_omniglot_validation_alphabets_are_not_trained_on():
    cfg = {"name": "omniglot", "root": str(OMNIGLOT), "validation_alphabets": 5}
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "validation")
    names = sorted({a for a, _ in build_dataset({**cfg, "validation_alphabets": 0}, "train").classes})
    assert val.alphabets == names[-5:] and train.alphabets == names[:-5]
    assert not {c for c in train.classes} & {c for c in val.classes}
    assert val.num_classes == 4 * len(val.classes) and len(val) == 4 * 20 * len(val.classes)
    assert train.num_classes + val.num_classes == 3856 and len(train) + len(val) == 77120
    assert int(train.labels.max()) == train.num_classes - 1 and int(val.labels.max()) == val.num_classes - 1
    assert build_dataset(cfg, "test").num_classes == 659  # the test split is unchanged


def test_validate_split_key_validates():
    with pytest.raises(ValueError, match=r"validate.split: 'valid' is not a valid choice \(did you mean 'validation'"):
        load_config(None, ["validate.split=valid"])
    with pytest.raises(ValueError, match=r"data.validation_identities is 0 \(unset\); set data.validation_identities"):
        load_config(None, ["validate.split=validation"])
    with pytest.raises(ValueError, match="dataset 'image-folder' has none"):
        load_config(None, ["data:={name: image-folder}", "validate.split=validation"])
    cfg = load_config(None, ["validate.split=validation", "data.validation_identities=5"])
    assert cfg["validate"]["split"] == "validation" and load_config()["validate"]["split"] == "test"


def test_training_on_the_validation_config_never_sees_validation_identities(tmp_path):
    from veriloss.train.build import build_from_config

    cfg = load_config(None, ["validate.split=validation", "data.validation_identities=3", *(
        f"data.{k}={v}" for k, v in SYN.items() if k != "name")])  # fmt: skip
    built = build_from_config(cfg, lambda _: None)
    assert _ids(built["train_set"]) == set(range(7)) and _ids(built["test_set"]) == {7, 8, 9}
    assert built["train_set"].num_classes == 7


def test_sweep_selects_on_validation_and_records_it(tmp_path, capsys):
    from veriloss.cli import main

    from ..bench.tiny import BASE

    (tmp_path / "base.yaml").write_text(BASE)
    out = tmp_path / "sweep"
    args = ["bench", "sweep", "--base", str(tmp_path / "base.yaml"), "--grid", "loss.params.s=8,16"]
    args += ["--set", "data.validation_identities=4", "--select-on", "validation", "--select-by", "eer"]
    args += ["--then-test", "--out", str(out), "--jobs", "1", "--threads", "1"]
    assert main(args) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["meta"]["split"] == "validation" and doc["meta"]["holdout"] == {"validation_identities": 4}
    sel = doc["selection"]
    assert sel["split"] == "validation" and sel["select_by"] == "eer"
    eers = {v["name"]: v["summary"]["eer"]["mean"] for v in doc["variants"]}
    assert sel["chosen"]["name"] == min(eers, key=eers.get)
    for v in doc["variants"]:  # 4 validation identities × 6 images: 60 genuine, 216 impostor pairs
        assert v["summary"]["n_genuine"] == [60] and v["summary"]["n_impostor"] == [216]
        for r in v["runs"]:
            run = Path(r["dir"])
            assert json.loads((run / "bench.json").read_text())["config"]["validate"]["split"] == "validation"
            assert (run / "test_metrics.json").exists() == (v["name"] == sel["chosen"]["name"])
    (test,) = sel["test"]
    assert test["n_genuine"] == 120 and test["n_impostor"] == 1008  # the 8 test identities, scored after
    md = (out / "report.md").read_text()
    assert "the **validation split**" in md and "selected on: the **validation split**" in md
    assert main([*args[:6], "--select-on", "validation", "--out", str(tmp_path / "x"), "--dry-run"]) == 2
    assert "holds no identities out of training (data.validation_identities is 0)" in capsys.readouterr().err
