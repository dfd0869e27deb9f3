"""Generated speakers: deterministic synthetic "speech" for tests and demos without files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..augment import apply_transform
from .waveform import random_crop

__all__ = ["SyntheticSpeakers"]


class SyntheticSpeakers(Dataset):
    """Generated "speech": every speaker a voice (pitch, formants, fricative band, breathiness, tempo), every
    utterance a new random sequence of voiced and unvoiced segments in that voice. No files, deterministic.

    Voice of global speaker g (a pure function of ``(seed, g)``): f0 ~ 85·2^U(0, 1.6) Hz (85–257 Hz), formants
    F1 ~ U(300, 850), F2 ~ U(900, 2300), F3 ~ U(2300, 3400) Hz with bandwidths U(60, 160) Hz, spectral tilt
    U(−9, −3) dB/octave, fricative band centre U(2500, 6000) Hz (width U(500, 1500) Hz), noise share of voiced
    sounds U(0, 0.3), mean segment length U(0.09, 0.2) s, vibrato rate U(4, 7) Hz.
    Utterance j (a pure function of ``(seed, g, j)``): f0 and formants scaled by 2^N(0, 0.05) and 2^N(0, 0.03),
    segments of length ~ mean·U(0.5, 1.5), voiced with probability 0.75 (harmonics up to 5 kHz with a Lorentzian
    formant envelope, a slow f0 glide U(−15 %, 15 %) and ±1 % vibrato) or a fricative burst (band-passed white
    noise), 0–80 ms of silence between segments, Hann edges; then gain 10^U(−1.2, −0.3) on the peak, plus white
    noise at SNR U(15, 35) dB.

    Items ``(waveform (1, T), label)``, T = round(seconds · sample_rate), label = k (0 … num_speakers − 1); the
    global speaker is ``speaker_offset + k``, so train and test sets with disjoint voices use the same seed and
    offsets 0 and ≥ the training count. ``crop_seconds`` gives random crops of that length (training), None whole
    utterances (all of the same length); test-time chunking as for :class:`AudioDataset`. Crops and ``transform``
    draw from the ``generator`` of :meth:`item` (the training loader's per-sample seeds), ``dataset[i]`` from
    torch's global generator.
    """

    channels = 1
    image_size = None

    def __init__(
        self,
        num_speakers: int,
        utterances_per_speaker: int,
        seconds: float = 2.0,
        sample_rate: int = 16000,
        seed: int = 0,
        speaker_offset: int = 0,
        crop_seconds: float | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        for name, value, low in (
            ("num_speakers", num_speakers, 1),
            ("utterances_per_speaker", utterances_per_speaker, 1),
            ("sample_rate", sample_rate, 8000),
            ("seed", seed, 0),
            ("speaker_offset", speaker_offset, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
        if not (isinstance(seconds, (int, float)) and seconds > 0):
            raise ValueError(f"seconds must be > 0, got {seconds!r}")
        if crop_seconds is not None and not (isinstance(crop_seconds, (int, float)) and 0 < crop_seconds):
            raise ValueError(f"crop_seconds must be > 0 or None, got {crop_seconds!r}")
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be callable or None, got {type(transform).__name__}")
        self.num_speakers, self.utterances_per_speaker = num_speakers, utterances_per_speaker
        self.seconds, self.sample_rate, self.seed, self.speaker_offset = (
            float(seconds),
            sample_rate,
            seed,
            speaker_offset,
        )
        self.num_samples = max(1, round(seconds * sample_rate))
        self.crop_seconds = crop_seconds
        self.crop_samples = None if crop_seconds is None else max(1, round(crop_seconds * sample_rate))
        self.transform = transform
        self.num_classes = num_speakers
        self.labels = torch.arange(num_speakers).repeat_interleave(utterances_per_speaker)

    def __len__(self) -> int:
        return self.num_speakers * self.utterances_per_speaker

    def voice(self, speaker: int) -> dict[str, Any]:
        """The voice parameters of global speaker ``speaker`` (see the class docstring)."""
        rng = np.random.default_rng([self.seed, speaker, 0x5E1CE])
        return {
            "f0": 85.0 * 2 ** rng.uniform(0, 1.6),
            "formants": np.array([rng.uniform(300, 850), rng.uniform(900, 2300), rng.uniform(2300, 3400)]),
            "bandwidths": rng.uniform(60, 160, 3),
            "tilt_db": rng.uniform(-9, -3),
            "fricative": (rng.uniform(2500, 6000), rng.uniform(500, 1500)),
            "breath": rng.uniform(0, 0.3),
            "segment": rng.uniform(0.09, 0.2),
            "vibrato": rng.uniform(4, 7),
        }

    def waveform(self, index: int) -> np.ndarray:
        """Utterance ``index`` (float32 (T,), whole, before cropping and transform)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} utterances")
        k, j = divmod(index % n, self.utterances_per_speaker)
        g = self.speaker_offset + k
        v = self.voice(g)
        rng = np.random.default_rng([self.seed, g, j + 1, 0xA0D10])
        sr, total = self.sample_rate, self.num_samples
        f0 = v["f0"] * 2 ** rng.normal(0, 0.05)
        formants = v["formants"] * 2 ** rng.normal(0, 0.03)
        out = np.zeros(total)
        pos = int(rng.uniform(0, 0.05) * sr)
        while pos < total:
            length = max(16, int(v["segment"] * rng.uniform(0.5, 1.5) * sr))
            seg_len = min(length, total - pos)
            t = np.arange(seg_len) / sr
            if rng.uniform() < 0.75:
                glide = f0 * (1 + rng.uniform(-0.15, 0.15) * t / max(t[-1], 1e-3))
                inst = glide * (1 + 0.01 * np.sin(2 * np.pi * v["vibrato"] * t + rng.uniform(0, 2 * np.pi)))
                phase = 2 * np.pi * np.cumsum(inst) / sr + rng.uniform(0, 2 * np.pi)
                harmonics = np.arange(1, max(2, int(min(5000.0, 0.45 * sr) // f0)) + 1)
                freqs = harmonics * f0
                env = sum(1.0 / (1.0 + ((freqs - fm) / bw) ** 2) for fm, bw in zip(formants, v["bandwidths"]))
                amp = env * 10 ** (v["tilt_db"] * np.log2(harmonics) / 20)
                seg = (amp[:, None] * np.sin(harmonics[:, None] * phase[None, :])).sum(axis=0)
                seg = seg / (np.abs(seg).max() + 1e-9) + v["breath"] * self._band_noise(rng, seg_len, v, sr)
            else:
                seg = 0.6 * self._band_noise(rng, seg_len, v, sr)
            out[pos : pos + seg_len] = seg * np.hanning(seg_len + 2)[1:-1] ** 0.5
            pos += seg_len + int(rng.uniform(0, 0.08) * sr)
        out *= 10 ** rng.uniform(-1.2, -0.3) / (np.abs(out).max() + 1e-9)
        power = np.mean(out**2)
        out += rng.standard_normal(total) * np.sqrt(power / 10 ** (rng.uniform(15, 35) / 10))
        return np.clip(out, -1.0, 1.0).astype(np.float32)

    @staticmethod
    def _band_noise(rng: np.random.Generator, n: int, v: dict, sr: int) -> np.ndarray:
        """White noise band-passed around the voice's fricative band (Gaussian spectral window), peak 1."""
        centre, width = v["fricative"]
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.fft.rfftfreq(n, 1 / sr)
        noise = np.fft.irfft(spec * np.exp(-0.5 * ((f - centre) / width) ** 2), n)
        return noise / (np.abs(noise).max() + 1e-9)

    @property
    def random_items(self) -> bool:
        """Whether items draw random numbers: crops or a ``transform``."""
        return self.crop_samples is not None or self.transform is not None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.item(index)

    def item(self, index: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
        """Item ``index`` with its crop and ``transform`` drawn from ``generator`` (None: torch's global one)."""
        wave = torch.from_numpy(self.waveform(index))[None]
        if self.crop_samples is not None:
            wave = random_crop(wave, self.crop_samples, generator)
        if self.transform is not None:
            wave = apply_transform(self.transform, wave, generator)
        return wave.contiguous(), int(self.labels[index])
