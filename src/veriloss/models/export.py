"""ONNX export of a backbone and a numerical check of the exported graph against PyTorch with onnxruntime."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._checks import check_positive
from .base import positive_int

__all__ = ["check_onnx", "check_opset", "export_onnx"]

INPUT_NAME = "input"
OUTPUT_NAME = "embedding"


def _input_shape(model: nn.Module) -> tuple[int, int, int]:
    try:
        c, s = int(model.in_channels), int(model.input_size)
    except (AttributeError, TypeError, ValueError):
        raise ValueError(
            f"model must define in_channels and input_size (a veriloss backbone), got {type(model).__name__}"
        ) from None
    return (c, s, s)


def _example(model: nn.Module, batch: int, seed: int = 0) -> torch.Tensor:
    """A seeded N(0, 1) batch of the model's input shape, on the model's device and in its float dtype."""
    p = next(iter(model.parameters()), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *_input_shape(model), generator=g).to(device=device, dtype=dtype)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def export_onnx(
    model: nn.Module, path: str | os.PathLike, opset: int = 17, dynamic_batch: bool = True, *, dynamo: bool = False
) -> Path:
    """Export ``model`` (in eval mode) to an ONNX file at ``path`` and return the path.

    The graph has one input ``input`` (batch × in_channels × input_size × input_size, float32) and one output
    ``embedding`` (batch × embedding_dim); with ``dynamic_batch`` the batch axis is symbolic (``batch``). The file is
    written to a temporary file in the same folder and renamed, so ``path`` is either complete or untouched; the
    model's train/eval mode is restored afterwards.

    Exporter: by default the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``). In torch 2.13 it
    is deprecated but works, is fast, writes one self-contained file and needs only ``onnx`` besides torch (its
    deprecation warnings are silenced here). ``dynamo=True`` uses the torch.export-based exporter, which also needs
    ``onnxscript``; it implements opset ≥ 18 and down-converts to ``opset`` when asked for less.
    """
    _input_shape(model)
    opset = check_opset(opset, dynamo)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _eval_mode(model), torch.no_grad():
            example = _example(model, 2)
            if dynamo:
                _export_dynamo(model, example, tmp, opset, dynamic_batch)
            else:
                _export_torchscript(model, example, tmp, opset, dynamic_batch)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions of an ordinary one
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_opset(opset: object, dynamo: bool) -> int:
    """The opsets the chosen exporter writes (torch's own bounds), checked before any work is done."""
    from torch.onnx import _constants

    low = getattr(_constants, "ONNX_MIN_OPSET", 7)
    high = getattr(_constants, "ONNX_MAX_OPSET" if dynamo else "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 17)
    opset = positive_int(opset, "opset", low)
    if opset > high:
        exporter = "torch.export-based (dynamo=True)" if dynamo else "TorchScript-based"
        raise ValueError(f"opset must be in [{low}, {high}] for torch's {exporter} exporter, got {opset}")
    return opset


def _export_torchscript(model: nn.Module, example: torch.Tensor, out: Path, opset: int, dynamic_batch: bool) -> None:
    try:
        import onnx  # noqa: F401  (the TorchScript exporter serializes through it)
    except ImportError:
        raise ImportError("export_onnx needs onnx: pip install onnx (or veriloss[onnx])") from None
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*feature will be removed.*")
        torch.onnx.export(
            model,
            (example,),
            str(out),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            do_constant_folding=True,
        )


def _export_dynamo(model: nn.Module, example: torch.Tensor, out: Path, opset: int, dynamic_batch: bool) -> None:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise ImportError("export_onnx(dynamo=True) needs onnxscript: pip install onnxscript") from None
    shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    torch.onnx.export(
        model,
        (example,),
        str(out),
        dynamo=True,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=shapes,
        external_data=False,
        verbose=False,
    )


def check_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
    atol: float = 1e-4,
) -> float:
    """Run ``inputs`` through the ONNX file (onnxruntime, CPU) and through ``model`` (eval mode); return
    ``max |onnx − torch|`` over all outputs, and raise a ``ValueError`` when it exceeds ``atol`` (or is not finite).

    Without ``inputs``: seeded N(0, 1) batches of the model's input shape, of sizes 1 and 3 when the graph's batch
    axis is symbolic (which also checks the dynamic batch), else of the graph's fixed batch size.
    Needs ``onnxruntime`` (``pip install onnxruntime``).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("check_onnx needs onnxruntime: pip install onnxruntime") from None
    atol = check_positive(atol, "atol", strict=False)
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file; export the model first")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph_input = session.get_inputs()[0]
    if inputs is None:
        batch = graph_input.shape[0]
        sizes = [batch] if isinstance(batch, int) else [1, 3]
        inputs = [_example(model, b, seed=i + 1) for i, b in enumerate(sizes)]
    elif isinstance(inputs, torch.Tensor):
        inputs = [inputs]
    if len(inputs) == 0:
        raise ValueError("inputs is empty; pass at least one batch (or None for random batches)")
    worst = 0.0
    with _eval_mode(model), torch.no_grad():
        for x in inputs:
            expected = model(x).float().cpu().numpy()
            got = session.run(None, {graph_input.name: x.detach().float().cpu().numpy()})[0]
            if got.shape != expected.shape:
                raise ValueError(f"ONNX output has shape {got.shape}, PyTorch {expected.shape}")
            diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
            worst = max(worst, float(diff.max()) if np.isfinite(diff).all() else float("inf"))
    if not worst <= atol:
        raise ValueError(f"ONNX model {str(path)!r} differs from PyTorch by {worst:.3g} > atol={atol:g}")
    return worst
