"""Where and in what precision training runs: the device policy (``device``) and mixed precision (``amp``)."""

from __future__ import annotations

import torch

__all__ = ["amp_dtype", "precision_name", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; CUDA must be available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device: cuda was asked for but no CUDA device is available")
    return torch.device(name)


def _cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX-512/AMX); on AVX2-only CPUs bf16 is emulated and ≈ 8× slower than
    float32 (measured: small CNN, batch 256, one thread, 4.6 s vs 0.59 s per step)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cuda_has_bf16(device: torch.device) -> bool:
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # pragma: no cover - older torch without the keyword
        return bool(torch.cuda.is_bf16_supported())


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the backbone: ``none`` → None (float32), ``bf16``, ``fp16``, or ``auto``: bf16 where
    the hardware runs it natively (Ampere and later GPUs; CPUs with AVX-512-BF16/AMX), else fp16 on a GPU (with a
    gradient scaler) and float32 on a CPU."""
    table = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if amp == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if _cuda_has_bf16(device) else torch.float16
        return torch.bfloat16 if _cpu_has_fast_bf16() else None
    if amp not in table:
        raise ValueError(f"amp must be auto, bf16, fp16 or none, got {amp!r}")
    return table[amp]


def precision_name(dtype: torch.dtype | None) -> str:
    """``float32`` or ``bfloat16 autocast`` / ``float16 autocast``: what a run logs and records."""
    return "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"
