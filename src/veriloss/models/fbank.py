"""Kaldi-style log-mel filterbank front-end in torch (no torchaudio), and SpecAugment masking.

Speaker backbones own their front-end: they take raw waveforms (B, 1, T) and call :class:`Fbank` first.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_in_range, check_positive
from .base import positive_int

__all__ = ["Fbank", "SpecAugment", "kaldi_mel_banks", "mel_scale", "num_frames", "povey_window"]

#: log floor: float32 machine epsilon, as Kaldi (std::numeric_limits<float>::epsilon()) and torchaudio use
LOG_FLOOR = torch.finfo(torch.float32).eps
#: float waveforms in [-1, 1] are scaled to the 16-bit integer range Kaldi reads, so dither = 1 is one LSB
INT16_SCALE = 32768.0


def mel_scale(freq: torch.Tensor | float) -> torch.Tensor | float:
    """Kaldi's mel scale: ``mel(f) = 1127 · ln(1 + f / 700)``."""
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log1p(freq / 700.0)
    return 1127.0 * math.log1p(freq / 700.0)


def num_frames(num_samples: int, frame_length: int, frame_shift: int) -> int:
    """Frames with Kaldi's ``snip_edges=true``: ``1 + (T − L) // S`` for T ≥ L, else 0."""
    if num_samples < frame_length:
        return 0
    return 1 + (num_samples - frame_length) // frame_shift


def povey_window(length: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Kaldi's "povey" window: ``w[i] = (0.5 − 0.5 · cos(2π i / (L − 1)))^0.85`` (a symmetric Hann to the 0.85)."""
    i = torch.arange(length, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * i / (length - 1))).pow(0.85).to(dtype)


def kaldi_mel_banks(
    n_mels: int, n_fft: int, sample_rate: float, low_freq: float, high_freq: float, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Triangular mel filters (n_mels, n_fft // 2 + 1) as Kaldi's ``MelBanks`` builds them.

    Mel points are equally spaced between mel(low) and mel(high) (``high ≤ 0`` means Nyquist + high):
    ``Δ = (mel(high) − mel(low)) / (n_mels + 1)``, filter b has left/centre/right edges mel(low) + (b, b+1, b+2)·Δ.
    FFT bin i (frequency ``i · sr / n_fft``, i < n_fft / 2) gets weight (m − left)/(centre − left) on the rising
    side and (right − m)/(right − centre) on the falling side, with m = mel(freq), strictly inside (left, right);
    triangles are in mel space, not Hz. The Nyquist bin (i = n_fft / 2) always has weight 0 (Kaldi uses the first
    n_fft / 2 bins only; torchaudio pads a zero column).
    """
    nyquist = 0.5 * sample_rate
    high = high_freq if high_freq > 0 else nyquist + high_freq
    if not 0 <= low_freq < high <= nyquist:
        raise ValueError(
            f"mel band edges must satisfy 0 ≤ low_freq < high_freq ≤ Nyquist ({nyquist} Hz); got low_freq="
            f"{low_freq}, high_freq={high_freq} (resolved to {high})"
        )
    mel_low, mel_high = mel_scale(float(low_freq)), mel_scale(float(high))
    delta = (mel_high - mel_low) / (n_mels + 1)
    b = torch.arange(n_mels, dtype=torch.float64)[:, None]
    left, centre, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    freqs = torch.arange(n_fft // 2, dtype=torch.float64) * (sample_rate / n_fft)
    mel = mel_scale(freqs)[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    weights = torch.where(mel <= centre, up, down)
    weights = torch.where((mel > left) & (mel < right), weights, torch.zeros(()))
    return torch.nn.functional.pad(weights, (0, 1)).to(dtype)


class Fbank(nn.Module):
    """Log-mel filterbank energies with Kaldi's ``compute-fbank-feats`` conventions, batched, in torch.

    Maps waveforms (B, T) or (B, 1, T), float in [-1, 1], to features (B, n_mels, frames). Per frame, in Kaldi's
    order (``FeatureWindowFunction`` / ``ProcessWindow``):

    1. scale by 32768 (Kaldi reads 16-bit integers; this makes ``dither`` and the log floor mean what they mean in
       Kaldi); framing with ``snip_edges=true``: L = sr·25 ms = 400, S = sr·10 ms = 160 samples,
       ``frames = 1 + (T − L) // S``; T < L raises ``ValueError`` (Kaldi would return 0 frames);
    2. dither (training mode only): ``x += dither · N(0, 1)``, independent noise per frame;
    3. DC removal: subtract the frame's mean;
    4. pre-emphasis: ``x[i] −= k · x[i−1]`` for i ≥ 1 and ``x[0] −= k · x[0]``;
    5. window: "povey" (:func:`povey_window`), "hann" (symmetric), "hamming" (0.54 − 0.46 cos, symmetric) or
       "rectangular";
    6. zero-pad to the next power of two (512 for 400), power spectrum ``|FFT|²`` (n_fft/2 + 1 bins);
    7. mel filters :func:`kaldi_mel_banks` (mel(f) = 1127 ln(1 + f/700), triangles in mel space);
    8. ``log(max(E, ε))``, ε = float32 epsilon (1.19e-7), when ``use_log``;
    9. utterance mean normalization (subtract each bin's mean over frames) when ``mean_norm``.

    Differences from ``torchaudio.compliance.kaldi.fbank`` (defaults there: dither 0, 23 bins, subtract_mean false,
    one unbatched waveform in its own dtype and scale): the input scaling by 32768 (torchaudio leaves the scale to
    the caller; speaker toolkits such as WeSpeaker multiply by 2¹⁵ before calling it), batching, dither on by default
    in training mode and always off in eval mode, mean normalization on by default, T < L is an error instead of an
    empty result, arithmetic in float32 (float64 input stays float64), and the random numbers of the dither differ
    from Kaldi's generator. Energy (``use_energy``), VTLN warping and ``snip_edges=false`` are not implemented.
    """

    reference = "Povey et al. 2011 (Kaldi), compute-fbank-feats; torchaudio.compliance.kaldi.fbank"

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        dither: float = 1.0,
        preemphasis: float = 0.97,
        window: str = "povey",
        remove_dc: bool = True,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        use_log: bool = True,
        mean_norm: bool = True,
    ):
        super().__init__()
        self.sample_rate = positive_int(sample_rate, "sample_rate")
        self.n_mels = positive_int(n_mels, "n_mels")
        self.frame_length = int(self.sample_rate * check_positive(frame_length_ms, "frame_length_ms") / 1000)
        self.frame_shift = int(self.sample_rate * check_positive(frame_shift_ms, "frame_shift_ms") / 1000)
        if self.frame_length < 2 or self.frame_shift < 1:
            raise ValueError(
                f"frame_length_ms / frame_shift_ms give {self.frame_length} / {self.frame_shift} samples at "
                f"{sample_rate} Hz; need at least 2 / 1"
            )
        self.n_fft = 1 << (self.frame_length - 1).bit_length()
        self.dither = check_positive(dither, "dither", strict=False)
        self.preemphasis = check_in_range(preemphasis, "preemphasis", 0.0, 1.0)
        self.remove_dc, self.use_log, self.mean_norm = bool(remove_dc), bool(use_log), bool(mean_norm)
        windows = {
            "povey": lambda n: povey_window(n),
            "hann": lambda n: torch.hann_window(n, periodic=False, dtype=torch.float64),
            "hamming": lambda n: torch.hamming_window(n, periodic=False, alpha=0.54, beta=0.46, dtype=torch.float64),
            "rectangular": lambda n: torch.ones(n, dtype=torch.float64),
        }
        if window not in windows:
            raise ValueError(f"window must be one of {', '.join(windows)}, got {window!r}")
        self.window_type = window
        self.register_buffer("window", windows[window](self.frame_length), persistent=False)  # float64
        banks = kaldi_mel_banks(self.n_mels, self.n_fft, self.sample_rate, float(low_freq), float(high_freq))
        if bool((banks.sum(dim=1) == 0).any()):
            raise ValueError(
                f"{n_mels} mel bins between {low_freq} and {high_freq} Hz with a {self.n_fft}-point FFT leave some "
                "filters empty; use fewer bins or a wider band"
            )
        self.register_buffer("mel_banks", banks, persistent=False)  # float64, cast per call

    def num_frames(self, num_samples: int) -> int:
        """Output frames for ``num_samples`` input samples: ``1 + (T − L) // S`` (0 when T < L)."""
        return num_frames(num_samples, self.frame_length, self.frame_shift)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if not isinstance(waveform, torch.Tensor) or not waveform.is_floating_point():
            raise ValueError("waveform must be a floating-point torch.Tensor of shape (batch, samples)")
        if waveform.dim() == 3 and waveform.shape[1] == 1:
            waveform = waveform[:, 0]
        if waveform.dim() != 2:
            raise ValueError(
                f"waveform must have shape (batch, samples) or (batch, 1, samples), got {tuple(waveform.shape)}"
            )
        t = waveform.shape[1]
        if t < self.frame_length:
            raise ValueError(
                f"waveform has {t} samples, fewer than one {self.frame_length}-sample frame "
                f"({self.frame_length / self.sample_rate * 1000:g} ms at {self.sample_rate} Hz); pad or drop it"
            )
        dtype = torch.float64 if waveform.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            x = waveform.to(dtype) * INT16_SCALE
            frames = x.unfold(1, self.frame_length, self.frame_shift)  # (B, F, L)
            if self.training and self.dither > 0:
                frames = frames + self.dither * torch.randn_like(frames)
            if self.remove_dc:
                frames = frames - frames.mean(dim=-1, keepdim=True)
            if self.preemphasis > 0:
                previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
                frames = frames - self.preemphasis * previous
            frames = frames * self.window.to(dtype)
            spectrum = torch.fft.rfft(frames, n=self.n_fft).abs().square()  # (B, F, n_fft/2 + 1)
            mel = spectrum @ self.mel_banks.to(dtype).T  # (B, F, n_mels)
            if self.use_log:
                mel = mel.clamp_min(LOG_FLOOR).log()
            if self.mean_norm:
                mel = mel - mel.mean(dim=1, keepdim=True)
            return mel.transpose(1, 2).contiguous()

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_mels={self.n_mels}, frame={self.frame_length}/{self.frame_shift}, "
            f"n_fft={self.n_fft}, window={self.window_type!r}, dither={self.dither}, mean_norm={self.mean_norm}"
        )


class SpecAugment(nn.Module):
    """SpecAugment-style masking of features (B, F, T) in training mode (Park et al. 2019, without time warping).

    Per utterance: ``freq_masks`` bands of width w ~ U{0, …, freq_width} bins starting at f0 ~ U{0, …, F − w}, and
    ``time_masks`` spans of width w ~ U{0, …, min(time_width, ⌊time_ratio · T⌋)} frames starting at t0 ~ U{0, …,
    T − w}, each set to ``fill`` (0: with mean-normalized log-mel features this is the utterance mean). Identity in
    eval mode. Random numbers come from torch's global generator (deterministic under ``torch.manual_seed``).
    """

    reference = "Park et al. 2019, SpecAugment"

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 10,
        time_ratio: float = 0.2,
        fill: float = 0.0,
    ):
        super().__init__()
        self.freq_masks = positive_int(freq_masks, "freq_masks", 0)
        self.freq_width = positive_int(freq_width, "freq_width", 0)
        self.time_masks = positive_int(time_masks, "time_masks", 0)
        self.time_width = positive_int(time_width, "time_width", 0)
        self.time_ratio = check_in_range(time_ratio, "time_ratio", 0.0, 1.0)
        self.fill = float(fill)

    def _mask(self, x: torch.Tensor, dim: int, count: int, width: int) -> torch.Tensor:
        b, size = x.shape[0], x.shape[dim]
        width = min(width, size)
        if count == 0 or width == 0:
            return torch.zeros(b, size, dtype=torch.bool, device=x.device)
        w = torch.randint(0, width + 1, (b, count), device=x.device)
        start = (torch.rand(b, count, device=x.device) * (size - w + 1)).floor().long()
        pos = torch.arange(size, device=x.device)[None, None, :]
        return ((pos >= start[..., None]) & (pos < (start + w)[..., None])).any(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        if x.dim() != 3:
            raise ValueError(f"SpecAugment expects features of shape (batch, freq, time), got {tuple(x.shape)}")
        time_width = min(self.time_width, int(self.time_ratio * x.shape[2]))
        fmask = self._mask(x, 1, self.freq_masks, self.freq_width)[:, :, None]
        tmask = self._mask(x, 2, self.time_masks, time_width)[:, None, :]
        return x.masked_fill(fmask | tmask, self.fill)
