"""Synthetic identities: glyphs of random pen strokes, each sample a new "handwritten" rendering of its glyph.

The embedded default dataset: it needs no download, is a pure function of a seed, and scales from 10 to millions of
identities because nothing is generated before an item is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ._image import TransformedImages
from .augment import apply_transform

__all__ = ["SyntheticIdentities"]

_MAX_STROKES = 6
_CHUNK = 256  # items rendered together
_VIEW = 1.25  # the image shows [-_VIEW, _VIEW]² of glyph space; glyphs live in [-0.9, 0.9]²
_REFERENCE_SIZE = 32
# per-sample variation, as half-widths of uniform ranges: stroke shift, control-point jitter, rotation (degrees),
# scale, shear, translation (glyph units)
_SHIFT, _JITTER, _ROT, _SCALE, _SHEAR, _TRANS = 0.08, 0.12, 20.0, 0.2, 0.3, 0.15

# splitmix64 (Steele, Lea & Flood 2014): a counter-based generator, so every random number is a pure function of its
# key and slot, for one item or for a whole batch at once.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_GLYPH, _SAMPLE = np.uint64(0x5EED61F0), np.uint64(0x5A3B1E00)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _uniform(keys: np.ndarray, n: int) -> np.ndarray:
    """(B, n) float64 uniforms in [0, 1): outputs 1..n of the splitmix64 stream started at each key."""
    state = keys[:, None] + np.arange(1, n + 1, dtype=np.uint64)[None, :] * _GOLDEN
    return (_mix(state) >> _S11).astype(np.float64) * (1.0 / 9007199254740992.0)


def _keys(seed: int, domain: np.uint64, *parts: np.ndarray) -> np.ndarray:
    k = _mix(np.full(parts[0].shape, np.uint64(seed), dtype=np.uint64) ^ domain)
    for p in parts:
        k = _mix(k ^ p.astype(np.uint64))
    return k


def _glyphs(seed: int, gids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Control points (B, S, 4, 2), widths (B, S) and active mask (B, S) of the glyphs of global identities ``gids``.

    A glyph has 3–6 cubic Bézier strokes in [-0.9, 0.9]². Stroke s ends at E_s = F_s + U(0.5, 1.3)·(uniform direction)
    from a uniform point F_s in [-0.8, 0.8]² (clipped to the box), and starts at F_s, or, with probability 1/2 (s > 0),
    at E_{s−1}, so strokes connect as in handwriting. The two inner control points sit at the chord's thirds, pushed
    sideways by U(−0.5, 0.5)·chord (from straight lines to hooks and S-curves). Pen σ ~ U(0.045, 0.08) glyph units.
    """
    u = _uniform(_keys(seed, _GLYPH, gids), 1 + 8 * _MAX_STROKES)
    n_strokes = 3 + np.minimum((u[:, 0] * 4).astype(np.int64), 3)
    u = u[:, 1:].reshape(-1, _MAX_STROKES, 8)
    fresh = u[..., 0:2] * 1.6 - 0.8
    length = 0.5 + 0.8 * u[..., 2:3]
    angle = 2 * math.pi * u[..., 3:4]
    end = np.clip(fresh + length * np.concatenate([np.cos(angle), np.sin(angle)], axis=-1), -0.9, 0.9)
    connect = (u[..., 6:7] < 0.5) & (np.arange(_MAX_STROKES) > 0)[None, :, None]
    start = np.where(connect, np.roll(end, 1, axis=1), fresh)
    chord = end - start
    normal = np.stack([-chord[..., 1], chord[..., 0]], axis=-1)
    inner1 = start + chord / 3 + normal * (u[..., 4:5] - 0.5)
    inner2 = start + 2 * chord / 3 + normal * (u[..., 5:6] - 0.5)
    ctrl = np.stack([start, inner1, inner2, end], axis=2)
    widths = 0.045 + 0.035 * u[..., 7]
    active = np.arange(_MAX_STROKES)[None, :] < n_strokes[:, None]
    return ctrl, widths, active


def stroke_density(px: torch.Tensor, py: torch.Tensor, sigma: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Pen density (B, H, W) of polylines with points (px, py) of shape (B, S, T) and pen widths σ (B, S).

    density(x, y) = Σ_points w_i·exp(−((x − px_i)² + (y − py_i)²) / 2σ²) with w_i = (arc length around point i) /
    (σ√(2π)): ≈ exp(−d²/2σ²) at distance d from a stroke (≈ 1 on its centre line) when points are closer than ~1.5σ.
    Separable, so it is one (H×P)·(P×W) product per image. σ = 0 draws nothing. ``centres``: pixel centres (same
    units as the points), shared by both axes.
    """
    b, size = px.shape[0], len(centres)
    seg = torch.hypot(px.diff(dim=2), py.diff(dim=2))
    arc = torch.nn.functional.pad(seg, (0, 1)) + torch.nn.functional.pad(seg, (1, 0))  # twice the arc length
    safe = sigma.clamp_min(1e-6)
    weight = arc * (0.5 / (safe * math.sqrt(2 * math.pi)) * (sigma > 0))[..., None]
    inv = (-0.5 / safe**2)[..., None, None]  # (B, S, 1, 1)
    # exponents clamped at −40 (e^−40 ≈ 4e−18): underflow to subnormals makes exp several times slower
    gx = (px[..., None] - centres).square_().mul_(inv).clamp_(min=-40.0).exp_().reshape(b, -1, size)  # (B, S·T, W)
    gy = (py[..., None] - centres).square_().mul_(inv).clamp_(min=-40.0).exp_().reshape(b, -1, size)  # (B, S·T, H)
    return torch.bmm((gy * weight.reshape(b, -1, 1)).transpose(1, 2), gx)


class SyntheticIdentities(TransformedImages):
    """Identities drawn as random glyphs; every sample is a new rendering with handwriting-like variation.

    Identity k's glyph (3–6 connected cubic Bézier pen strokes with their own widths) is a pure function of
    ``(seed, identity_offset + k)``; sample j of it is a pure function of ``(seed, identity_offset + k, j)``:

    - local deformation: each stroke shifted by U(−0.08, 0.08)² and each control point by U(−0.12, 0.12)²;
    - global affine: rotation U(−20°, 20°), scale U(0.8, 1.2) with aspect U(0.9, 1.1), shear U(−0.3, 0.3),
      translation U(−0.15, 0.15)² (glyph box [-0.9, 0.9]² in a view of [-1.25, 1.25]²);
    - pen: width ×U(0.7, 1.4); ink level U(0.7, 1); Gaussian blur σ U(0, 0.9) px (at 32 px, scaled with size);
      pixel noise N(0, σ²) with σ U(0.02, 0.1).

    Rendering (torch): a stroke is a dense polyline of its Bézier curve, each point a Gaussian of the pen width weighted
    by its arc length, so the sum is ≈ 1 on the stroke's centre line and exp(−d²/2σ²) at distance d; Gaussians are
    separable, so one image is one (H×P)·(P×W) matrix product. Ink = 1 − exp(−2.5·sum) (soft saturation where strokes
    cross), then blur (separable, as matrix products), ink level and noise, clamped to [0, 1].

    Items: ``(image, label)``; image float32 1×H×W with strokes bright, mapped from [0, 1] to [-1, 1] by
    (x − 0.5)/0.5 (background ≈ −1), then ``transform`` if given; label = k (0 … num_identities − 1, the offset only
    selects which glyphs). ``__getitems__`` renders a whole batch in one pass, and torch's DataLoader uses it;
    :meth:`items` does the same with a ``torch.Generator`` per item for ``transform`` (the training loader's
    per-sample seeds); :meth:`images` gives the batch as tensors, without ``transform``. The rendering itself draws
    nothing from torch's generators: its variation is a pure function of (seed, identity, sample).
    Nothing is generated at construction; ``labels`` is built on first access.
    Speed (one core, 32 px): about 10,000 images/s through ``__getitems__`` (DataLoader batches), about
    1,000–1,300/s one ``__getitem__`` at a time (per-call overhead); at 112 px about 600/s.

    Train and test sets with disjoint identities: same ``seed``, ``identity_offset`` 0 and ≥ the training count.

    Difficulty (measured once, 2 CPU cores): on 300 unseen identities × 20 samples at 32 px, raw pixels (mean-centred
    cosine) give EER 17 %; a 4-block CNN (32 channels) trained ~5 epochs with a normalized softmax on 1,000
    identities × 20 gives EER 3.7 %, TAR@FAR=1e-3 64 %, TAR@1e-4 31 %: the same range as Omniglot's baseline.
    """

    channels = 1

    def __init__(
        self,
        num_identities: int,
        samples_per_identity: int,
        image_size: int = 32,
        seed: int = 0,
        identity_offset: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        for name, value, low in (
            ("num_identities", num_identities, 1),
            ("samples_per_identity", samples_per_identity, 1),
            ("image_size", image_size, 8),
            ("seed", seed, 0),
            ("identity_offset", identity_offset, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
        if seed >= 2**63 or identity_offset + num_identities >= 2**63:
            raise ValueError("seed and identity_offset + num_identities must be < 2**63")
        if transform is not None and not callable(transform):
            raise ValueError(f"transform must be callable or None, got {type(transform).__name__}")
        self.num_identities = num_identities
        self.samples_per_identity = samples_per_identity
        self.image_size = image_size
        self.seed = seed
        self.identity_offset = identity_offset
        self.transform = transform
        self.num_classes = num_identities
        self._labels: torch.Tensor | None = None
        self._points = max(16, image_size)  # per stroke: spacing ≈ pen σ typically (ripple < 1 %), < 10 % at worst
        centres = (torch.arange(image_size, dtype=torch.float32) + 0.5) * (2 * _VIEW / image_size) - _VIEW
        self._centres = centres  # pixel centres in glyph units
        self._t = torch.linspace(0, 1, self._points, dtype=torch.float64)

    def __len__(self) -> int:
        return self.num_identities * self.samples_per_identity

    @property
    def labels(self) -> torch.Tensor:
        """Identity of every item: ``arange(num_identities).repeat_interleave(samples_per_identity)``."""
        if self._labels is None:
            self._labels = torch.arange(self.num_identities).repeat_interleave(self.samples_per_identity)
        return self._labels

    def item(self, index: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
        return self.items([index], [generator])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        """Items ``indices`` rendered as one batch, then ``transform`` per item (torch's DataLoader calls this)."""
        return self.items(indices)

    def items(
        self, indices: Sequence[int], generators: Sequence[torch.Generator | None] | None = None
    ) -> list[tuple[torch.Tensor, int]]:
        """Items ``indices`` rendered as one batch, then ``transform`` per item, item k drawing from
        ``generators[k]`` (None: torch's global generator)."""
        images, labels = self.images(indices)
        t = self.transform
        if t is None:
            return list(zip(images, labels.tolist()))
        generators = [None] * len(images) if generators is None else generators
        return [(apply_transform(t, img, g), y) for img, y, g in zip(images, labels.tolist(), generators)]

    def images(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 1, H, W) in [-1, 1], without ``transform``, and labels (B,) of items ``indices``, batched."""
        idx = np.asarray([int(i) for i in indices], dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"index out of range for {n} items")
        idx = np.where(idx < 0, idx + n, idx)
        ident, sample = np.divmod(idx, self.samples_per_identity)
        size = self.image_size
        chunks = [torch.empty(0, 1, size, size)] + [
            self.render(ident[i : i + _CHUNK] + self.identity_offset, sample[i : i + _CHUNK])
            for i in range(0, len(idx), _CHUNK)
        ]  # bounded working memory (the Gaussian tables are B·S·T·S floats)
        return torch.cat(chunks).mul_(2.0).sub_(1.0), torch.from_numpy(ident)

    def render(self, global_ids: np.ndarray, samples: np.ndarray) -> torch.Tensor:
        """Images in [0, 1], shape (B, 1, H, W), of samples ``samples`` of glyphs ``global_ids`` (with the offset)."""
        gids = np.asarray(global_ids, dtype=np.int64).reshape(-1)
        js = np.asarray(samples, dtype=np.int64).reshape(-1)
        b, size = len(gids), self.image_size
        ctrl, widths, active = _glyphs(self.seed, gids)
        u = _uniform(_keys(self.seed, _SAMPLE, gids, js), 2 * _MAX_STROKES + 8 * _MAX_STROKES + 11)
        # local deformation: per-stroke shift and per-control-point jitter
        shift = (u[:, : 2 * _MAX_STROKES].reshape(b, _MAX_STROKES, 1, 2) - 0.5) * 2 * _SHIFT
        jitter = (u[:, 2 * _MAX_STROKES : 10 * _MAX_STROKES].reshape(b, _MAX_STROKES, 4, 2) - 0.5) * 2 * _JITTER
        ctrl = ctrl + shift + jitter
        g = u[:, 10 * _MAX_STROKES :]
        rot = (g[:, 0] - 0.5) * math.radians(2 * _ROT)
        scale = 1 - _SCALE + 2 * _SCALE * g[:, 1]
        aspect = 0.9 + 0.2 * g[:, 2]
        shear = (g[:, 3] - 0.5) * 2 * _SHEAR
        trans = (g[:, 4:6] - 0.5) * 2 * _TRANS
        width_factor = 0.7 + 0.7 * g[:, 6]
        blur = 0.9 * g[:, 7] * (size / _REFERENCE_SIZE)
        level = 0.7 + 0.3 * g[:, 8]
        noise_std = 0.02 + 0.08 * g[:, 9]
        # A = R · Sh · diag(sx, sy), applied to the control points (affine maps of Bézier curves are exact)
        c, s = np.cos(rot), np.sin(rot)
        sx, sy = scale * aspect, scale / aspect
        a11, a12 = c * sx, (c * shear - s) * sy
        a21, a22 = s * sx, (s * shear + c) * sy
        x = a11[:, None, None] * ctrl[..., 0] + a12[:, None, None] * ctrl[..., 1] + trans[:, None, None, 0]
        y = a21[:, None, None] * ctrl[..., 0] + a22[:, None, None] * ctrl[..., 1] + trans[:, None, None, 1]

        # Bézier polylines: (B, S, T) points
        t = self._t
        basis = torch.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], dim=0)  # (4, T)
        px = (torch.from_numpy(x) @ basis).float()
        py = (torch.from_numpy(y) @ basis).float()
        sigma = torch.from_numpy(widths * width_factor[:, None] * active).float()  # (B, S); 0 = inactive
        density = stroke_density(px, py, sigma, self._centres)
        ink = (-2.5 * density).clamp_(min=-40.0).exp_().neg_().add_(1.0)

        # separable Gaussian blur as matrix products K · ink · Kᵀ (rows of K sum to 1; σ = 0 is the identity)
        pix = torch.arange(size, dtype=torch.float32)
        blur_t = torch.from_numpy(blur).float().clamp_min(1e-3)[:, None, None]
        kernel = (-0.5 * ((pix[:, None] - pix[None, :]) / blur_t) ** 2).clamp_(min=-40.0).exp_()
        kernel = kernel / kernel.sum(dim=2, keepdim=True)
        ink = kernel @ ink @ kernel.transpose(1, 2)

        # pixel noise (Box–Muller from the sample's own stream) and ink level
        half = (size * size + 1) // 2
        un = _uniform(_keys(self.seed, _SAMPLE, gids, js, np.full_like(gids, 1)), 2 * half)
        radius = np.sqrt(-2.0 * np.log1p(-un[:, :half]))
        phase = 2 * math.pi * un[:, half:]
        normal = np.concatenate([radius * np.cos(phase), radius * np.sin(phase)], axis=1)[:, : size * size]
        noise = torch.from_numpy(normal * noise_std[:, None]).float().reshape(b, size, size)
        image = ink * torch.from_numpy(level).float()[:, None, None] + noise
        return image.clamp_(0.0, 1.0).unsqueeze(1)
