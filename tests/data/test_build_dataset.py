import numpy as np
import pytest
import torch
from PIL import Image

from veriloss.data import ImageFolder, RecordIO, SyntheticIdentities, build_dataset, write_recordio
from veriloss.data.augment import Compose, RandomAffine, RandomHorizontalFlip, RandomResizedCrop


def test_synthetic_default_and_disjoint_splits():
    cfg = {"name": "synthetic", "train_identities": 5, "test_identities": 3, "samples_per_identity": 2, "seed": 4}
    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert isinstance(train, SyntheticIdentities) and isinstance(test, SyntheticIdentities)
    assert (train.num_classes, len(train), test.num_classes, len(test)) == (5, 10, 3, 6)
    assert (train.identity_offset, test.identity_offset, train.image_size) == (0, 5, 32)
    # the test split's identity 0 is global identity 5: what a larger training set would call identity 5
    bigger = SyntheticIdentities(8, 2, seed=4)
    assert torch.equal(test[0][0], bigger[10][0])
    assert train.transform is None and test.transform is None
    default = build_dataset({}, "train")
    assert (default.num_classes, default.samples_per_identity, default.seed) == (1000, 20, 0)


def test_augment_applies_to_the_train_split_only():
    cfg = {"name": "synthetic", "augment": True, "image_size": 24, "train_identities": 2, "test_identities": 2}
    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert isinstance(train.transform, Compose) and isinstance(train.transform.transforms[0], RandomAffine)
    assert test.transform is None
    torch.manual_seed(0)
    x, _ = train[0]
    assert x.shape == (1, 24, 24)


def test_image_folder_and_recordio(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for ident in ("p1", "p2"):
            (tmp_path / split / ident).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / split / ident / "0.jpg")
    cfg = {"name": "image-folder", "train_root": str(tmp_path / "train"), "test_root": tmp_path / "test"}
    train = build_dataset({**cfg, "image_size": 16, "augment": True}, "train")
    assert isinstance(train, ImageFolder) and train.num_classes == 2 and train.image_size == 16
    kinds = [type(t) for t in train.transform.transforms]
    assert kinds == [RandomHorizontalFlip, RandomResizedCrop]
    assert train[0][0].shape == (3, 16, 16)
    test = build_dataset({**cfg, "grayscale": True}, "test")
    assert test.channels == 1 and test.image_size == 112 and test.transform is None

    write_recordio(tmp_path / "train", [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)] * 3, [0, 1, 1])
    rec_cfg = {"name": "recordio", "train_rec": str(tmp_path / "train.rec"), "image_size": 8}
    rec = build_dataset(rec_cfg, "train")
    assert isinstance(rec, RecordIO) and rec.labels.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match=r"recordio has no test split unless data\.test_root"):
        build_dataset(rec_cfg, "test")
    assert isinstance(build_dataset({**rec_cfg, "test_root": str(tmp_path / "test")}, "test"), ImageFolder)


def test_omniglot_paths(tmp_path):
    with pytest.raises(ValueError, match=r"data.root = .*nowhere.* does not exist; expected a folder holding"):
        build_dataset({"name": "omniglot", "root": str(tmp_path / "nowhere")}, "train")
    with pytest.raises(ValueError, match=r"images_background.zip.* does not exist; data.root must hold"):
        build_dataset({"name": "omniglot", "root": str(tmp_path)}, "train")
    with pytest.raises(ValueError, match=r"data\.root is required"):
        build_dataset({"name": "omniglot"}, "test")


def test_omniglot_rotations_only_for_training(monkeypatch, tmp_path):
    made = []

    class Fake:
        def __init__(self, zip_path, image_size, rotations, transform, skip_corrupt=False):
            made.append((zip_path.name, image_size, rotations, transform is None))

    monkeypatch.setattr("veriloss.data.builders.Omniglot", Fake)  # where the omniglot builder looks it up
    for name in ("images_background.zip", "images_evaluation.zip"):
        (tmp_path / name).write_bytes(b"")
    build_dataset({"name": "omniglot", "root": str(tmp_path)}, "train")
    build_dataset({"name": "omniglot", "root": str(tmp_path), "rotations": True}, "test")
    build_dataset({"name": "omniglot", "root": str(tmp_path), "rotations": False, "augment": True}, "train")
    assert made == [
        ("images_background.zip", 28, True, True),
        ("images_evaluation.zip", 28, False, True),
        ("images_background.zip", 28, False, False),
    ]


@pytest.mark.parametrize(
    ("config", "split", "match"),
    [
        ({"name": "mnist"}, "train", "unknown; valid names: synthetic, omniglot, image-folder, recordio"),
        ({"name": "synthetic", "root": "x"}, "train", "unknown data key.*root.*valid keys: name, image_size"),
        ({"name": "omniglot", "root": "x", "seed": 1}, "train", "unknown data key.*seed"),
        ({"name": "image-folder", "train_root": "/definitely/missing"}, "train", "/definitely/missing.*does not"),
        ({"name": "image-folder"}, "test", "data.test_root is required"),
        ({"name": "recordio", "train_rec": "/missing/train.rec"}, "train", "train.rec.*does not exist"),
        ({"name": "synthetic"}, "val", "split must be"),
        ({"name": "synthetic", "augment": "yes"}, "train", "augment must be true or false"),
        ({"name": "synthetic", "image_size": 0}, "train", "image_size"),
        ({"name": "synthetic", "train_identities": -1}, "train", "train_identities"),
    ],
)
def test_bad_configs(config, split, match):
    with pytest.raises(ValueError, match=match):
        build_dataset(config, split)


def test_config_must_be_a_dict():
    with pytest.raises(ValueError, match="config must be a dict"):
        build_dataset([("name", "synthetic")], "train")
