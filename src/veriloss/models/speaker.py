"""Speaker backbones on raw waveforms: ECAPA-TDNN and a thin ResNet-34, each owning its Kaldi-style fbank front-end.

Input (B, 1, T) float waveforms in [-1, 1] at ``sample_rate`` with T ≥ one 25 ms frame (400 samples at 16 kHz);
output (B, ``embedding_dim``) un-normalized embeddings. All utterances of a batch have the same length: the models
do not take padding masks, so variable-length test utterances are embedded one at a time (or in groups of equal
length); in eval mode a batch of one gives exactly the same embedding as any batch containing the utterance.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import positive_int
from .fbank import Fbank, SpecAugment
from .neck import EmbeddingNeck
from .registry import register

__all__ = [
    "ECAPATDNN",
    "AttentiveStatsPool",
    "ResNetSpeaker",
    "SERes2Block",
    "WaveformBackbone",
    "statistics_pooling",
]

#: variance floor of the (attentive) statistics pooling: std = sqrt(max(var, eps)), finite gradients on silence
STD_EPS = 1e-6


def statistics_pooling(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean and standard deviation over time (last dim) of x (B, C, T), concatenated to (B, 2C).

    ``μ = Σ_t w_t x_t``, ``σ = sqrt(max(Σ_t w_t (x_t − μ)², eps))`` with ``w_t = 1/T`` (plain statistics pooling,
    population variance) or the given weights (B, C, T) that sum to 1 over time (attentive statistics pooling,
    Okabe et al. 2018).
    """
    if weights is None:
        mean = x.mean(dim=2)
        var = (x - mean[..., None]).square().mean(dim=2)
    else:
        mean = (weights * x).sum(dim=2)
        var = (weights * (x - mean[..., None]).square()).sum(dim=2)
    return torch.cat([mean, var.clamp_min(STD_EPS).sqrt()], dim=1)


class WaveformBackbone(nn.Module):
    """Base of the speaker backbones: waveform (B, 1, T) → :class:`Fbank` → optional :class:`SpecAugment` (training
    mode only) → :meth:`embed_features` on features (B, n_mels, frames).

    Keeps the trainer's backbone contract: ``in_channels`` = 1, ``input_size`` = None (any length ≥ one frame),
    ``embedding_dim``; plus ``sample_rate`` and ``min_samples`` (one fbank frame).
    """

    def __init__(
        self,
        embedding_dim: int,
        n_mels: int,
        sample_rate: int,
        in_channels: int,
        input_size: None,
        spec_augment: bool | dict,
        dither: float,
    ):
        super().__init__()
        if in_channels != 1 or isinstance(in_channels, bool):
            raise ValueError(f"speaker backbones take mono waveforms: in_channels must be 1, got {in_channels!r}")
        if input_size is not None:
            raise ValueError(f"speaker backbones take any waveform length: input_size must be None, got {input_size!r}")
        self.in_channels = 1
        self.input_size = None
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim")
        self.n_mels = positive_int(n_mels, "n_mels")
        self.fbank = Fbank(sample_rate=sample_rate, n_mels=self.n_mels, dither=dither)
        self.sample_rate = self.fbank.sample_rate
        self.min_samples = self.fbank.frame_length
        if isinstance(spec_augment, dict):
            self.spec_augment: nn.Module = SpecAugment(**spec_augment)
        elif isinstance(spec_augment, bool):
            self.spec_augment = SpecAugment() if spec_augment else nn.Identity()
        else:
            raise ValueError(f"spec_augment must be true/false or a dict of SpecAugment options, got {spec_augment!r}")

    def check_input(self, x: torch.Tensor) -> None:
        """``x`` must be a float (B, 1, T) tensor with B ≥ 1 and T ≥ ``min_samples``."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if torch.jit.is_tracing():
            return
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[0] == 0 or x.shape[2] < self.min_samples:
            raise ValueError(
                f"{type(self).__name__} expects waveforms of shape (batch, 1, samples) with batch ≥ 1 and samples ≥ "
                f"{self.min_samples} (one {self.fbank.frame_length}-sample frame at {self.sample_rate} Hz), "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"input must be a floating-point tensor, got dtype {x.dtype}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Front-end output (B, n_mels, frames) of waveforms (B, 1, T), SpecAugment included in training mode."""
        self.check_input(x)
        return self.spec_augment(self.fbank(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_features(self.features(x))

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class _TDNN(nn.Sequential):
    """Conv1d (zero "same" padding, bias) → ReLU → BatchNorm1d, the ECAPA frame layer."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, dilation: int = 1):
        super().__init__(
            nn.Conv1d(cin, cout, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(cout),
        )


class _Res2Conv(nn.Module):
    """Res2Net hierarchical convolution (Gao et al. 2019): split C into s groups x_1..x_s; y_1 = x_1,
    y_2 = K_2(x_2), y_i = K_i(x_i + y_{i−1}) for i ≥ 3; concatenate. K_i: dilated k=3 :class:`_TDNN`."""

    def __init__(self, channels: int, scale: int, dilation: int):
        super().__init__()
        if channels % scale:
            raise ValueError(f"channels ({channels}) must be divisible by the Res2Net scale ({scale})")
        self.scale = scale
        width = channels // scale
        self.convs = nn.ModuleList(_TDNN(width, width, 3, dilation) for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = x.chunk(self.scale, dim=1)
        out, y = [chunks[0]], None
        for conv, xi in zip(self.convs, chunks[1:]):
            y = conv(xi if y is None else xi + y)
            out.append(y)
        return torch.cat(out, dim=1)


class SERes2Block(nn.Module):
    """ECAPA's SE-Res2Block: 1×1 TDNN → Res2Net dilated conv (scale 8) → 1×1 TDNN → squeeze-excitation, plus the
    input (residual). SE (Hu et al. 2018): ``s = σ(W₂ ReLU(W₁ mean_t(h) + b₁) + b₂)``, output ``h · s``."""

    def __init__(self, channels: int, dilation: int, scale: int = 8, se_channels: int = 128):
        super().__init__()
        self.tdnn1 = _TDNN(channels, channels, 1)
        self.res2 = _Res2Conv(channels, scale, dilation)
        self.tdnn2 = _TDNN(channels, channels, 1)
        self.se = nn.Sequential(
            nn.Conv1d(channels, se_channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv1d(se_channels, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tdnn2(self.res2(self.tdnn1(x)))
        return h * self.se(h.mean(dim=2, keepdim=True)) + x


class AttentiveStatsPool(nn.Module):
    """Channel- and context-dependent attentive statistics pooling (Desplanques et al. 2020, §3.3).

    Global context: ``g_t = [h_t; μ; σ]`` with μ, σ the plain mean and std of h over time. Scores
    ``e_t = W₂ tanh(BN(ReLU(W₁ g_t + b₁))) + b₂`` (bottleneck ``attention_channels``), weights
    ``α_{c,t} = softmax_t(e_{c,t})``, output ``[Σ_t α_t h_t; sqrt(Σ_t α_t h_t² − μ̃²)]`` (B, 2C) via
    :func:`statistics_pooling`.
    """

    def __init__(self, channels: int, attention_channels: int = 128, global_context: bool = True):
        super().__init__()
        self.global_context = global_context
        self.tdnn = _TDNN(channels * (3 if global_context else 1), attention_channels, 1)
        self.score = nn.Conv1d(attention_channels, channels, 1)

    def attention(self, h: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, C, T), non-negative, summing to 1 over time."""
        g = h
        if self.global_context:
            stats = statistics_pooling(h)[..., None].expand(-1, -1, h.shape[2])
            g = torch.cat([h, stats], dim=1)
        return torch.softmax(self.score(torch.tanh(self.tdnn(g))), dim=2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return statistics_pooling(h, self.attention(h))


class ECAPATDNN(WaveformBackbone):
    """ECAPA-TDNN (Desplanques, Thienpondt & Demuynck 2020) on waveforms, with its fbank front-end inside.

    Structure (C = ``channels``, 512 or 1024; features 80 × T frames)::

        fbank    :class:`Fbank` (80 log-mel, Kaldi conventions, mean-normalized) [→ SpecAugment, training only]
        stem     Conv1d(80 → C, k=5) → ReLU → BN                                  (:class:`_TDNN`)
        block i  SE-Res2Block(C, k=3, dilation 2, 3, 4; Res2Net scale 8, SE bottleneck 128), i = 1..3;
                 input of block i is the sum of the stem's and all earlier blocks' outputs (the paper's summed
                 residual connections)
        MFA      concat(block 1..3) (3C) → Conv1d(3C → 1536, k=1) → ReLU → BN
        pool     :class:`AttentiveStatsPool` (global context, bottleneck 128) → 3072
        neck     :class:`EmbeddingNeck` (3072 → ``embedding_dim``): BN → Dropout → FC → BN

    The MFA layer has 1536 channels for both C (as in the paper, whose 14.7 M for C = 1024 only fits 1536).
    Parameters with 80 mels and 192-d embeddings: C = 512: 6,194,432; C = 1024: 14,660,800 (the paper: 6.2 M and
    14.7 M; SpeechBrain's ECAPA_TDNN with the same channels has 6,194,048 and 14,660,416 = ours − 384 because it
    ends at the FC, without the output BN1d(192)). Differences from SpeechBrain: zero instead of reflect "same"
    padding, the summed block inputs (SpeechBrain chains the blocks), and the output BN.
    """

    reference = "Desplanques et al. 2020, ECAPA-TDNN (Interspeech); Gao et al. 2019 (Res2Net); Hu et al. 2018 (SE)"

    def __init__(
        self,
        channels: int = 512,
        embedding_dim: int = 192,
        n_mels: int = 80,
        sample_rate: int = 16000,
        mfa_channels: int = 1536,
        attention_channels: int = 128,
        se_channels: int = 128,
        scale: int = 8,
        dropout: float = 0.0,
        spec_augment: bool | dict = False,
        dither: float = 1.0,
        in_channels: int = 1,
        input_size: None = None,
    ):
        super().__init__(embedding_dim, n_mels, sample_rate, in_channels, input_size, spec_augment, dither)
        c = positive_int(channels, "channels")
        self.channels = c
        mfa = positive_int(mfa_channels, "mfa_channels")
        self.stem = _TDNN(self.n_mels, c, 5)
        self.blocks = nn.ModuleList(
            SERes2Block(c, d, positive_int(scale, "scale", 2), positive_int(se_channels, "se_channels"))
            for d in (2, 3, 4)
        )
        self.mfa = _TDNN(3 * c, mfa, 1)
        self.pool = AttentiveStatsPool(mfa, positive_int(attention_channels, "attention_channels"))
        self.neck = EmbeddingNeck(2 * mfa, self.embedding_dim, dropout)

    def frame_features(self, feats: torch.Tensor) -> torch.Tensor:
        """MFA output (B, 1536, frames) of fbank features (B, n_mels, frames)."""
        x = self.stem(feats)
        total, outs = x, []
        for block in self.blocks:
            y = block(total)
            outs.append(y)
            total = total + y
        return self.mfa(torch.cat(outs, dim=1))

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.neck(self.pool(self.frame_features(feats)))


class _BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): conv3×3(stride) → BN → ReLU → conv3×3 → BN, plus the shortcut
    (1×1 conv(stride) → BN when the shape changes), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNetSpeaker(WaveformBackbone):
    """Thin ResNet-34 speaker model (the VoxCeleb "thin ResNet" / WeSpeaker ResNet34 layout) on waveforms.

    Structure (w = ``width``, 32 for "thin"; features as a 1 × n_mels × T image)::

        fbank    :class:`Fbank` (80 log-mel) [→ SpecAugment, training only] → (B, 1, 80, T)
        stem     Conv2d(1 → w, 3×3, pad 1, no bias) → BN → ReLU
        stages   basic blocks [3, 4, 6, 3] with widths w, 2w, 4w, 8w and strides 1, 2, 2, 2 (both axes)
        pool     statistics pooling over time of the (8w · ⌈n_mels/8⌉)-channel sequence → mean ‖ std
        neck     :class:`EmbeddingNeck` (2 · 8w · ⌈n_mels/8⌉ → ``embedding_dim``): BN → Dropout → FC → BN

    With w = 32, 80 mels and 256-d embeddings: 5120 pooled features and 6,645,088 parameters (WeSpeaker's
    ResNet34 with one embedding layer, 6.63 M, has 6,634,336 = ours − 10,752: no BN before and after the FC).
    """

    reference = "He et al. 2016 (ResNet); Chung et al. 2020 / Wang et al. 2023 (WeSpeaker) thin ResNet-34"

    def __init__(
        self,
        embedding_dim: int = 256,
        width: int = 32,
        layers: tuple[int, ...] | list[int] = (3, 4, 6, 3),
        n_mels: int = 80,
        sample_rate: int = 16000,
        dropout: float = 0.0,
        spec_augment: bool | dict = False,
        dither: float = 1.0,
        in_channels: int = 1,
        input_size: None = None,
    ):
        super().__init__(embedding_dim, n_mels, sample_rate, in_channels, input_size, spec_augment, dither)
        w = positive_int(width, "width")
        self.width = w
        if not isinstance(layers, (tuple, list)) or len(layers) != 4:
            raise ValueError(f"layers must be four block counts, got {layers!r}")
        self.layers = tuple(positive_int(n, "layers") for n in layers)
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        stages, cin = [], w
        for i, n in enumerate(self.layers):
            cout, stride = w * 2**i, 1 if i == 0 else 2
            stages += [_BasicBlock(cin if j == 0 else cout, cout, stride if j == 0 else 1) for j in range(n)]
            cin = cout
        self.stages = nn.Sequential(*stages)
        freq = self.n_mels
        for _ in range(3):
            freq = (freq - 1) // 2 + 1  # 3×3 conv, stride 2, pad 1
        self.pooled_features = 2 * cin * freq
        self.neck = EmbeddingNeck(self.pooled_features, self.embedding_dim, dropout)

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(feats[:, None]))  # (B, 8w, F', T')
        return self.neck(statistics_pooling(h.flatten(1, 2)))


register("ecapa-tdnn", ECAPATDNN)
register("resnet34-speaker", ResNetSpeaker)
