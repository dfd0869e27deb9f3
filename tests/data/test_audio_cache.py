"""The decoded-audio cache of AudioDataset (``cache_mb``): the same items bit for bit, the decoder skipped on later
accesses, the limit kept, nothing shared with worker processes, bad values refused."""

import pickle

import numpy as np
import pytest
import torch

import veriloss.data.audio.dataset as dataset_module
from veriloss.data.audio import AddNoise, AudioDataset, SpeedPerturb
from veriloss.train.resume import SAFE_TO_CHANGE

sf = pytest.importorskip("soundfile")


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, (fmt, subtype, rate) in enumerate([("WAV", "FLOAT", 16000), ("OGG", "OPUS", 16000), ("FLAC", None, 8000)]):
        path = tmp_path / f"u{i}.{fmt.lower()}"
        sf.write(path, (0.3 * rng.standard_normal(rate * 3)).astype(np.float32), rate, format=fmt, subtype=subtype)
        paths.append(str(path))
    return [(p, i % 2) for i, p in enumerate(paths)]


def _dataset(items, cache_mb):
    return AudioDataset(items, crop_seconds=1.0, speed=SpeedPerturb(), noise=AddNoise(p=1.0), cache_mb=cache_mb)


def _items(ds, epochs=3):
    out = []
    for epoch in range(epochs):
        for i in range(len(ds)):
            g = torch.Generator().manual_seed(1000 * epoch + i)
            out.append(ds.item(i, g))
    return out


def _count_decodes(monkeypatch):
    calls = []
    real = dataset_module.decode_audio

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(dataset_module, "decode_audio", counting)
    return calls


def test_cached_items_equal_uncached_bit_for_bit_and_decode_once(files, monkeypatch):
    plain = _items(_dataset(files, 0))
    calls = _count_decodes(monkeypatch)
    cached_ds = _dataset(files, 64)
    cached = _items(cached_ds)
    assert len(calls) == len(files)  # each file decoded once over three epochs
    assert cached_ds._cache_bytes == sum(s.nbytes for s, _ in cached_ds._cache.values()) > 0
    for (a, ya), (b, yb) in zip(plain, cached):
        assert ya == yb and torch.equal(a, b)
    samples, _ = cached_ds._cache[0]
    assert not samples.flags.writeable  # shared by later accesses: read-only


def test_without_cache_every_access_decodes(files, monkeypatch):
    calls = _count_decodes(monkeypatch)
    _items(_dataset(files, 0), epochs=2)
    assert len(calls) == 2 * len(files)


def test_the_limit_is_kept(files):
    ds = _dataset(files, 1)  # 1 MiB: a 3 s float32 file is 192 KB at 16 kHz, so all three fit
    _items(ds, 1)
    assert len(ds._cache) == 3 and ds._cache_bytes <= 2**20
    tiny = AudioDataset(files * 8, crop_seconds=1.0, cache_mb=1)
    tiny.sources = [files[0][0]] * 24  # 24 × 192 KB > 1 MiB
    _items(tiny, 1)
    assert 0 < len(tiny._cache) < 24 and tiny._cache_bytes <= 2**20
    assert tiny._cache_bytes + 48000 * 4 > 2**20  # it stopped only when the next one would not fit


def test_workers_get_an_empty_cache(files):
    ds = _dataset(files, 64)
    _items(ds, 1)
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._cache == {} and copy._cache_bytes == 0 and copy.cache_mb == 64
    assert len(ds._cache) == 3  # the original keeps its own


@pytest.mark.parametrize("bad", [-1, 1.5, True, "big"])
def test_bad_cache_sizes_are_refused(files, bad):
    with pytest.raises(ValueError, match="cache_mb"):
        AudioDataset(files, cache_mb=bad)


def test_config_key_is_checked_and_safe_to_change_on_resume(tmp_path):
    from veriloss.data import build_dataset

    with pytest.raises(ValueError, match=r"data\.cache_mb"):
        build_dataset({"name": "audio-folder", "train_root": str(tmp_path), "cache_mb": -5}, "train")
    assert "data.cache_mb" in SAFE_TO_CHANGE
