import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from veriloss.data import build_dataset
from veriloss.data.audio import (
    AddNoise,
    AudioDataset,
    SpeedPerturb,
    SyntheticSpeakers,
    from_kaldi,
    from_manifest,
    load_audio,
    pad_collate,
    read_audio,
    resample,
    resampled_length,
    speaker_split,
)
from veriloss.models.fbank import Fbank

sf = pytest.importorskip("soundfile")

DATA = Path("/work/shared/data/speechocean762")
ZIP = DATA / "speechocean762_train_opus.zip"
MANIFEST = DATA / "manifest.tsv"
needs_data = pytest.mark.skipif(not ZIP.is_file(), reason="speechocean762 not available")


def _rows():
    with open(MANIFEST, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _tone(freq, sr, seconds, amp=0.5):
    t = np.arange(round(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- real data


@needs_data
def test_decode_from_real_zip_lengths_match_manifest():
    rows = _rows()
    for r in (rows[0], rows[1], rows[777], rows[-1]):
        samples, rate = read_audio(f"{ZIP}::{r['file']}")
        assert rate == 16000 and samples.dtype == np.float32
        assert len(samples) == int(r["num_samples_16k"])
        assert 0 < np.abs(samples).max() <= 1.0
    with pytest.raises(ValueError, match=r"no member 'speechocean762_opus/nope\.ogg'"):
        read_audio(f"{ZIP}::speechocean762_opus/nope.ogg")


@needs_data
def test_manifest_parsing_and_speaker_split():
    ds = from_manifest(MANIFEST, ZIP, crop_seconds=None)
    rows = _rows()
    assert len(ds) == len(rows) == 2500 and ds.num_classes == 125
    assert ds.speakers == sorted({r["speaker"] for r in rows})
    assert torch.equal(torch.bincount(ds.labels), torch.full((125,), 20))
    assert ds.sources[0] == f"{ZIP}::speechocean762_opus/0001/000010011.ogg" and ds.num_samples[0] == 41280
    train, test = speaker_split(ds.speakers, 95, seed=0)
    assert (len(train), len(test)) == (95, 30) and not set(train) & set(test)
    assert set(train) | set(test) == set(ds.speakers)
    assert speaker_split(reversed(ds.speakers), 95, seed=0) == (train, test)  # order-free, deterministic
    assert speaker_split(ds.speakers, 95, seed=1)[1] != test
    cfg = {"name": "speechocean", "root": str(DATA)}
    tr, te = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert (len(tr), tr.num_classes, len(te), te.num_classes) == (1900, 95, 600, 30)
    assert tr.speakers == train and te.speakers == test
    assert (tr.channels, tr.image_size, tr.sample_rate, tr.crop_samples, te.crop_samples) == (
        1,
        None,
        16000,
        32000,
        None,
    )
    wave, label = te[3]
    assert wave.shape == (1, te.num_samples[3]) and label == 0
    torch.manual_seed(0)
    assert tr[0][0].shape == (1, 32000)
    with pytest.raises(ValueError, match="unknown data key"):
        build_dataset({**cfg, "image_size": 3}, "train")
    with pytest.raises(ValueError, match=r"manifest\.tsv"):
        build_dataset({"name": "speechocean", "root": "/nonexistent"}, "train")


# ---------------------------------------------------------------------------------------------------- local files


def test_formats_zip_and_kaldi_lists(tmp_path):
    sr = 16000
    tones = {"u1": 200, "u2": 300, "u3": 400, "u4": 500}
    sf.write(tmp_path / "u1.wav", _tone(200, sr, 0.5), sr, subtype="PCM_16")
    sf.write(tmp_path / "u2.flac", _tone(300, sr, 0.5), sr)
    sf.write(tmp_path / "u3.ogg", _tone(400, sr, 0.5), sr, format="OGG", subtype="OPUS")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.write(tmp_path / "u1.wav", "inner/u4.wav")
    (tmp_path / "wav.scp").write_text(
        f"u1 u1.wav\nu2 {tmp_path / 'u2.flac'}\nu3 u3.ogg\nu4 {tmp_path}/a.zip::inner/u4.wav\n"
    )
    (tmp_path / "utt2spk").write_text("u1 spkB\nu2 spkA\nu3 spkB\nu4 spkC\n")
    ds = from_kaldi(tmp_path / "wav.scp", tmp_path / "utt2spk", crop_seconds=None)
    assert ds.utterances == ["u1", "u2", "u3", "u4"] and ds.speakers == ["spkA", "spkB", "spkC"]
    assert ds.labels.tolist() == [1, 0, 1, 1 + 1]
    for i, utt in enumerate(ds.utterances):
        wave, _ = ds[i]
        assert wave.shape == (1, 8000) and wave.dtype == torch.float32
        spectrum = np.abs(np.fft.rfft(wave[0].numpy()))
        freq = tones[utt] if utt != "u4" else 200  # u4 is u1's file inside the zip
        assert np.argmax(spectrum) * sr / 8000 == pytest.approx(freq, abs=2)
    wav, _ = read_audio(tmp_path / "u1.wav")
    np.testing.assert_allclose(wav, _tone(200, sr, 0.5), atol=1 / 32768)  # 16-bit PCM round trip
    sub = from_kaldi(tmp_path / "wav.scp", tmp_path / "utt2spk", speakers=["spkB"], crop_seconds=None)
    assert sub.utterances == ["u1", "u3"] and sub.labels.tolist() == [0, 0]
    (tmp_path / "bad.scp").write_text("u1 u1.wav\nu9 u9.wav\n")
    with pytest.raises(ValueError, match=r"only in wav\.scp"):
        from_kaldi(tmp_path / "bad.scp", tmp_path / "utt2spk")
    (tmp_path / "pipe.scp").write_text("u1 sox u1.wav -t wav - |\n")
    (tmp_path / "one").write_text("u1 s\n")
    with pytest.raises(ValueError, match="only file paths"):
        from_kaldi(tmp_path / "pipe.scp", tmp_path / "one")


def test_bad_audio_errors_name_the_path(tmp_path):
    (tmp_path / "garbage.wav").write_bytes(b"this is not audio at all" * 10)
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(tmp_path / "short.wav", np.zeros(800, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match=r"cannot decode audio '.*garbage\.wav'"):
        load_audio(tmp_path / "garbage.wav", 16000)
    with pytest.raises(ValueError, match=r"'.*empty\.wav' is empty"):
        load_audio(tmp_path / "empty.wav", 16000)
    with pytest.raises(ValueError, match=r"'.*missing\.wav' does not exist"):
        load_audio(tmp_path / "missing.wav", 16000)
    ds = AudioDataset([(tmp_path / "short.wav", 0)], crop_seconds=1.0, min_seconds=0.1)
    with pytest.raises(ValueError, match=r"'.*short\.wav' is too short: 800 samples"):
        ds[0]
    with pytest.raises(ValueError, match="not-a-zip"):
        load_audio(f"{tmp_path / 'garbage.wav'}::x.wav".replace("garbage.wav", "not-a-zip.zip"), 16000)
    with pytest.raises(ValueError, match="items"):
        AudioDataset([])
    with pytest.raises(ValueError, match="label"):
        AudioDataset([("a.wav", -1)])


# ---------------------------------------------------------------------------------------------------- resampling


def test_resample_keeps_frequency_and_matches_scipy(tmp_path):
    x8 = _tone(1000, 8000, 0.5).astype(np.float64)
    y = resample(x8, 8000, 16000)
    assert len(y) == 2 * len(x8)
    truth = _tone(1000, 16000, 0.5).astype(np.float64)
    middle = slice(200, -200)  # away from the edges (filter transients)
    assert np.abs(y[middle] - truth[middle]).max() < 2e-3
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * 16000 / len(y) == pytest.approx(1000, abs=2)
    scipy_signal = pytest.importorskip("scipy.signal")  # test-only oracle
    rng = np.random.default_rng(0)
    for orig, new in ((8000, 16000), (44100, 16000), (48000, 16000), (16000, 22050)):
        x = rng.standard_normal(1234)
        ours = resample(x, orig, new)
        assert len(ours) == -(-1234 * new // orig)
        np.testing.assert_allclose(ours, scipy_signal.resample_poly(x, new, orig), atol=1e-12)
    # an aliasing tone (7 kHz at 44.1 kHz → 16 kHz, Nyquist 8 kHz) passes; 10 kHz is removed
    keep, drop = resample(_tone(7000, 44100, 0.5), 44100, 16000), resample(_tone(10000, 44100, 0.5), 44100, 16000)
    assert np.sqrt(np.mean(drop[500:-500] ** 2)) < 0.01 * np.sqrt(np.mean(keep[500:-500] ** 2))
    # the dataset resamples files at other rates
    sf.write(tmp_path / "t8k.wav", _tone(500, 8000, 0.25), 8000, subtype="FLOAT")
    wave = load_audio(tmp_path / "t8k.wav", 16000)
    assert wave.shape == (1, 4000)
    with pytest.raises(ValueError, match="orig_rate"):
        resample(x8, 0, 16000)


@pytest.mark.parametrize(("orig", "new"), [(9, 10), (11, 10), (10, 9), (48000, 16000), (44100, 16000), (3, 1)])
def test_a_resampled_window_is_that_slice_of_the_whole_and_reads_only_its_inputs(orig, new):
    """The crop-first path: resample(x, a, b, start, length) equals resample_poly's output sliced, for windows at
    the edges and inside, and samples outside the inputs it reads (NaN here) cannot reach it."""
    scipy_signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(orig)
    x = rng.standard_normal(3001)
    g = np.gcd(orig, new)
    whole = scipy_signal.resample_poly(x, new // g, orig // g)
    n = resampled_length(len(x), orig, new)
    assert n == len(whole) == len(resample(x, orig, new))
    for start, length in ((0, 1), (0, n // 4), (n // 3, n // 3), (n - n // 5, n // 5), (n - 1, 1), (n, 0)):
        window = resample(x, orig, new, start, length)
        assert window.shape == (length,)
        np.testing.assert_allclose(window, whole[start : start + length], atol=1e-12)
    start, length = n // 2, n // 8
    up, down = new // g, orig // g
    reach = 10 * max(up, down) // up + 2  # the filter's half length in input samples, and rounding
    lo, hi = start * down // up - reach, (start + length) * down // up + reach
    poisoned = np.full_like(x, np.nan)
    poisoned[max(lo, 0) : hi] = x[max(lo, 0) : hi]
    np.testing.assert_allclose(resample(poisoned, orig, new, start, length), whole[start : start + length], atol=1e-12)
    with pytest.raises(ValueError, match="window"):
        resample(x, orig, new, n - 5, 6)


# -------------------------------------------------------------------------------------------------- crops, augmentation


def test_random_crop_is_seeded_and_repeats_short_audio(tmp_path):
    sr = 16000
    long_wave = np.random.default_rng(0).uniform(-0.5, 0.5, sr).astype(np.float32)
    short_wave = np.random.default_rng(1).uniform(-0.5, 0.5, 3000).astype(np.float32)
    sf.write(tmp_path / "long.wav", long_wave, sr, subtype="FLOAT")
    sf.write(tmp_path / "short.wav", short_wave, sr, subtype="FLOAT")
    ds = AudioDataset([(tmp_path / "long.wav", 0), (tmp_path / "short.wav", 1)], crop_seconds=0.5)
    torch.manual_seed(5)
    a = ds[0][0]
    torch.manual_seed(5)
    b = ds[0][0]
    torch.manual_seed(6)
    c = ds[0][0]
    assert a.shape == (1, 8000) and torch.equal(a, b) and not torch.equal(a, c)
    start = int(np.flatnonzero(long_wave == a[0, 0].item())[0])  # the crop is a window of the file
    assert torch.equal(a[0], torch.from_numpy(long_wave[start : start + 8000]))
    s = ds[1][0][0].numpy()
    assert s.shape == (8000,)
    tiled = np.tile(short_wave, 5)
    offset = int(np.flatnonzero(short_wave == s[0])[0])
    np.testing.assert_array_equal(s, tiled[offset : offset + 8000])
    full = AudioDataset([(tmp_path / "long.wav", 0)], crop_seconds=None)
    assert torch.equal(full[0][0][0], torch.from_numpy(long_wave))
    batch = [full[0], ds[1]]
    waves, labels, lengths = pad_collate(batch)
    assert waves.shape == (2, 1, 16000) and labels.tolist() == [0, 1] and lengths.tolist() == [16000, 8000]
    assert torch.equal(waves[0], batch[0][0]) and torch.equal(waves[1, :, :8000], batch[1][0])
    assert (waves[1, 0, 8000:] == 0).all()


def test_speed_and_noise_augmentation():
    wave = torch.from_numpy(_tone(1000, 16000, 1.0))[None]
    speed = SpeedPerturb([1.25])
    fast = speed(wave)
    assert fast.shape == (1, 12800)  # ⌈16000 / 1.25⌉
    spectrum = np.abs(np.fft.rfft(fast[0].numpy()))
    assert np.argmax(spectrum) * 16000 / 12800 == pytest.approx(1250, abs=3)  # pitch rises with speed
    assert torch.equal(SpeedPerturb([1.0])(wave), wave)
    torch.manual_seed(0)
    noisy = AddNoise(snr_db=(10.0, 10.0), p=1.0)(wave)
    noise = noisy - wave
    snr = 10 * torch.log10(wave.square().mean() / noise.square().mean())
    assert snr.item() == pytest.approx(10.0, abs=1e-3)
    assert torch.equal(AddNoise(p=0.0)(wave), wave)


def test_training_items_draw_only_from_the_generator_and_crop_the_sped_up_utterance(tmp_path):
    """item(i, generator): the same generator seed gives the same crop, speed and noise; the global RNG is not
    touched; the crop is a window of the whole utterance resampled at the drawn speed (in one step from the file's
    rate), though only the window is computed."""
    wave8 = np.random.default_rng(2).uniform(-0.5, 0.5, 8000).astype(np.float32)  # 1 s at 8 kHz
    sf.write(tmp_path / "a.wav", wave8, 8000, subtype="FLOAT")
    sf.write(tmp_path / "short.wav", wave8[:2000], 8000, subtype="FLOAT")  # 0.25 s: shorter than a crop
    items = [(tmp_path / "a.wav", 0), (tmp_path / "short.wav", 1)]
    ds = AudioDataset(items, crop_seconds=0.5, speed=SpeedPerturb([0.9]))
    assert ds.random_items and not AudioDataset(items, crop_seconds=None).random_items
    whole = resample(wave8, 8000 * 9, 16000 * 10).astype(np.float32)  # 0.9× speed at 16 kHz: 17,778 samples
    torch.manual_seed(0)
    before = torch.get_rng_state()
    for seed in range(3):
        crop = ds.item(0, torch.Generator().manual_seed(seed))[0][0].numpy()
        assert crop.shape == (8000,)
        start = int(np.argmin([np.abs(whole[s : s + 8000] - crop).max() for s in range(len(whole) - 8000 + 1)]))
        np.testing.assert_allclose(crop, whole[start : start + 8000], atol=1e-6)
        assert torch.equal(ds.item(0, torch.Generator().manual_seed(seed))[0], torch.from_numpy(crop)[None])
    short = ds.item(1, torch.Generator().manual_seed(0))[0][0].numpy()  # tiled: 4,445 samples at 0.9×, 16 kHz
    tiled = np.tile(resample(wave8[:2000], 8000 * 9, 16000 * 10).astype(np.float32), 3)
    offset = int(np.argmin([np.abs(tiled[s : s + 8000] - short).max() for s in range(4445)]))
    np.testing.assert_allclose(short, tiled[offset : offset + 8000], atol=1e-6)
    noisy = AudioDataset(items, crop_seconds=0.5, speed=SpeedPerturb(), noise=AddNoise(p=1.0))
    a = [noisy.item(0, torch.Generator().manual_seed(s))[0] for s in range(4)]
    assert all(torch.equal(u, noisy.item(0, torch.Generator().manual_seed(s))[0]) for s, u in enumerate(a))
    assert all(not torch.equal(a[0], u) for u in a[1:])
    assert torch.equal(before, torch.get_rng_state())  # nothing drew from (or reseeded) the global RNG
    with pytest.raises(ValueError, match="SpeedPerturb"):
        AudioDataset(items, speed=lambda w: w)


def test_speed_and_noise_take_a_generator():
    wave = torch.from_numpy(_tone(300, 16000, 0.5))[None]
    torch.manual_seed(0)
    before = torch.get_rng_state()
    for t in (SpeedPerturb(), AddNoise(p=0.7)):
        outs = [t(wave, generator=torch.Generator().manual_seed(s)) for s in range(6)]
        again = [t(wave, generator=torch.Generator().manual_seed(s)) for s in range(6)]
        assert all(torch.equal(u, v) for u, v in zip(outs, again))
        assert len({(tuple(o.shape), float(o.sum())) for o in outs}) > 1
    assert SpeedPerturb([0.9, 1.1]).draw(torch.Generator().manual_seed(0)) in ((9, 10), (11, 10))
    assert torch.equal(before, torch.get_rng_state())


# -------------------------------------------------------------------------------------------------- synthetic speakers


def test_synthetic_speakers_deterministic_and_disjoint():
    a = SyntheticSpeakers(3, 2, seconds=0.5, seed=7)
    b = SyntheticSpeakers(3, 2, seconds=0.5, seed=7)
    assert len(a) == 6 and a.num_classes == 3 and a.labels.tolist() == [0, 0, 1, 1, 2, 2]
    w, y = a[3]
    assert w.shape == (1, 8000) and w.dtype == torch.float32 and y == 1 and 0.03 < w.abs().max() <= 1
    assert torch.equal(w, b[3][0]) and not torch.equal(w, a[2][0])
    test = SyntheticSpeakers(2, 2, seconds=0.5, seed=7, speaker_offset=3)
    bigger = SyntheticSpeakers(5, 2, seconds=0.5, seed=7)
    assert torch.equal(test[1][0], bigger[7][0])
    assert not torch.equal(SyntheticSpeakers(3, 2, seconds=0.5, seed=8)[3][0], w)
    cropped = SyntheticSpeakers(3, 2, seconds=0.5, seed=7, crop_seconds=0.25)
    torch.manual_seed(0)
    c = cropped[3][0]
    assert c.shape == (1, 4000)
    start = int(np.flatnonzero(w[0].numpy() == c[0, 100].item())[0]) - 100
    assert torch.equal(c, w[:, start : start + 4000])
    assert cropped.random_items and not a.random_items
    crops = [cropped.item(3, torch.Generator().manual_seed(s))[0] for s in range(3)]  # crops from the generator
    assert torch.equal(crops[1], cropped.item(3, torch.Generator().manual_seed(1))[0])
    assert not torch.equal(crops[0], crops[1]) or not torch.equal(crops[1], crops[2])


def test_synthetic_speakers_are_separable_but_vary():
    """Nearest-centroid on mean log-mel spectra (held-out utterance) identifies most voices; utterances of one
    voice are not copies of each other."""
    ds = SyntheticSpeakers(8, 4, seconds=1.0, seed=0)
    fb = Fbank(mean_norm=False).eval()
    feats = torch.stack([fb(ds[i][0]).mean(dim=2)[0] for i in range(len(ds))]).view(8, 4, 80)
    feats = feats - feats.mean(dim=2, keepdim=True)  # remove the gain
    centroids = feats[:, :3].mean(dim=1)
    dist = torch.cdist(feats[:, 3], centroids)
    accuracy = (dist.argmin(dim=1) == torch.arange(8)).float().mean().item()
    assert accuracy >= 0.75
    within = (feats[:, :3] - centroids[:, None]).norm(dim=2).mean()
    assert within > 0.5  # real intra-speaker variation


def test_build_synthetic_audio():
    cfg = {
        "name": "synthetic-audio",
        "train_speakers": 4,
        "test_speakers": 2,
        "utterances_per_speaker": 2,
        "seconds": 0.5,
    }
    tr, te = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert isinstance(tr, SyntheticSpeakers) and (tr.num_classes, len(tr), te.num_classes, len(te)) == (4, 8, 2, 4)
    assert (tr.channels, tr.image_size, tr.sample_rate, te.speaker_offset) == (1, None, 16000, 4)
    assert torch.equal(te[0][0], SyntheticSpeakers(6, 2, seconds=0.5)[8][0])
    aug = build_dataset({**cfg, "augment": True, "crop_seconds": 0.25}, "train")
    assert isinstance(aug.transform, AddNoise) and aug.crop_samples == 4000
    assert build_dataset({**cfg, "augment": True, "crop_seconds": 0.25}, "test").transform is None
    with pytest.raises(ValueError, match="valid keys"):
        build_dataset({**cfg, "speakers": 3}, "train")
    with pytest.raises(ValueError, match="seconds"):
        build_dataset({**cfg, "seconds": 0}, "train")
