"""The packaged image datasets as :func:`~veriloss.data.build_dataset` builders: synthetic, omniglot, image-folder,
recordio. Each builder's keyword parameters are the dataset's config keys with their defaults.

Keys of every image dataset: ``image_size`` (side in pixels: 32 synthetic, 28 omniglot, 112 image-folder and
recordio), ``augment`` (false; true adds :func:`default_augmentation` to the train split, never to test),
``skip_corrupt`` (false; true drops unreadable images, listed in ``dataset.skipped``, instead of raising
:class:`~veriloss.data.CorruptSampleError`: image-folder and recordio decode every image once at construction,
omniglot its zip; no effect on synthetic).
"""

from __future__ import annotations

from torch.utils.data import Dataset

from ._params import PathLike, at_least, existing_path
from .augment import Compose, RandomAffine, RandomHorizontalFlip, RandomResizedCrop
from .folder import ImageFolder
from .omniglot import Omniglot
from .recordio import RecordIO
from .synthetic import SyntheticIdentities

__all__ = [
    "IMAGE_BUILDERS",
    "default_augmentation",
    "held_out_alphabets",
    "image_folder",
    "omniglot",
    "recordio",
    "synthetic",
]

OMNIGLOT_ZIPS = {"train": "images_background.zip", "test": "images_evaluation.zip"}
_FOLDER = "a folder with one sub-folder of images per identity"


def default_augmentation(name: str, image_size: int) -> Compose:
    """The training pipeline ``augment: true`` selects: characters get a mild affine (no flips: mirrored characters
    are other characters), faces and other photos a horizontal flip and a mild resized crop."""
    if name in ("synthetic", "omniglot"):
        return Compose([RandomAffine(degrees=10, translate=(0.08, 0.08), scale=(0.9, 1.1), shear=10)])
    return Compose(
        [
            RandomHorizontalFlip(0.5),
            RandomResizedCrop(image_size, scale=(0.85, 1.0), ratio=(0.9, 1.1)),
        ]
    )


def _transform(name: str, split: str, image_size: int, augment: bool) -> Compose | None:
    return default_augmentation(name, image_size) if split == "train" and augment else None


def synthetic(
    split: str,
    *,
    image_size: int = 32,
    augment: bool = False,
    skip_corrupt: bool = False,
    train_identities: int = 1000,
    test_identities: int = 200,
    samples_per_identity: int = 20,
    seed: int = 0,
    validation_identities: int = 0,
) -> SyntheticIdentities:
    """Generated identities (:class:`~veriloss.data.SyntheticIdentities`, no download): ``train_identities`` or
    ``test_identities`` of ``samples_per_identity`` each from ``seed``; the test identities follow the training
    ones (``identity_offset = train_identities``), so the splits are disjoint. ``validation_identities``: the last
    that many of the training identities are held out of "train" and form the "validation" split.

    >>> synthetic("test", train_identities=5, test_identities=3, samples_per_identity=2).identity_offset
    5
    >>> synthetic("validation", train_identities=5, samples_per_identity=2, validation_identities=2).identity_offset
    3
    """
    image_size = at_least("image_size", image_size, 1)
    train_ids = at_least("train_identities", train_identities, 1)
    test_ids = at_least("test_identities", test_identities, 1)
    held = at_least("validation_identities", validation_identities, 0)
    if held >= train_ids:
        raise ValueError(
            f"data.validation_identities must be below data.train_identities ({train_ids}): training keeps the "
            f"others, got {held}"
        )
    count, offset = {
        "train": (train_ids - held, 0),
        "validation": (held, train_ids - held),
        "test": (test_ids, train_ids),
    }[split]
    return SyntheticIdentities(
        count,
        at_least("samples_per_identity", samples_per_identity, 1),
        image_size=image_size,
        seed=at_least("seed", seed, 0),
        identity_offset=offset,
        transform=_transform("synthetic", split, image_size, augment),
    )


def held_out_alphabets(zip_path, count: int) -> list[str]:
    """The alphabets of ``images_background.zip`` that ``data.validation_alphabets: count`` holds out: the last
    ``count`` by name (sorted), a fixed choice that needs no seed. ``count`` must leave at least one for training."""
    names = Omniglot.alphabet_names(zip_path)
    if count >= len(names):
        raise ValueError(
            f"data.validation_alphabets must be below the {len(names)} alphabets of {str(zip_path)!r} (training "
            f"keeps the others), got {count}"
        )
    return names[len(names) - count :] if count else []


def omniglot(
    split: str,
    *,
    image_size: int = 28,
    augment: bool = False,
    skip_corrupt: bool = False,
    root: PathLike,
    rotations: bool = True,
    validation_alphabets: int = 0,
) -> Dataset:
    """Omniglot (:class:`~veriloss.data.Omniglot`) from ``root``, the folder holding ``images_background.zip``
    (train) and ``images_evaluation.zip`` (test); ``rotations`` (train and validation splits): each 90° rotation its
    own identity. ``validation_alphabets``: the last that many alphabets of images_background.zip by name
    (:func:`held_out_alphabets`) are held out of "train"; their characters (× 4 rotations) are the "validation"
    split."""
    image_size = at_least("image_size", image_size, 1)
    held = at_least("validation_alphabets", validation_alphabets, 0)
    folder = existing_path("root", root, "omniglot", f"a folder holding {' and '.join(OMNIGLOT_ZIPS.values())}")
    zip_name = OMNIGLOT_ZIPS["test" if split == "test" else "train"]
    zip_path = folder / zip_name
    if not zip_path.is_file():
        raise ValueError(
            f"{str(zip_path)!r} does not exist; data.root must hold Omniglot's {zip_name} "
            f"({'open-set test' if split == 'test' else 'training'} split)"
        )
    keep = None
    if split != "test" and held:
        names = Omniglot.alphabet_names(zip_path)
        out = set(held_out_alphabets(zip_path, held))
        keep = sorted(out) if split == "validation" else [a for a in names if a not in out]
    return Omniglot(
        zip_path,
        image_size=image_size,
        rotations=rotations and split != "test",
        transform=_transform("omniglot", split, image_size, augment),
        skip_corrupt=skip_corrupt,
        **({"alphabets": keep} if keep is not None else {}),
    )


def image_folder(
    split: str,
    *,
    image_size: int = 112,
    augment: bool = False,
    skip_corrupt: bool = False,
    train_root: PathLike | None = None,
    test_root: PathLike | None = None,
    grayscale: bool = False,
) -> ImageFolder:
    """An :class:`~veriloss.data.ImageFolder` per split: ``train_root``, ``test_root`` (one sub-folder per
    identity), each required for its split; ``grayscale`` one channel instead of RGB."""
    image_size = at_least("image_size", image_size, 1)
    root = existing_path(f"{split}_root", train_root if split == "train" else test_root, "image-folder", _FOLDER)
    transform = _transform("image-folder", split, image_size, augment)
    return ImageFolder(root, image_size, grayscale=grayscale, skip_corrupt=skip_corrupt, transform=transform)


def recordio(
    split: str,
    *,
    image_size: int = 112,
    augment: bool = False,
    skip_corrupt: bool = False,
    train_rec: PathLike | None = None,
    test_root: PathLike | None = None,
    grayscale: bool = False,
) -> Dataset:
    """Train split: the insightface ``train_rec`` (:class:`~veriloss.data.RecordIO`, its ``train.idx`` beside it);
    test split: the image folder ``test_root`` (none unless set); ``grayscale`` applies to that folder only
    (RecordIO images are RGB)."""
    image_size = at_least("image_size", image_size, 1)
    transform = _transform("recordio", split, image_size, augment)
    if split == "train":
        rec = existing_path("train_rec", train_rec, "recordio", "an insightface train.rec with its train.idx beside it")
        return RecordIO(rec, image_size=image_size, skip_corrupt=skip_corrupt, transform=transform)
    if test_root is None:
        raise ValueError("recordio has no test split unless data.test_root names an image folder")
    root = existing_path("test_root", test_root, "recordio", _FOLDER)
    return ImageFolder(root, image_size, grayscale=grayscale, skip_corrupt=skip_corrupt, transform=transform)


#: the packaged image datasets' builders by config name, in listing order
IMAGE_BUILDERS = {"synthetic": synthetic, "omniglot": omniglot, "image-folder": image_folder, "recordio": recordio}
