"""Datasets, decoders, samplers and augmentation.

Every dataset returns ``(image, label)``: image float32 C×H×W with values in [-1, 1] (pixels x/255 ∈ [0, 1] mapped by
(x − 0.5)/0.5; models need no further normalization), then the dataset's ``transform``; label an int. Attributes:
``labels`` (LongTensor of all labels, known without decoding an image), ``num_classes``, ``channels``,
``image_size``.

A sample that cannot be decoded raises :class:`CorruptSampleError` naming it; :func:`verify_dataset` checks every
sample cheaply up front (before training) and raises, or drops them where the dataset has ``skip_corrupt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from . import augment
from .audio import AUDIO_KEYS, AudioDataset, SyntheticSpeakers, build_audio_dataset
from .corrupt import CorruptSampleError, verify_dataset
from .folder import ImageFolder
from .omniglot import Omniglot
from .recordio import RecordIO, write_recordio
from .samplers import ClassBalancedSampler, PKSampler
from .synthetic import SyntheticIdentities

__all__ = [
    "AudioDataset",
    "ClassBalancedSampler",
    "CorruptSampleError",
    "ImageFolder",
    "Omniglot",
    "PKSampler",
    "RecordIO",
    "SyntheticIdentities",
    "SyntheticSpeakers",
    "augment",
    "build_dataset",
    "verify_dataset",
    "write_recordio",
]

_COMMON = ("name", "image_size", "augment", "skip_corrupt")
_KEYS = {
    "synthetic": ("train_identities", "test_identities", "samples_per_identity", "seed"),
    "omniglot": ("root", "rotations"),
    "image-folder": ("train_root", "test_root", "grayscale"),
    "recordio": ("train_rec", "test_root", "grayscale"),
}
_KEYS.update({k: v[1:] for k, v in AUDIO_KEYS.items()})  # audio datasets: built by build_audio_dataset
_DEFAULT_SIZE = {"synthetic": 32, "omniglot": 28, "image-folder": 112, "recordio": 112}
_OMNIGLOT_ZIPS = {"train": "images_background.zip", "test": "images_evaluation.zip"}


def default_augmentation(name: str, image_size: int) -> augment.Compose:
    """The training pipeline ``augment: true`` selects: characters get a mild affine (no flips: mirrored characters
    are other characters), faces and other photos a horizontal flip and a mild resized crop."""
    if name in ("synthetic", "omniglot"):
        return augment.Compose([augment.RandomAffine(degrees=10, translate=(0.08, 0.08), scale=(0.9, 1.1), shear=10)])
    return augment.Compose(
        [
            augment.RandomHorizontalFlip(0.5),
            augment.RandomResizedCrop(image_size, scale=(0.85, 1.0), ratio=(0.9, 1.1)),
        ]
    )


def _path(data: dict, key: str, what: str) -> Path:
    if data.get(key) is None:
        raise ValueError(f"data.{key} is required for {data['name']!r} ({what})")
    path = Path(data[key]).expanduser()
    if not path.exists():
        raise ValueError(f"data.{key} = {str(path)!r} does not exist; expected {what}")
    return path


def _int(data: dict, key: str, default: int, low: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"data.{key} must be an integer ≥ {low}, got {value!r}")
    return value


def build_dataset(config: dict[str, Any], split: str) -> Dataset:
    """Build the ``split`` ("train" or "test") dataset of a training config's ``data`` section (a plain dict).

    Keys for every dataset:

    - ``name``: "synthetic" (default: generated, no download) | "omniglot" | "image-folder" | "recordio";
    - ``image_size``: side in pixels (default 32 synthetic, 28 omniglot, 112 image-folder / recordio);
    - ``augment``: bool, default false; true adds :func:`default_augmentation` to the train split (never to test);
    - ``skip_corrupt``: bool, default false; drop unreadable images (listed in ``dataset.skipped``) instead of
      raising :class:`CorruptSampleError` (image-folder, recordio: every image decoded once at construction;
      omniglot; no effect on synthetic).

    Per dataset:

    - synthetic: ``train_identities`` (default 1000), ``test_identities`` (200), ``samples_per_identity`` (20),
      ``seed`` (0). Test identities follow the training ones (``identity_offset = train_identities``): disjoint.
    - omniglot: ``root``, the folder holding ``images_background.zip`` (train) and ``images_evaluation.zip`` (test);
      ``rotations`` (default true; train split only): each 90° rotation its own identity.
    - image-folder: ``train_root``, ``test_root`` (one sub-folder per identity); ``grayscale`` (default false).
    - recordio: ``train_rec`` (insightface ``train.rec``, its ``train.idx`` beside it); ``test_root``, optional image
      folder for the test split; ``grayscale`` (default false; the test folder only, RecordIO images are RGB).

    - speechocean, synthetic-audio, audio-folder (VoxCeleb-style ``train_root``/``test_root``), audio-list
      (manifest TSV or Kaldi ``wav.scp``/``utt2spk`` in ``train_list``/``test_list``): audio datasets (waveform items,
      ``channels`` 1, ``image_size`` None, ``sample_rate``; ``chunk_seconds``/``chunk_hop`` average the test
      embeddings over chunks); their keys are in :func:`veriloss.data.audio.build_audio_dataset` (``image_size``
      does not apply; ``skip_corrupt`` drops the files whose header check fails).

    Raises ``ValueError`` for an unknown name or key (listing the valid ones), a missing root, zip or file (naming
    the path and what was expected), or a split other than train/test.
    """
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict (the data section of a training config), got {type(config).__name__}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data = dict(config)
    data.setdefault("name", "synthetic")
    name = data["name"]
    if name in AUDIO_KEYS:
        return build_audio_dataset(data, split)
    if name not in _KEYS:
        raise ValueError(f"data.name {name!r} is unknown; valid names: {', '.join(_KEYS)}")
    valid = _COMMON + _KEYS[name]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ValueError(f"unknown data key(s) {', '.join(unknown)} for {name!r}; valid keys: {', '.join(valid)}")
    image_size = _int(data, "image_size", _DEFAULT_SIZE[name], 1)
    for key in ("augment", "skip_corrupt", "rotations", "grayscale"):
        if key in data and not isinstance(data[key], bool):
            raise ValueError(f"data.{key} must be true or false, got {data[key]!r}")
    transform = default_augmentation(name, image_size) if split == "train" and data.get("augment", False) else None
    skip = data.get("skip_corrupt", False)

    if name == "synthetic":
        train_ids = _int(data, "train_identities", 1000, 1)
        test_ids = _int(data, "test_identities", 200, 1)
        return SyntheticIdentities(
            train_ids if split == "train" else test_ids,
            _int(data, "samples_per_identity", 20, 1),
            image_size=image_size,
            seed=_int(data, "seed", 0, 0),
            identity_offset=0 if split == "train" else train_ids,
            transform=transform,
        )
    if name == "omniglot":
        root = _path(data, "root", f"a folder holding {' and '.join(_OMNIGLOT_ZIPS.values())}")
        zip_path = root / _OMNIGLOT_ZIPS[split]
        if not zip_path.is_file():
            raise ValueError(
                f"{str(zip_path)!r} does not exist; data.root must hold Omniglot's {_OMNIGLOT_ZIPS[split]} "
                f"({'training' if split == 'train' else 'open-set test'} split)"
            )
        rotations = data.get("rotations", True) and split == "train"
        return Omniglot(zip_path, image_size=image_size, rotations=rotations, transform=transform, skip_corrupt=skip)
    grayscale = data.get("grayscale", False)
    folder_what = "a folder with one sub-folder of images per identity"
    if name == "recordio" and split == "train":
        rec = _path(data, "train_rec", "an insightface train.rec with its train.idx beside it")
        return RecordIO(rec, image_size=image_size, skip_corrupt=skip, transform=transform)
    if name == "recordio" and data.get("test_root") is None:
        raise ValueError("recordio has no test split unless data.test_root names an image folder")
    root = _path(data, f"{split}_root", folder_what)
    return ImageFolder(root, image_size, grayscale=grayscale, skip_corrupt=skip, transform=transform)
