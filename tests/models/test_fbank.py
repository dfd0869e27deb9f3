import math

import numpy as np
import pytest
import torch

from veriloss.models.fbank import Fbank, SpecAugment, kaldi_mel_banks, mel_scale, num_frames

EPS = float(np.finfo(np.float32).eps)


def reference_fbank(wave: np.ndarray, sr=16000, n_mels=80, preemph=0.97, low=20.0, mean_norm=True) -> np.ndarray:
    """Kaldi fbank written from the formulas, float64 loops, no dither: (n_mels, frames)."""
    x = np.asarray(wave, dtype=np.float64) * 32768.0
    flen, shift, nfft = 400, 160, 512
    frames = 1 + (len(x) - flen) // shift
    window = np.array([(0.5 - 0.5 * math.cos(2 * math.pi * i / (flen - 1))) ** 0.85 for i in range(flen)])
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    lo, hi = mel(low), mel(sr / 2)
    delta = (hi - lo) / (n_mels + 1)
    banks = np.zeros((n_mels, nfft // 2 + 1))
    for b in range(n_mels):
        left, centre, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
        for i in range(nfft // 2):
            m = mel(i * sr / nfft)
            if left < m < right:
                banks[b, i] = (m - left) / (centre - left) if m <= centre else (right - m) / (right - centre)
    k = np.arange(nfft // 2 + 1)[:, None]
    n = np.arange(nfft)[None, :]
    dft = np.exp(-2j * np.pi * k * n / nfft)  # explicit DFT matrix
    out = np.zeros((n_mels, frames))
    for f in range(frames):
        frame = x[f * shift : f * shift + flen].copy()
        frame -= frame.mean()
        emph = np.empty(flen)
        emph[0] = frame[0] - preemph * frame[0]
        for i in range(1, flen):
            emph[i] = frame[i] - preemph * frame[i - 1]
        padded = np.zeros(nfft)
        padded[:flen] = emph * window
        power = np.abs(dft @ padded) ** 2
        out[:, f] = np.log(np.maximum(banks @ power, EPS))
    if mean_norm:
        out -= out.mean(axis=1, keepdims=True)
    return out


def _signal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3100 * t) + 0.05 * rng.standard_normal(n)


@pytest.mark.parametrize("mean_norm", [False, True])
def test_fbank_matches_float64_reference(mean_norm):
    wave = _signal(2000)
    ref = reference_fbank(wave, mean_norm=mean_norm)
    fb = Fbank(dither=0.0, mean_norm=mean_norm).eval()
    out32 = fb(torch.tensor(wave, dtype=torch.float32)[None])[0].double().numpy()
    out64 = fb(torch.tensor(wave, dtype=torch.float64)[None, None])[0].numpy()
    assert out32.shape == ref.shape == (80, 1 + (2000 - 400) // 160)
    np.testing.assert_allclose(out64, ref, atol=1e-8)
    np.testing.assert_allclose(out32, ref, atol=3e-3)
    if not mean_norm:  # the 32768 scaling: a loud frame has log-mel energies far above the floor
        assert ref.max() > 20


def test_fbank_log_floor_on_silence():
    fb = Fbank(dither=0.0, mean_norm=False).eval()
    out = fb(torch.zeros(1, 800))
    assert torch.allclose(out, torch.full_like(out, math.log(EPS)))


@pytest.mark.parametrize(("t", "frames"), [(400, 1), (401, 1), (559, 1), (560, 2), (16000, 98), (16080, 99)])
def test_frame_counts_at_edge_lengths(t, frames):
    fb = Fbank().eval()
    assert fb.num_frames(t) == num_frames(t, 400, 160) == frames
    assert fb(torch.randn(2, 1, t) * 0.1).shape == (2, 80, frames)


def test_too_short_waveform_is_an_error():
    assert num_frames(399, 400, 160) == 0
    with pytest.raises(ValueError, match="399 samples"):
        Fbank()(torch.randn(1, 399))
    with pytest.raises(ValueError, match="shape"):
        Fbank()(torch.randn(2, 2, 800))


def test_mel_filter_properties():
    assert mel_scale(700.0) == pytest.approx(1127.0 * math.log(2.0))
    banks = kaldi_mel_banks(80, 512, 16000, 20.0, 0.0)
    assert banks.shape == (80, 257)
    assert (banks >= 0).all() and (banks <= 1).all()
    assert (banks[:, 256] == 0).all()  # the Nyquist bin is never used
    assert (banks.sum(dim=1) > 0).all()
    peaks = banks.argmax(dim=1)
    assert (peaks.diff() >= 0).all()
    # triangles in mel space form a partition of unity between the first and last centres
    mel = mel_scale(torch.arange(256, dtype=torch.float64) * 16000 / 512)
    lo, hi = mel_scale(20.0), mel_scale(8000.0)
    delta = (hi - lo) / 81
    inside = (mel > lo + delta) & (mel < hi - delta)
    assert inside.sum() > 200
    torch.testing.assert_close(banks[:, :256].sum(dim=0)[inside], torch.ones(int(inside.sum()), dtype=torch.float64))
    # high_freq ≤ 0 is an offset from Nyquist; bad bands are refused
    assert torch.equal(kaldi_mel_banks(23, 512, 16000, 20.0, -400.0), kaldi_mel_banks(23, 512, 16000, 20.0, 7600.0))
    with pytest.raises(ValueError, match="low_freq"):
        kaldi_mel_banks(23, 512, 16000, 5000.0, 4000.0)


def test_dither_training_only_and_seeded():
    wave = torch.tensor(_signal(1600), dtype=torch.float32)[None]
    fb = Fbank(dither=1.0, mean_norm=False)
    plain = Fbank(dither=0.0, mean_norm=False)(wave)
    torch.manual_seed(3)
    a = fb(wave)
    torch.manual_seed(3)
    b = fb(wave)
    assert torch.equal(a, b)
    assert not torch.equal(a, plain)
    assert (a - plain).abs().max() < 0.5  # one LSB of noise on a loud signal
    assert torch.equal(fb.eval()(wave), plain)
    # on digital silence dither lifts the energies far above the log floor
    assert Fbank(mean_norm=False).train()(torch.zeros(1, 800)).min() > math.log(EPS) + 5


def test_batch_and_mean_norm():
    waves = torch.tensor(np.stack([_signal(3000, s) for s in range(3)]), dtype=torch.float32)
    fb = Fbank().eval()
    out = fb(waves[:, None])
    assert torch.allclose(out.mean(dim=2), torch.zeros(3, 80), atol=1e-4)
    for i in range(3):
        assert torch.equal(out[i], fb(waves[i : i + 1])[0])


def test_spec_augment_masks():
    x = torch.randn(4, 80, 100)
    aug = SpecAugment(freq_masks=1, freq_width=10, time_masks=1, time_width=20, time_ratio=0.5, fill=0.0)
    assert torch.equal(aug.eval()(x), x)
    aug.train()
    torch.manual_seed(0)
    y = aug(x)
    torch.manual_seed(0)
    assert torch.equal(aug(x), y)
    masked = y == 0
    for i in range(4):
        rows = masked[i].all(dim=1).nonzero().flatten()  # fully masked frequency bins
        cols = masked[i].all(dim=0).nonzero().flatten()  # fully masked frames
        assert len(rows) <= 10 and len(cols) <= 20
        for idx in (rows, cols):  # each mask is one contiguous band
            if len(idx):
                assert int(idx[-1] - idx[0]) + 1 == len(idx)
        # everything masked lies in those rows or columns; the rest is untouched
        keep = ~(masked[i].all(dim=1)[:, None] | masked[i].all(dim=0)[None, :])
        assert torch.equal(y[i][keep], x[i][keep])
    assert masked.any()
    with pytest.raises(ValueError, match="freq_masks"):
        SpecAugment(freq_masks=-1)
