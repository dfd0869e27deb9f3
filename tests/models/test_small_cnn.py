"""SmallCNN, the shared embedding neck and the model registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from veriloss import models
from veriloss.models import EmbeddingNeck, SmallCNN

from .helpers import bn_eval, calibrate, check_gradients_reach_all, neck_eval


def small_cnn_params(c: int, s: int, w: int, d: int) -> int:
    """Parameter count from the layer list: 4 bias-free 3×3 convs + 4 BN2d, neck BN2d(w), FC(w·m² → d), BN1d(d)."""
    m = min(s // 8, 4)
    convs = c * w * 9 + 3 * w * w * 9
    return convs + 4 * 2 * w + 2 * w + (w * m * m) * d + d + 2 * d


def reference_forward(model: SmallCNN, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode forward written with torch.nn.functional in float64 from the model's tensors."""
    convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.body if isinstance(m, nn.BatchNorm2d)]
    z = x.double()
    for k, (conv, bn) in enumerate(zip(convs, bns)):
        z = F.relu(bn_eval(F.conv2d(z, conv.weight.double(), padding=1), bn))
        if k < 3:
            z = F.max_pool2d(z, 2)
    if z.shape[-1] > 4:
        z = F.adaptive_avg_pool2d(z, 4)
    return neck_eval(z, model.neck)


def test_registry_names_and_errors():
    assert models.available() == [
        "ecapa-tdnn", "iresnet100", "iresnet18", "iresnet34", "iresnet50", "resnet34-speaker", "small-cnn"
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"available: ecapa-tdnn, iresnet100.*small-cnn"):
        models.create("resnet9000")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) depth.*accepted: in_channels, embedding_dim, width"):
        models.create("small-cnn", depth=3)
    assert isinstance(models.create("small-cnn", width=8), SmallCNN)
    assert models.describe("small-cnn")["parameters"]["input_size"] == 28


def test_parameter_count_at_28px_matches_the_baseline_recipe():
    model = models.create("small-cnn")
    n = sum(p.numel() for p in model.parameters())
    assert n == small_cnn_params(1, 28, 64, 128) == 185_920  # 185,792 of the Omniglot recipe + the neck's BN2d(64)
    assert model.neck.fc.in_features == 576
    assert (model.in_channels, model.input_size, model.embedding_dim) == (1, 28, 128)


@pytest.mark.parametrize(
    ("c", "s", "w", "d", "m"), [(1, 28, 64, 128, 3), (3, 32, 16, 64, 4), (1, 40, 8, 32, 4), (3, 64, 32, 256, 4)]
)
def test_shapes_counts_and_values_across_sizes(c, s, w, d, m):
    torch.manual_seed(0)
    model = SmallCNN(in_channels=c, embedding_dim=d, width=w, input_size=s)
    assert model.map_size == m and model.neck.fc.in_features == w * m * m
    assert sum(p.numel() for p in model.parameters()) == small_cnn_params(c, s, w, d)
    x = torch.randn(6, c, s, s)
    calibrate(model, x)
    out = model(x)
    assert out.shape == (6, d) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), reference_forward(model, x), rtol=1e-4, atol=1e-4)


def test_eval_mode_is_deterministic_and_batch_independent():
    torch.manual_seed(0)
    model = calibrate(SmallCNN(width=16), torch.randn(8, 1, 28, 28))
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        a, b = model(x), model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(5)])
    assert torch.equal(a, b)
    torch.testing.assert_close(single, a, rtol=1e-5, atol=1e-5)


def test_gradients_reach_every_trainable_parameter():
    torch.manual_seed(0)
    model = SmallCNN(in_channels=3, width=8, input_size=48, embedding_dim=16, dropout=0.1)
    check_gradients_reach_all(model, torch.randn(4, 3, 48, 48))
    assert not model.neck.features.weight.requires_grad


def test_neck_structure_and_train_mode_formula():
    neck = EmbeddingNeck((4, 3, 3), 5, dropout=0.25)
    assert [type(m) for m in neck.children()] == [nn.BatchNorm2d, nn.Dropout, nn.Linear, nn.BatchNorm1d]
    assert neck.dropout.p == 0.25 and neck.fc.in_features == 36 and neck.fc.out_features == 5
    assert torch.equal(neck.features.weight, torch.ones(5)) and not neck.features.weight.requires_grad
    assert neck.features.bias.requires_grad
    # train mode without dropout: batch statistics, written out in float64
    neck = EmbeddingNeck((4, 3, 3), 5)
    with torch.no_grad():
        neck.bn.weight.uniform_(0.5, 1.5)
        neck.bn.bias.normal_()
        neck.features.bias.normal_()
    x = torch.randn(7, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    xd = x.double()
    mu, var = xd.mean(dim=(0, 2, 3), keepdim=True), xd.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    z = (xd - mu) / torch.sqrt(var + 1e-5) * neck.bn.weight.double().view(1, -1, 1, 1)
    z = z + neck.bn.bias.double().view(1, -1, 1, 1)
    z = F.linear(z.flatten(1), neck.fc.weight.double(), neck.fc.bias.double())
    z = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5) + neck.features.bias.double()
    torch.testing.assert_close(neck.train()(x).double(), z, rtol=1e-4, atol=1e-4)


def test_neck_flat_input_and_trainable_scale():
    neck = EmbeddingNeck(10, 3, fixed_scale=False)
    assert isinstance(neck.bn, nn.BatchNorm1d) and neck.features.weight.requires_grad
    assert neck(torch.randn(4, 10)).shape == (4, 3)
    with pytest.raises(ValueError, match="dropout must be < 1"):
        EmbeddingNeck(10, 3, dropout=1.0)
    with pytest.raises(ValueError, match="in_features"):
        EmbeddingNeck((4, 3), 3)


def test_dropout_is_active_in_train_mode_only():
    torch.manual_seed(0)
    neck = EmbeddingNeck(50, 4, dropout=0.5)
    x = torch.randn(8, 50)
    neck.train()
    a, b = neck(x), neck(x)
    assert not torch.allclose(a, b)
    neck.eval()
    assert torch.equal(neck(x), neck(x))


@pytest.mark.parametrize(
    "shape", [(2, 3, 28, 28), (2, 1, 32, 32), (2, 1, 28, 30), (1, 28, 28), (0, 1, 28, 28), (2, 1, 28, 28, 1)]
)
def test_wrong_input_shape_names_the_expected_shape(shape):
    model = SmallCNN(width=8)
    with pytest.raises(ValueError, match=r"SmallCNN expects input of shape \(batch, 1, 28, 28\)"):
        model(torch.zeros(shape))


def test_bad_input_type_and_parameters():
    model = SmallCNN(width=8)
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"torch\.Tensor"):
        model([[0.0]])
    with pytest.raises(ValueError, match="input_size must be an integer ≥ 8"):
        SmallCNN(input_size=7)
    for kw in ({"width": 0}, {"embedding_dim": 2.5}, {"in_channels": True}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            SmallCNN(**kw)
