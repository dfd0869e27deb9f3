"""ONNX export (atomic, dynamic batch) checked against PyTorch with onnxruntime (a test-only dependency)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veriloss import models
from veriloss.models import SmallCNN, check_onnx, export_onnx

from .helpers import calibrate

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_onnx(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


@pytest.mark.parametrize(
    ("name", "params"), [("small-cnn", {}), ("iresnet18", {"input_size": 32, "embedding_dim": 64})]
)
def test_export_matches_pytorch_with_dynamic_batch(tmp_path, name, params):
    torch.manual_seed(0)
    model = models.create(name, **params)
    shape = (model.in_channels, model.input_size, model.input_size)
    calibrate(model, torch.randn(8, *shape)).train()
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    assert path == tmp_path / f"{name}.onnx" and path.is_file()
    assert model.training  # mode restored
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", *shape]
    assert session.get_outputs()[0].shape == ["batch", model.embedding_dim]
    model.eval()
    for b in (1, 3):
        x = torch.randn(b, *shape)
        with torch.no_grad():
            expected = model(x).numpy()
        got = run_onnx(path, x)
        assert got.shape == (b, model.embedding_dim)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    diff = check_onnx(model, path)
    assert 0.0 <= diff <= 1e-4


def test_check_onnx_detects_a_mismatch(tmp_path):
    torch.manual_seed(0)
    model = calibrate(SmallCNN(width=8), torch.randn(8, 1, 28, 28))
    path = export_onnx(model, tmp_path / "m.onnx")
    x = torch.randn(2, 1, 28, 28)
    assert check_onnx(model, path, inputs=x) <= 1e-4
    with torch.no_grad():
        model.neck.features.bias[3] += 0.5  # the PyTorch model no longer matches the exported graph
    with pytest.raises(ValueError, match=r"differs from PyTorch by 0\.5"):
        check_onnx(model, path, inputs=[x])
    assert check_onnx(model, path, inputs=x, atol=0.6) == pytest.approx(0.5, abs=1e-4)


def test_fixed_batch_export(tmp_path):
    model = SmallCNN(width=8).eval()
    path = export_onnx(model, tmp_path / "fixed.onnx", dynamic_batch=False, opset=13)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [2, 1, 28, 28]
    assert check_onnx(model, path) <= 1e-4  # uses the graph's fixed batch of 2
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):
        run_onnx(path, torch.randn(3, 1, 28, 28))


def test_failed_export_leaves_the_old_file_untouched(tmp_path):
    class Broken(SmallCNN):
        def embed(self, x):
            raise RuntimeError("boom")

    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        export_onnx(Broken(width=8), path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_export_rejects_non_backbones_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="in_channels and input_size"):
        export_onnx(torch.nn.Linear(3, 2), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="is not a file"):
        check_onnx(SmallCNN(width=8), tmp_path / "missing.onnx")


def test_dynamo_exporter(tmp_path):
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = calibrate(SmallCNN(width=8, input_size=32), torch.randn(8, 1, 32, 32))
    path = export_onnx(model, tmp_path / "d.onnx", dynamo=True)
    assert check_onnx(model, path) <= 1e-4  # batches of 1 and 3 through the symbolic batch axis
