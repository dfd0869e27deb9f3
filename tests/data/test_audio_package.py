"""veriloss.data.audio is a package with one job per module; every public name of the former single module (and of
each module) is importable from the package."""

import importlib

import veriloss.data.audio as audio

MODULES = ["augment", "builders", "dataset", "decode", "lists", "resampling", "synthetic", "waveform"]
FORMER = [
    "AUDIO_EXTENSIONS",
    "AUDIO_KEYS",
    "AddNoise",
    "AudioDataset",
    "SpeedPerturb",
    "SyntheticSpeakers",
    "build_audio_dataset",
    "check_audio",
    "chunk_waveform",
    "from_folder",
    "from_kaldi",
    "from_manifest",
    "load_audio",
    "pad_collate",
    "random_crop",
    "read_audio",
    "read_manifest",
    "resample",
    "embedding_chunks",
    "speaker_split",
    "SPEECHOCEAN_MANIFEST",
    "SPEECHOCEAN_ZIP",
    "ZIP_SEPARATOR",
]


def test_every_public_name_is_re_exported_by_the_package():
    exported = set(audio.__all__)
    assert set(FORMER) <= exported
    for name in MODULES:
        module = importlib.import_module(f"veriloss.data.audio.{name}")
        assert module.__doc__, name
        for public in module.__all__:
            assert public in exported and getattr(audio, public) is getattr(module, public), (name, public)
    assert audio.resample([0.0] * 4, 2, 1).shape == (2,)  # the function, not its module (audio.resampling)
