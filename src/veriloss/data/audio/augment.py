"""Waveform augmentation for training: speed perturbation and additive noise at a random SNR. Random numbers come
from the ``generator`` argument (None: torch's global generator)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import torch

from .decode import load_audio
from .resampling import resample
from .waveform import random_crop

__all__ = ["AddNoise", "SpeedPerturb"]


class SpeedPerturb:
    """Speed perturbation (Ko et al. 2015): play the waveform ``f`` times faster, f drawn uniformly from
    ``factors``; pitch and tempo change together (as ``sox speed``). Done by resampling the signal from rate
    ``p`` to ``q`` with ``f = p/q`` (denominator ≤ 100): length T → ⌈T/f⌉. Labels are unchanged (WeSpeaker's
    recipes instead make each factor a new speaker: not done here). A training crop of the result needs only its
    window resampled: :class:`~veriloss.data.audio.AudioDataset` draws the factor (:meth:`draw`) and does that."""

    def __init__(self, factors: Sequence[float] = (0.9, 1.0, 1.1)):
        if not factors or any(not 0.5 <= float(f) <= 2.0 for f in factors):
            raise ValueError(f"factors must be a non-empty list of speeds in [0.5, 2], got {factors!r}")
        self.factors = [Fraction(float(f)).limit_denominator(100) for f in factors]

    def draw(self, generator: torch.Generator | None = None) -> tuple[int, int]:
        """A random factor as ``(p, q)``, f = p/q: resample from rate ``p`` to rate ``q``."""
        f = self.factors[int(torch.randint(0, len(self.factors), (), generator=generator))]
        return f.numerator, f.denominator

    def __call__(self, wave: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        p, q = self.draw(generator)
        if p == q:
            return wave
        return torch.from_numpy(resample(wave[0].numpy(), p, q).astype(np.float32))[None]


class AddNoise:
    """Additive noise at a random signal-to-noise ratio: ``y = x + n · sqrt(P_x / (P_n · 10^(snr/10)))`` with
    snr ~ U(``snr_db``), P the mean square, applied with probability ``p``. The noise is white Gaussian, or a random
    crop (tiled if short) of a random file of ``sources`` (loaded at ``sample_rate``, cached in memory)."""

    def __init__(
        self,
        snr_db: tuple[float, float] = (5.0, 20.0),
        p: float = 0.5,
        sources: Sequence[str] | None = None,
        sample_rate: int = 16000,
    ):
        lo, hi = (float(v) for v in snr_db)
        if not lo <= hi:
            raise ValueError(f"snr_db must be (low, high) with low ≤ high, got {snr_db!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        self.snr_db, self.p, self.sample_rate = (lo, hi), float(p), sample_rate
        self.sources = list(sources or [])
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, wave: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        apply, u = torch.rand(2, dtype=torch.float64, generator=generator).tolist()
        if apply >= self.p:
            return wave
        snr = self.snr_db[0] + (self.snr_db[1] - self.snr_db[0]) * u
        if self.sources:
            src = self.sources[int(torch.randint(0, len(self.sources), (), generator=generator))]
            if src not in self._cache:
                self._cache[src] = load_audio(src, self.sample_rate)
            noise = random_crop(self._cache[src], wave.shape[-1], generator)
        else:
            noise = torch.randn(wave.shape, generator=generator)
        p_signal = wave.square().mean()
        p_noise = noise.square().mean().clamp_min(1e-12)
        return wave + noise * torch.sqrt(p_signal / (p_noise * 10 ** (snr / 10)))
