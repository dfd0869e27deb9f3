"""Utterance lists → :class:`AudioDataset`: manifest TSVs, Kaldi ``wav.scp``/``utt2spk``, speaker folders (VoxCeleb
layout), and deterministic speaker-disjoint splits."""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from .dataset import AudioDataset
from .decode import ZIP_SEPARATOR

__all__ = [
    "AUDIO_EXTENSIONS",
    "from_folder",
    "from_kaldi",
    "from_manifest",
    "read_manifest",
    "speaker_split",
]

#: file name endings :func:`from_folder` takes as audio (lower case; formats libsndfile decodes)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3")


def _items_by_speaker(pairs: Iterable[tuple[str, str]], speakers: Iterable[str] | None):
    """(source, speaker id) pairs → items with labels 0..K−1 in sorted speaker-id order, and that order."""
    pairs = list(pairs)
    present = sorted({s for _, s in pairs})
    if speakers is not None:
        wanted = {str(s) for s in speakers}
        missing = sorted(wanted - set(present))
        if missing:
            raise ValueError(f"speakers {missing[:5]}{' …' if len(missing) > 5 else ''} are not in the list")
        present = sorted(wanted)
    index = {s: i for i, s in enumerate(present)}
    items = [(src, index[s]) for src, s in pairs if s in index]
    return items, present


def _skip_corrupt(ds: AudioDataset, skip: bool) -> AudioDataset:
    """The factories' ``skip_corrupt``: verified once ``utterances`` is set, so the dropped items are named."""
    if skip:
        ds.skip_corrupt = True
        ds.verify()
    return ds


def read_manifest(tsv_path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a tab-separated manifest with a header (columns ``utt``, ``speaker``, ``file`` at least)."""
    path = Path(tsv_path)
    if not path.is_file():
        raise ValueError(f"manifest {str(path)!r} does not exist")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = {"utt", "speaker", "file"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"manifest {str(path)!r} lacks column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    if not rows:
        raise ValueError(f"manifest {str(path)!r} has no rows")
    return rows


def from_manifest(
    tsv_path: str | os.PathLike, zip_or_root: str | os.PathLike, speakers: Iterable[str] | None = None, **kwargs
) -> AudioDataset:
    """:class:`AudioDataset` of a manifest TSV (``utt, speaker, file, …`` with a header, as speechocean762's).

    ``file`` is relative to ``zip_or_root``: a ``.zip`` archive (read as ``"archive.zip::file"``) or a folder.
    ``speakers`` keeps only those speaker ids; labels number the kept speakers in sorted id order (``speakers``
    attribute of the result). ``kwargs`` go to :class:`AudioDataset`. ``dataset.utterances`` lists utterance ids
    and ``dataset.num_samples`` the manifest's ``num_samples_16k`` when present.
    """
    rows = read_manifest(tsv_path)
    base = os.fspath(zip_or_root)
    is_zip = base.endswith(".zip")
    if is_zip and not os.path.isfile(base):
        raise ValueError(f"zip archive {base!r} does not exist")
    if not is_zip and not os.path.isdir(base):
        raise ValueError(f"audio root {base!r} is neither a .zip archive nor a folder")
    src = {r["utt"]: (f"{base}{ZIP_SEPARATOR}{r['file']}" if is_zip else os.path.join(base, r["file"])) for r in rows}
    items, order = _items_by_speaker(((src[r["utt"]], r["speaker"]) for r in rows), speakers)
    skip = kwargs.pop("skip_corrupt", False)
    ds = AudioDataset(items, speakers=order, **kwargs)
    kept = [r for r in rows if r["speaker"] in set(order)]
    ds.utterances = [r["utt"] for r in kept]
    ds.num_samples = [int(r["num_samples_16k"]) for r in kept] if "num_samples_16k" in rows[0] else None
    return _skip_corrupt(ds, skip)


def _kaldi_table(path: str | os.PathLike, what: str) -> dict[str, str]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what} {str(p)!r} does not exist")
    table = {}
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f"{what} {str(p)!r} line {n}: expected '<utterance-id> <value>', got {line!r}")
        table[parts[0]] = parts[1].strip()
    if not table:
        raise ValueError(f"{what} {str(p)!r} is empty")
    return table


def from_kaldi(
    wav_scp: str | os.PathLike, utt2spk: str | os.PathLike, speakers: Iterable[str] | None = None, **kwargs
) -> AudioDataset:
    """:class:`AudioDataset` of Kaldi ``wav.scp`` (``utt path``; paths may be ``archive.zip::member``; relative
    paths are taken relative to the wav.scp's folder) and ``utt2spk`` (``utt speaker``). Piped commands
    (``… |``) and ``ark:`` offsets are refused. Every utterance must be in both files. Labels number the speakers
    in sorted id order, as :func:`from_manifest`; ``dataset.utterances`` lists utterance ids in wav.scp order."""
    wavs = _kaldi_table(wav_scp, "wav.scp")
    spk = _kaldi_table(utt2spk, "utt2spk")
    only_wav, only_spk = sorted(set(wavs) - set(spk)), sorted(set(spk) - set(wavs))
    if only_wav or only_spk:
        raise ValueError(
            f"wav.scp and utt2spk list different utterances: {len(only_wav)} only in wav.scp (e.g. {only_wav[:3]}), "
            f"{len(only_spk)} only in utt2spk (e.g. {only_spk[:3]})"
        )
    root = Path(wav_scp).parent
    pairs = []
    for utt, path in wavs.items():
        if path.endswith("|") or path.startswith("ark:") or re.search(r"\.ark:\d+$", path):
            raise ValueError(f"wav.scp entry {utt!r}: only file paths are supported, got {path!r}")
        if not os.path.isabs(path):
            path = str(root / path)
        pairs.append((path, spk[utt]))
    items, order = _items_by_speaker(pairs, speakers)
    skip = kwargs.pop("skip_corrupt", False)
    ds = AudioDataset(items, speakers=order, **kwargs)
    keep = set(order)
    ds.utterances = [u for u in wavs if spk[u] in keep]
    return _skip_corrupt(ds, skip)


def from_folder(
    root: str | os.PathLike,
    speakers: Iterable[str] | None = None,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
    **kwargs,
) -> AudioDataset:
    """:class:`AudioDataset` of a folder with one sub-folder per speaker and audio files at any depth below it,
    as VoxCeleb's ``wav/id10270/x6uYqmx31kE/00001.wav`` (``root`` = ``wav``).

    A file's speaker is the first component of its path relative to ``root``, and that path with ``/``
    separators is its key (``dataset.utterances``): for VoxCeleb exactly the keys of the trial lists, so
    embeddings of the folder score a list directly. Files whose name ends with one of ``extensions`` (any case)
    count, hidden files and folders (name starting with ``.``) and other files are ignored; symbolic links are
    followed. Items are in sorted key order; labels number the speakers in sorted id order (``speakers``
    keeps only those), as :func:`from_manifest`. An audio file directly in ``root`` (no speaker folder) or a
    folder without audio raises ``ValueError``. ``kwargs`` go to :class:`AudioDataset`.
    """
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"audio folder {str(base)!r} does not exist")
    exts = tuple(str(e).lower() for e in extensions)
    keys = []
    for folder, subfolders, files in os.walk(base, followlinks=True):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        rel = Path(folder).relative_to(base)
        keys += [(rel / f).as_posix() for f in files if f.lower().endswith(exts) and not f.startswith(".")]
    keys.sort()
    if not keys:
        raise ValueError(f"audio folder {str(base)!r} holds no audio files (names ending with {', '.join(exts)})")
    loose = [k for k in keys if "/" not in k]
    if loose:
        raise ValueError(
            f"audio folder {str(base)!r}: {len(loose)} file(s) lie directly in it, outside a speaker folder "
            f"(e.g. {loose[:3]}); expected <root>/<speaker>/…/<file>"
        )
    speaker = {k: k.split("/", 1)[0] for k in keys}
    items, order = _items_by_speaker(((str(base / k), speaker[k]) for k in keys), speakers)
    skip = kwargs.pop("skip_corrupt", False)
    ds = AudioDataset(items, speakers=order, **kwargs)
    keep = set(order)
    ds.utterances = [k for k in keys if speaker[k] in keep]
    return _skip_corrupt(ds, skip)


def speaker_split(speakers: Iterable[str], train_speakers: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministic speaker-disjoint split: speakers ordered by ``sha256(f"{seed}:{id}")``; the first
    ``train_speakers`` train, the rest are held out. Both lists are returned sorted. The hash order is a pure
    function of the ids and the seed (no RNG whose stream could change between library versions)."""
    ids = sorted({str(s) for s in speakers})
    if isinstance(train_speakers, bool) or not isinstance(train_speakers, int) or not 0 < train_speakers < len(ids):
        raise ValueError(
            f"train_speakers must be an integer in [1, {len(ids) - 1}] ({len(ids)} speakers), got {train_speakers!r}"
        )
    order = sorted(ids, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    return sorted(order[:train_speakers]), sorted(order[train_speakers:])
