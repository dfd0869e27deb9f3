"""Per-sample augmentation written with torch (no torchvision): affine, resized crop, horizontal flip, and how a
transform is called with a random generator.

Every transform takes one image tensor C×H×W (float) and an optional ``generator`` (a ``torch.Generator``) and
returns an image: its random numbers come from ``generator``, or from torch's global generator when it is None (so a
pipeline is also reproducible under ``torch.manual_seed``). The training loader gives each sample a generator seeded
by (seed, epoch, index): :func:`apply_transform` passes it to any transform with a ``generator`` parameter and runs
one without it under the global generator seeded from it. Resampling is bilinear (an affine sampling grid, as
``affine_grid``, then ``grid_sample``, align_corners=False); pixels from outside the image get ``fill``, by default
−1: the background of this package's [-1, 1] images.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_in_range, check_positive

__all__ = ["Compose", "RandomAffine", "RandomHorizontalFlip", "RandomResizedCrop", "apply_transform", "takes_generator"]


def _range(value: float | Sequence[float], name: str, symmetric: bool) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        v = check_positive(value, name, strict=False)
        return (-v, v) if symmetric else (v, v)
    lo, hi = (float(x) for x in value)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name} must be a number or a (min, max) pair with min ≤ max, got {value!r}")
    return lo, hi


def _uniforms(n: int, generator: torch.Generator | None) -> list[float]:
    """``n`` draws of U[0, 1) in one call (a torch call costs microseconds; these transforms need a few numbers)."""
    return torch.rand(n, dtype=torch.float64, generator=generator).tolist()


def _lerp(bounds: tuple[float, float], u: float) -> float:
    lo, hi = bounds
    return lo + (hi - lo) * u


@functools.lru_cache(maxsize=256)
def _has_generator_parameter(fn: Callable) -> bool:
    try:
        return "generator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature (some builtins)
        return False


def takes_generator(transform: Callable) -> bool:
    """Whether ``transform`` has a ``generator`` parameter (looked up once per function, or per class of a callable
    object)."""
    if isinstance(transform, types.MethodType):
        fn = transform.__func__
    elif isinstance(transform, (types.FunctionType, types.BuiltinFunctionType, functools.partial)):
        fn = transform
    else:
        fn = type(transform).__call__
    return _has_generator_parameter(fn)


def apply_transform(transform: Callable, x, generator: torch.Generator | None = None):
    """``transform(x)`` drawing its random numbers from ``generator``: passed as ``generator=`` when the transform
    has that parameter (:func:`takes_generator`); a transform without it runs under torch's global generator seeded
    from ``generator`` inside ``torch.random.fork_rng`` (the global state is restored after; ≈ 0.2 ms a call, so
    give your own transforms a ``generator`` parameter). ``generator`` None: ``transform(x)``."""
    if generator is None:
        return transform(x)
    if takes_generator(transform):
        return transform(x, generator=generator)
    seed = int(torch.randint(0, 2**63 - 1, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transform(x)


def _check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or not image.is_floating_point():
        raise ValueError(
            f"image must be a floating-point C×H×W tensor, got "
            f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}"
        )


@functools.lru_cache(maxsize=16)
def _base_grid(h: int, w: int) -> np.ndarray:
    """Pixel-centre coordinates in [−1, 1] (align_corners=False, as F.affine_grid): (H·W, 3) with a ones column."""
    xs = (np.arange(w, dtype=np.float32) * 2 + 1) / w - 1
    ys = (np.arange(h, dtype=np.float32) * 2 + 1) / h - 1
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel(), np.ones(h * w, dtype=np.float32)], axis=-1)


def _resample(image: torch.Tensor, theta: list[list[float]], size: tuple[int, int], fill: float) -> torch.Tensor:
    """Bilinear resampling: output pixel at normalized p takes the input at theta·[p, 1] (normalized coordinates;
    ``theta`` 2×3 as nested lists).

    The grid is ``base @ thetaᵀ`` in numpy: at these sizes a torch op costs more in dispatch than in arithmetic
    (F.affine_grid's batched matmul costs milliseconds per call on multi-threaded CPUs, 50× the sampling itself).
    """
    grid = _base_grid(*size) @ np.asarray(theta, dtype=np.float32).T
    grid = torch.from_numpy(grid.reshape(1, *size, 2)).to(image.dtype)
    out = F.grid_sample((image - fill)[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0] + fill


class RandomAffine:
    """Random rotation, translation, scale and x-shear about the image centre.

    ``degrees``: rotation range, a number d for U(−d, d) or a (min, max) pair; ``translate`` = (fx, fy): shifts
    U(−fx·W, fx·W) and U(−fy·H, fy·H); ``scale`` = (min, max) zoom factor; ``shear``: x-shear angle in degrees, a
    number s for U(−s, s) or a pair. The forward map is T · R · Sh · S (pixels, centred); the output is the input
    sampled at its inverse. All zero (scale (1, 1)) is the identity.
    """

    def __init__(
        self,
        degrees: float | Sequence[float] = 0.0,
        translate: Sequence[float] = (0.0, 0.0),
        scale: Sequence[float] = (1.0, 1.0),
        shear: float | Sequence[float] = 0.0,
        fill: float = -1.0,
    ):
        self.degrees = _range(degrees, "degrees", symmetric=True)
        if len(translate) != 2:
            raise ValueError(f"translate must be a pair (fx, fy) of fractions, got {translate!r}")
        self.translate = tuple(check_in_range(t, "translate", 0.0, 1.0) for t in translate)
        self.scale = _range(scale, "scale", symmetric=False)
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.shear = _range(shear, "shear", symmetric=True)
        if max(abs(s) for s in self.shear) >= 90:
            raise ValueError(f"shear must lie in (−90, 90) degrees, got {shear!r}")
        self.fill = float(fill)

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_image(image)
        _, h, w = image.shape
        u = _uniforms(5, generator)
        angle = math.radians(_lerp(self.degrees, u[0]))
        tx = _lerp((-self.translate[0], self.translate[0]), u[1]) * w
        ty = _lerp((-self.translate[1], self.translate[1]), u[2]) * h
        s = _lerp(self.scale, u[3])
        sh = math.tan(math.radians(_lerp(self.shear, u[4])))
        c, si = math.cos(angle), math.sin(angle)
        # forward map in pixels: A = R · [[1, sh], [0, 1]] · s, then + (tx, ty); its 2×2 inverse in closed form
        # (plain floats: tiny torch ops here cost a thread-pool wake-up each, 10× the resampling itself)
        a00, a01, a10, a11 = c * s, (c * sh - si) * s, si * s, (si * sh + c) * s
        det = a00 * a11 - a01 * a10
        i00, i01, i10, i11 = a11 / det, -a01 / det, -a10 / det, a00 / det
        # normalized coordinates u = 2x/W (centred): x = (W/2)·u, so in normalized units M = D⁻¹ A⁻¹ D
        dx, dy = w / 2.0, h / 2.0
        m00, m01, m10, m11 = i00, i01 * dy / dx, i10 * dx / dy, i11
        ux, uy = 2 * tx / w, 2 * ty / h
        rows = [[m00, m01, -(m00 * ux + m01 * uy)], [m10, m11, -(m10 * ux + m11 * uy)]]
        return _resample(image, rows, (h, w), self.fill)


class RandomResizedCrop:
    """Crop a random region (area fraction U(scale), aspect ratio log-uniform in ``ratio``) and resize to ``size``².

    As torchvision: up to 10 draws for a region that fits, else the central crop of the largest region with an aspect
    ratio inside ``ratio``. Resized bilinearly (no antialiasing: keep ``scale`` near 1 when the output is much smaller).
    """

    def __init__(
        self,
        size: int,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        fill: float = -1.0,
    ):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        self.size = size
        self.scale = _range(scale, "scale", symmetric=False)
        self.ratio = _range(ratio, "ratio", symmetric=False)
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must be a (min, max) area fraction in (0, 1], got {scale!r}")
        if self.ratio[0] <= 0:
            raise ValueError(f"ratio must be positive, got {ratio!r}")
        self.fill = float(fill)

    def _region(self, h: int, w: int, generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        u = _uniforms(22, generator)  # 10 tries of (area, aspect), then (top, left)
        for i in range(0, 20, 2):
            target = area * _lerp(self.scale, u[i])
            aspect = math.exp(_lerp(log_ratio, u[i + 1]))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                return int(u[20] * (h - ch + 1)), int(u[21] * (w - cw + 1)), ch, cw
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            cw, ch = w, round(w / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            cw, ch = round(h * self.ratio[1]), h
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_image(image)
        _, h, w = image.shape
        top, left, ch, cw = self._region(h, w, generator)
        # the crop's centre and half-extent in normalized coordinates
        cx, cy = (left + cw / 2) / w * 2 - 1, (top + ch / 2) / h * 2 - 1
        return _resample(image, [[cw / w, 0.0, cx], [0.0, ch / h, cy]], (self.size, self.size), self.fill)


class RandomHorizontalFlip:
    """Mirror left–right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = check_in_range(p, "p", 0.0, 1.0)

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_image(image)
        return image.flip(-1) if float(torch.rand((), generator=generator)) < self.p else image


class Compose:
    """Apply ``transforms`` in order, each with the same ``generator`` (:func:`apply_transform`)."""

    def __init__(self, transforms: Sequence[Callable[[torch.Tensor], torch.Tensor]]):
        for t in transforms:
            if not callable(t):
                raise ValueError(f"every transform must be callable, got {type(t).__name__}")
        self.transforms = list(transforms)

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            image = apply_transform(t, image, generator)
        return image
