"""IResNet-18/34/50/100: structure and parameter counts from the layer lists, values, gradients, input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from veriloss import models
from veriloss.models import IBasicBlock, IResNet
from veriloss.models.iresnet import feature_map_size

from .helpers import bn_eval, calibrate, check_gradients_reach_all, neck_eval

LAYERS = {
    "iresnet18": [2, 2, 2, 2],
    "iresnet34": [3, 4, 6, 3],
    "iresnet50": [3, 4, 14, 3],
    "iresnet100": [3, 13, 30, 3],
}


def iresnet_params(layers: list[int], d: int = 512, c: int = 3, m: int = 7) -> int:
    """Closed-form count. BN = 2 per channel, PReLU = 1 per channel, convs bias-free.
    stem: conv3×3(c→64) + BN(64) + PReLU(64); block(i→o): BN(i) + conv3×3(i→o) + BN(o) + PReLU(o) + conv3×3(o→o)
    + BN(o), plus conv1×1(i→o) + BN(o) in the first block of a stage; neck: BN(512) + FC(512·m² → d) + BN1d(d)."""
    total = c * 64 * 9 + 2 * 64 + 64
    i = 64
    for o, n in zip((64, 128, 256, 512), layers):
        for k in range(n):
            total += 2 * i + i * o * 9 + 2 * o + o + o * o * 9 + 2 * o
            if k == 0:
                total += i * o + 2 * o
            i = o
    return total + 2 * 512 + 512 * m * m * d + d + 2 * d


def block_reference(block: IBasicBlock, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode IBasicBlock written with torch.nn.functional in float64."""
    stride = block.conv2.stride
    z = F.conv2d(bn_eval(x, block.bn1), block.conv1.weight.double(), padding=1)
    z = F.prelu(bn_eval(z, block.bn2), block.prelu.weight.double())
    z = bn_eval(F.conv2d(z, block.conv2.weight.double(), stride=stride, padding=1), block.bn3)
    if block.downsample is None:
        return z + x
    conv, bn = block.downsample
    return z + bn_eval(F.conv2d(x, conv.weight.double(), stride=stride), bn)


def randomize_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))


@pytest.mark.parametrize("name", list(LAYERS))
def test_parameter_counts_from_layer_lists(name):
    model = models.create(name)
    assert sum(p.numel() for p in model.parameters()) == iresnet_params(LAYERS[name])
    assert model.layers == tuple(LAYERS[name])
    assert (model.in_channels, model.input_size, model.embedding_dim, model.map_size) == (3, 112, 512, 7)


def test_known_insightface_sizes():
    # insightface reports r18 24.0M, r34 34.1M, r50 43.6M, r100 65.2M parameters (512-d embedding, 112×112)
    assert iresnet_params(LAYERS["iresnet18"]) == 24_025_600
    assert iresnet_params(LAYERS["iresnet34"]) == 34_139_328
    assert iresnet_params(LAYERS["iresnet50"]) == 43_590_848
    assert iresnet_params(LAYERS["iresnet100"]) == 65_156_160
    small = IResNet([3, 4, 14, 3], in_channels=1, embedding_dim=128, input_size=64)
    assert sum(p.numel() for p in small.parameters()) == iresnet_params(LAYERS["iresnet50"], d=128, c=1, m=4)


def test_structure_follows_the_reference():
    model = IResNet([2, 3, 1, 2], input_size=32, embedding_dim=8)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.out_channels == 64
    assert isinstance(model.bn1, nn.BatchNorm2d) and isinstance(model.prelu, nn.PReLU)
    for k, (w, n) in enumerate(zip((64, 128, 256, 512), [2, 3, 1, 2]), start=1):
        stage = getattr(model, f"layer{k}")
        assert len(stage) == n
        for j, block in enumerate(stage):
            names = [name for name, _ in block.named_children()]
            assert names[:6] == ["bn1", "conv1", "bn2", "prelu", "conv2", "bn3"]
            assert block.conv1.stride == (1, 1) and block.conv2.out_channels == w
            assert block.conv2.stride == ((2, 2) if j == 0 else (1, 1))
            assert (block.downsample is not None) == (j == 0)
            if j == 0:
                conv, bn = block.downsample
                assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and bn.num_features == w
    neck = model.neck
    assert [type(m) for m in neck.children()] == [nn.BatchNorm2d, nn.Dropout, nn.Linear, nn.BatchNorm1d]
    assert neck.bn.num_features == 512 and neck.fc.in_features == 512 * 2 * 2
    assert not neck.features.weight.requires_grad and torch.equal(neck.features.weight, torch.ones(8))
    assert "layer3.0.downsample.0.weight" in model.state_dict()


@pytest.mark.parametrize("size", [16, 17, 31, 32, 40])
def test_feature_map_size_matches_the_network(size):
    model = IResNet([1, 1, 1, 1], input_size=size, embedding_dim=4).eval()
    with torch.no_grad():
        x = model.prelu(model.bn1(model.conv1(torch.randn(1, 3, size, size))))
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    assert x.shape[-2:] == (feature_map_size(size),) * 2 == (model.map_size,) * 2
    assert model(torch.randn(2, 3, size, size)).shape == (2, 4)
    assert feature_map_size(112) == 7


def test_block_and_full_forward_match_functional_reference():
    torch.manual_seed(0)
    model = IResNet([2, 1, 1, 2], input_size=24, embedding_dim=16).eval()
    randomize_bn(model)
    x = torch.randn(3, 3, 24, 24)
    z = F.prelu(
        bn_eval(F.conv2d(x.double(), model.conv1.weight.double(), padding=1), model.bn1), model.prelu.weight.double()
    )
    for k in range(1, 5):
        for block in getattr(model, f"layer{k}"):
            z = block_reference(block, z)
    expected = neck_eval(z, model.neck)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 16)
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


@pytest.mark.parametrize("name", ["iresnet18", "iresnet34"])
def test_output_shape_and_eval_determinism(name):
    torch.manual_seed(0)
    model = calibrate(models.create(name, input_size=16, embedding_dim=64), torch.randn(8, 3, 16, 16))
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        a, b = model(x), model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    assert a.shape == (3, 64) and torch.equal(a, b)
    torch.testing.assert_close(single, a, rtol=1e-4, atol=1e-4)


def test_full_size_forward_batch_one():
    torch.manual_seed(0)
    model = models.create("iresnet18").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 112, 112))
    assert out.shape == (1, 512) and torch.isfinite(out).all()


def test_untrained_deep_model_is_finite_in_eval_mode():
    # with insightface's N(0, 0.1²) conv init this overflows to NaN (running statistics still 0/1)
    torch.manual_seed(0)
    model = models.create("iresnet100", input_size=16, embedding_dim=32).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 32) and torch.isfinite(out).all()


def test_gradients_reach_every_trainable_parameter():
    torch.manual_seed(0)
    model = models.create("iresnet18", input_size=16, embedding_dim=8, dropout=0.2)
    assert model.neck.dropout.p == 0.2
    check_gradients_reach_all(model, torch.randn(4, 3, 16, 16))


def test_zero_init_residual_makes_every_block_its_shortcut():
    torch.manual_seed(0)
    model = IResNet([2, 2, 1, 1], input_size=16, embedding_dim=8, zero_init_residual=True)
    assert all(
        torch.equal(b.bn2.weight, torch.zeros_like(b.bn2.weight)) for b in model.modules() if isinstance(b, IBasicBlock)
    )
    x = torch.randn(4, 64, 16, 16)
    for mode in (True, False):
        model.train(mode)
        with torch.no_grad():
            first, second = model.layer1[0], model.layer1[1]
            torch.testing.assert_close(first(x), first.downsample(x))
            y = torch.randn(4, 64, 8, 8)
            torch.testing.assert_close(second(y), y)
    default = IResNet([1, 1, 1, 1], input_size=16)
    assert torch.equal(default.layer1[0].bn2.weight, torch.ones(64))


@pytest.mark.parametrize("shape", [(2, 1, 112, 112), (2, 3, 64, 64), (3, 112, 112), (2, 3, 112, 111)])
def test_wrong_input_shape_names_the_expected_shape(shape):
    model = IResNet([1, 1, 1, 1], embedding_dim=4)
    with pytest.raises(ValueError, match=r"IResNet expects input of shape \(batch, 3, 112, 112\)"):
        model(torch.zeros(shape))


def test_bad_parameters():
    with pytest.raises(ValueError, match="layers"):
        IResNet([2, 2, 2])
    with pytest.raises(ValueError, match="layers"):
        IResNet([2, 0, 2, 2])
    with pytest.raises(
        ValueError, match="accepted: in_channels, embedding_dim, input_size, dropout, zero_init_residual"
    ):
        models.create("iresnet50", layers=[1, 1, 1, 1])
    with pytest.raises(ValueError, match="dropout"):
        models.create("iresnet18", dropout=-0.1)
