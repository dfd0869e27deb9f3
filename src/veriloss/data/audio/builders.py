"""The packaged audio datasets as :func:`~veriloss.data.build_dataset` builders: speechocean, synthetic-audio,
audio-folder, audio-list. Each builder's keyword parameters are the dataset's config keys with their defaults.

Keys of every audio dataset: ``crop_seconds`` (train split only: random crops of this length; null: whole
utterances), ``sample_rate`` (16000; files at other rates are resampled), ``augment`` (false; true: speed
0.9/1.0/1.1 and white noise at SNR 5–20 dB with probability 0.5, train split only; synthetic-audio: noise only),
``chunk_seconds`` and ``chunk_hop`` (test split only: embed each utterance as the normalized mean of the normalized
embeddings of chunks this long every ``chunk_hop`` seconds, default half a chunk, see :func:`embedding_chunks`;
null: whole utterances, the default), ``skip_corrupt`` (false; true: drop the files whose header check fails,
:meth:`AudioDataset.verify`, listed in ``dataset.skipped``; no effect on synthetic-audio), ``cache_mb`` (files
only: MiB of decoded utterances each loading process keeps in memory, so epochs after the first skip the decoder;
0 for folders and lists, 1024 for speechocean). Audio datasets give
waveform items, ``channels`` 1, ``image_size`` None and a ``sample_rate``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from .._params import PathLike, at_least, positive_seconds
from ..registry import build_dataset
from .augment import AddNoise, SpeedPerturb
from .dataset import AudioDataset, embedding_chunks
from .lists import from_folder, from_kaldi, from_manifest, read_manifest, speaker_split
from .synthetic import SyntheticSpeakers

__all__ = [
    "AUDIO_BUILDERS",
    "AUDIO_KEYS",
    "SPEECHOCEAN_MANIFEST",
    "SPEECHOCEAN_ZIP",
    "audio_folder",
    "audio_list",
    "build_audio_dataset",
    "speechocean",
    "synthetic_audio",
    "validation_speaker_split",
]

SPEECHOCEAN_ZIP = "speechocean762_train_opus.zip"
SPEECHOCEAN_MANIFEST = "manifest.tsv"


def _rate_and_chunks(sample_rate, chunk_seconds, chunk_hop) -> int:
    """The checked ``sample_rate``, after checking the test-time chunks (``chunk_seconds``/``chunk_hop``: read from
    the config by the evaluation, :func:`veriloss.data.audio.embedding_chunks`; the dataset does not change)."""
    sample_rate = at_least("sample_rate", sample_rate, 8000)
    embedding_chunks(
        sample_rate, positive_seconds("chunk_seconds", chunk_seconds), positive_seconds("chunk_hop", chunk_hop)
    )
    return sample_rate


def _clips(
    split: str, crop_seconds, sample_rate, augment: bool, skip_corrupt: bool, chunk_seconds, chunk_hop, cache_mb=0
) -> dict[str, Any]:
    """The :class:`AudioDataset` arguments every file-based audio dataset shares (crops, rate, augmentation)."""
    sample_rate = _rate_and_chunks(sample_rate, chunk_seconds, chunk_hop)
    augment = augment and split == "train"
    return {
        "sample_rate": sample_rate,
        "crop_seconds": positive_seconds("crop_seconds", crop_seconds) if split == "train" else None,
        "speed": SpeedPerturb() if augment else None,
        "noise": AddNoise(sample_rate=sample_rate) if augment else None,
        "skip_corrupt": skip_corrupt,
        "cache_mb": at_least("cache_mb", cache_mb, 0),
    }


def speechocean(
    split: str,
    *,
    root: PathLike,
    train_speakers: int = 95,
    seed: int = 0,
    crop_seconds: float | None = 2.0,
    sample_rate: int = 16000,
    augment: bool = False,
    chunk_seconds: float | None = None,
    chunk_hop: float | None = None,
    skip_corrupt: bool = False,
    validation_speakers: int = 0,
    cache_mb: int = 1024,
) -> AudioDataset:
    """speechocean762 from ``root`` (the folder with ``speechocean762_train_opus.zip`` and ``manifest.tsv``):
    ``train_speakers`` of its 125 speakers, chosen by :func:`speaker_split` with ``seed``, train; the others are
    the test split. ``validation_speakers``: that many of the training speakers (the last in the same hash order,
    :func:`validation_speaker_split`) are held out of "train" and form the "validation" split; the test split is
    unchanged. ``cache_mb`` defaults to 1024: the 95-speaker training split decodes to ≈ 400 MiB."""
    seed = at_least("seed", seed, 0)
    kwargs = _clips(split, crop_seconds, sample_rate, augment, skip_corrupt, chunk_seconds, chunk_hop, cache_mb)
    folder = Path(root).expanduser()
    zip_path, manifest = folder / SPEECHOCEAN_ZIP, folder / SPEECHOCEAN_MANIFEST
    for path in (zip_path, manifest):
        if not path.is_file():
            raise ValueError(
                f"{str(path)!r} does not exist; data.root must hold {SPEECHOCEAN_ZIP} and {SPEECHOCEAN_MANIFEST}"
            )
    rows = read_manifest(manifest)
    train_speakers = at_least("train_speakers", train_speakers, 1)
    train_ids, test_ids = speaker_split((r["speaker"] for r in rows), train_speakers, seed)
    held = at_least("validation_speakers", validation_speakers, 0)
    train_ids, validation_ids = validation_speaker_split(train_ids, held, seed)
    speakers = {"train": train_ids, "validation": validation_ids, "test": test_ids}[split]
    return from_manifest(manifest, zip_path, speakers=speakers, **kwargs)


def validation_speaker_split(train_ids: list[str], held: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(training speakers kept, validation speakers): the last ``held`` of ``train_ids`` in :func:`speaker_split`'s
    hash order for ``seed`` (so the choice is fixed by the seed and the speaker ids), both sorted; ``held`` = 0
    keeps every speaker."""
    if not held:
        return list(train_ids), []
    if held >= len(train_ids):
        raise ValueError(
            f"data.validation_speakers must be below data.train_speakers ({len(train_ids)}): training keeps the "
            f"others, got {held}"
        )
    return speaker_split(train_ids, len(train_ids) - held, seed)


def synthetic_audio(
    split: str,
    *,
    train_speakers: int = 100,
    test_speakers: int = 20,
    utterances_per_speaker: int = 10,
    seconds: float = 2.0,
    seed: int = 0,
    crop_seconds: float | None = None,
    sample_rate: int = 16000,
    augment: bool = False,
    chunk_seconds: float | None = None,
    chunk_hop: float | None = None,
    skip_corrupt: bool = False,
) -> SyntheticSpeakers:
    """Generated speakers (:class:`SyntheticSpeakers`): ``train_speakers`` or ``test_speakers`` (voices after the
    training ones) with ``utterances_per_speaker`` utterances of ``seconds`` each from ``seed``; ``augment`` adds
    noise only; ``skip_corrupt`` has no effect."""
    seed = at_least("seed", seed, 0)
    sample_rate = _clips(split, crop_seconds, sample_rate, augment, skip_corrupt, chunk_seconds, chunk_hop)[
        "sample_rate"
    ]
    noise = AddNoise(sample_rate=sample_rate) if augment and split == "train" else None
    train = at_least("train_speakers", train_speakers, 1)
    crop = positive_seconds("crop_seconds", crop_seconds) if split == "train" else None
    ds = SyntheticSpeakers(
        train if split == "train" else at_least("test_speakers", test_speakers, 1),
        at_least("utterances_per_speaker", utterances_per_speaker, 1),
        seconds=positive_seconds("seconds", seconds),
        sample_rate=sample_rate,
        seed=seed,
        speaker_offset=0 if split == "train" else train,
        crop_seconds=crop,
        transform=noise,
    )
    return ds


def audio_folder(
    split: str,
    *,
    train_root: PathLike | None = None,
    test_root: PathLike | None = None,
    crop_seconds: float | None = 2.0,
    sample_rate: int = 16000,
    augment: bool = False,
    chunk_seconds: float | None = None,
    chunk_hop: float | None = None,
    skip_corrupt: bool = False,
    cache_mb: int = 0,
) -> AudioDataset:
    """Speaker folders (:func:`from_folder`: one sub-folder per speaker, files at any depth, as VoxCeleb):
    ``train_root``, ``test_root``, each required for its split."""
    kwargs = _clips(split, crop_seconds, sample_rate, augment, skip_corrupt, chunk_seconds, chunk_hop, cache_mb)
    root = train_root if split == "train" else test_root
    if root is None:
        what = "one sub-folder of audio files per speaker"
        raise ValueError(f"data.{split}_root is required for 'audio-folder' ({what})")
    return from_folder(Path(root).expanduser(), **kwargs)


def audio_list(
    split: str,
    *,
    train_list: PathLike | None = None,
    test_list: PathLike | None = None,
    audio_root: PathLike | None = None,
    crop_seconds: float | None = 2.0,
    sample_rate: int = 16000,
    augment: bool = False,
    chunk_seconds: float | None = None,
    chunk_hop: float | None = None,
    skip_corrupt: bool = False,
    cache_mb: int = 0,
) -> AudioDataset:
    """Utterance lists: ``train_list``, ``test_list``, each required for its split, a manifest TSV
    (:func:`from_manifest`; its ``file`` column relative to ``audio_root``, a folder or a .zip, default the
    manifest's folder) or a Kaldi data folder holding ``wav.scp`` and ``utt2spk`` (:func:`from_kaldi`)."""
    kwargs = _clips(split, crop_seconds, sample_rate, augment, skip_corrupt, chunk_seconds, chunk_hop, cache_mb)
    key, listed = f"{split}_list", train_list if split == "train" else test_list
    if listed is None:
        raise ValueError(
            f"data.{key} is required for 'audio-list' (a manifest .tsv or a folder with wav.scp and utt2spk)"
        )
    path = Path(listed).expanduser()
    if path.is_dir():
        ds = from_kaldi(path / "wav.scp", path / "utt2spk", **kwargs)
    elif not path.is_file():
        raise ValueError(f"data.{key} = {str(path)!r} does not exist; expected a manifest .tsv or a Kaldi data folder")
    else:
        base = Path(audio_root).expanduser() if audio_root is not None else path.parent
        ds = from_manifest(path, base, **kwargs)
    return ds


#: the packaged audio datasets' builders by config name, in listing order
AUDIO_BUILDERS = {
    "speechocean": speechocean,
    "synthetic-audio": synthetic_audio,
    "audio-folder": audio_folder,
    "audio-list": audio_list,
}
#: the data keys of each audio dataset name ("name" first)
AUDIO_KEYS = {
    name: ("name", *list(inspect.signature(builder).parameters)[1:]) for name, builder in AUDIO_BUILDERS.items()
}


def build_audio_dataset(data: dict[str, Any], split: str) -> Dataset:
    """:func:`veriloss.data.build_dataset` for a ``data`` section whose ``name`` is an audio dataset
    (:data:`AUDIO_KEYS`); the keys of each are its builder's parameters (:func:`speechocean`,
    :func:`synthetic_audio`, :func:`audio_folder`, :func:`audio_list`)."""
    if data.get("name") not in AUDIO_BUILDERS:
        raise ValueError(f"data.name must be an audio dataset ({', '.join(AUDIO_BUILDERS)}), got {data.get('name')!r}")
    return build_dataset(data, split)
