"""Datasets, decoders, samplers and augmentation.

Every dataset returns ``(image, label)``: image float32 C×H×W with values in [-1, 1] (pixels x/255 ∈ [0, 1] mapped by
(x − 0.5)/0.5; models need no further normalization), then the dataset's ``transform``; label an int. Attributes:
``labels`` (LongTensor of all labels, known without decoding an image), ``num_classes``, ``channels``,
``image_size``. Audio datasets (:mod:`veriloss.data.audio`) return waveforms instead.

A sample that cannot be decoded raises :class:`CorruptSampleError` naming it; :func:`verify_dataset` checks every
sample cheaply up front (before training) and raises, or drops them where the dataset has ``skip_corrupt``.

Datasets by name (a config's ``data`` section, :mod:`.registry`): :func:`build_dataset`, :func:`check_dataset_config`,
:func:`register_dataset`, :func:`datasets_available`, :func:`describe_dataset`; the packaged ones are in
:mod:`.builders` (synthetic, omniglot, image-folder, recordio) and :mod:`.audio.builders` (speechocean,
synthetic-audio, audio-folder, audio-list). Batch plans by name (a config's ``sampler`` section): :mod:`.samplers`.
"""

from __future__ import annotations

from . import augment
from .audio import AUDIO_BUILDERS, AudioDataset, SyntheticSpeakers
from .builders import IMAGE_BUILDERS, default_augmentation
from .corrupt import CorruptSampleError, verify_dataset
from .folder import ImageFolder
from .omniglot import Omniglot
from .recordio import RecordIO, write_recordio
from .registry import (
    build_dataset,
    check_dataset_config,
    datasets_available,
    describe_dataset,
    register_dataset,
    unregister_dataset,
    validation_key,
    with_data_root,
)
from .samplers import (
    ClassBalancedSampler,
    PKSampler,
    batch_plan,
    check_sampler_config,
    describe_sampler,
    epoch_batches,
    register_sampler,
    samplers_available,
    unregister_sampler,
)
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
    "batch_plan",
    "build_dataset",
    "check_dataset_config",
    "check_sampler_config",
    "datasets_available",
    "default_augmentation",
    "describe_dataset",
    "describe_sampler",
    "epoch_batches",
    "register_dataset",
    "register_sampler",
    "samplers_available",
    "unregister_dataset",
    "unregister_sampler",
    "validation_key",
    "verify_dataset",
    "with_data_root",
    "write_recordio",
]

# the packaged datasets, in the order listings and error messages show them: images, then audio
for _name, _builder in {**IMAGE_BUILDERS, **AUDIO_BUILDERS}.items():
    register_dataset(_name, _builder)
del _name, _builder
