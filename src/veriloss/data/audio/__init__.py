"""Audio data for speaker verification, one job per module: :mod:`.decode` (reading, decoding and checking files and
zip members), :mod:`.resampling`, :mod:`.waveform` (random crops, resampled crops, test-time chunks),
:mod:`.augment` (speed, noise), :mod:`.dataset` (:class:`AudioDataset`, :func:`pad_collate`,
:func:`embedding_chunks`), :mod:`.lists` (manifests, Kaldi lists, speaker folders, speaker splits), :mod:`.synthetic`
(generated speakers) and :mod:`.builders` (the ``build_dataset`` entries speechocean, synthetic-audio, audio-folder,
audio-list).

Items are ``(waveform, label)``: waveform float32 (1, T) in [-1, 1] at the dataset's ``sample_rate``; label an int.
Attributes as for the image datasets: ``labels``, ``num_classes``, ``channels`` (1), ``image_size`` (None), plus
``sample_rate``. Training sets (``crop_seconds`` set) give fixed-length random crops, so the default collate stacks
them; test sets (``crop_seconds=None``) give whole utterances of different lengths: batch them with
:func:`pad_collate` (which also returns the lengths) or embed them one at a time. Test-time chunking
(:func:`embedding_chunks`, :func:`chunk_waveform`) is an argument of :func:`veriloss.inference.embed`: each
utterance is embedded as the normalized mean of its normalized chunk embeddings instead of whole. Every random
draw (crop, speed, noise) comes from the ``generator`` of ``dataset.item(i, generator)`` (the training loader's
per-sample seeds, :mod:`veriloss.train.loader`); ``dataset[i]`` draws from torch's global generator.

A source is a file path or ``"archive.zip::member/path.ogg"`` (read straight from the zip, no extraction). Any
format libsndfile reads works (wav, flac, ogg/vorbis, ogg/opus, …); soundfile's PyPI wheels bundle a libsndfile with
Opus. Multi-channel audio is mixed down to mono (channel mean).
"""

from __future__ import annotations

from .augment import AddNoise, SpeedPerturb
from .builders import (
    AUDIO_BUILDERS,
    AUDIO_KEYS,
    SPEECHOCEAN_MANIFEST,
    SPEECHOCEAN_ZIP,
    audio_folder,
    audio_list,
    build_audio_dataset,
    speechocean,
    synthetic_audio,
    validation_speaker_split,
)
from .dataset import AudioDataset, embedding_chunks, pad_collate
from .decode import ZIP_SEPARATOR, check_audio, decode_audio, load_audio, read_audio
from .lists import AUDIO_EXTENSIONS, from_folder, from_kaldi, from_manifest, read_manifest, speaker_split
from .resampling import resample, resampled_length
from .synthetic import SyntheticSpeakers
from .waveform import chunk_waveform, crop_start, random_crop, resampled_crop, window

__all__ = [
    "AUDIO_BUILDERS",
    "AUDIO_EXTENSIONS",
    "AUDIO_KEYS",
    "SPEECHOCEAN_MANIFEST",
    "SPEECHOCEAN_ZIP",
    "ZIP_SEPARATOR",
    "AddNoise",
    "AudioDataset",
    "SpeedPerturb",
    "SyntheticSpeakers",
    "audio_folder",
    "audio_list",
    "build_audio_dataset",
    "check_audio",
    "chunk_waveform",
    "crop_start",
    "decode_audio",
    "embedding_chunks",
    "from_folder",
    "from_kaldi",
    "from_manifest",
    "load_audio",
    "pad_collate",
    "random_crop",
    "read_audio",
    "read_manifest",
    "resample",
    "resampled_crop",
    "resampled_length",
    "speaker_split",
    "speechocean",
    "synthetic_audio",
    "validation_speaker_split",
    "window",
]
