"""The registry of the non-α heads: names, alias, parameters, statistics, batch validation shared by every
head."""

from __future__ import annotations

import pytest
import torch

from veriloss.heads import aliases, available, create, describe
from veriloss.heads.angular import CosFace

NAMES = [
    "softmax",
    "l2softmax",
    "normface",
    "coco",
    "lsoftmax",
    "sphereface",
    "cosface",
    "arcface",
    "combined",
    "elasticface-arc",
    "elasticface-cos",
    "elasticface-arc+",
    "elasticface-cos+",
    "sface",
    "harmonic",
]


def test_available_lists_every_head():
    assert set(NAMES) <= set(available())
    assert available() == sorted(available())


def test_amsoftmax_alias():
    assert aliases()["amsoftmax"] == "cosface"
    head = create("AMSoftmax", 8, 4, m=0.4)
    assert type(head) is CosFace and head.m == 0.4
    assert "amsoftmax" in describe("cosface")["aliases"]


@pytest.mark.parametrize("name", NAMES)
def test_describe_has_reference_and_summary(name):
    info = describe(name)
    assert info["reference"] and info["summary"]
    assert "embedding_dim" not in info["parameters"]


def _constructed(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """4 classes on the axes of R^4; 8 samples near prototypes, 6 of them labelled with their nearest one."""
    head = create(name, 4, 4)
    with torch.no_grad():
        head.weight.copy_(torch.eye(4))
    nearest = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    x = torch.eye(4)[nearest] * 2.0 + 0.05 * torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    y = nearest.clone()
    y[2], y[5] = 3, 0  # two wrong
    return head, x, y


@pytest.mark.parametrize("name", NAMES)
def test_accuracy_statistic(name):
    head, x, y = _constructed(name)
    head(x, y)
    assert head.statistics()["accuracy"] == pytest.approx(0.75)
    pred = head.logits(x).argmax(dim=1)
    assert torch.equal(pred, torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]))


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("elasticface")])
def test_loss_is_a_batch_mean(name, batch):
    x, y = batch(b=10, d=6, k=5, seed=7)
    head = create(name, 6, 5).eval()  # eval: λ of l-softmax does not advance
    whole = head(x, y)
    parts = (head(x[:4], y[:4]) * 4 + head(x[4:], y[4:]) * 6) / 10
    torch.testing.assert_close(whole, parts, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_float32_under_autocast_and_finite_for_zero_embedding(name, batch):
    x, y = batch(b=6, d=8, k=4, seed=8)
    head = create(name, 8, 4)
    torch.manual_seed(0)
    plain = head(x, y)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        torch.manual_seed(0)
        auto = head(x.bfloat16(), y)
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, plain, rtol=2e-2, atol=2e-2)  # only the input was rounded to bf16
    x0 = x.clone()
    x0[0] = 0.0
    x0.requires_grad_(True)
    loss = head(x0, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x0.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)


_BAD_BATCHES = [
    (lambda x, y: (x[0], y), "embeddings must have shape"),
    (lambda x, y: (x[:, :5], y), "features per row"),
    (lambda x, y: (x, y[:, None]), "labels must be 1-D"),
    (lambda x, y: (x, y[:-1]), "entries but the batch has"),
    (lambda x, y: (x, y.float()), "integer tensor"),
    (lambda x, y: (x, torch.full_like(y, 4)), "< num_classes"),
    (lambda x, y: (x, torch.full_like(y, -1)), "non-negative"),
    (lambda x, y: (x.masked_fill(torch.eye(6, 8, dtype=torch.bool), float("nan")), y), "non-finite"),
    (lambda x, y: (x.long(), y), "floating-point"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", range(len(_BAD_BATCHES)))
def test_bad_batches(name, bad, batch):
    x, y = batch(b=6, d=8, k=4, seed=9)
    head = create(name, 8, 4)
    make, match = _BAD_BATCHES[bad]
    with pytest.raises(ValueError, match=match):
        head(*make(x, y))


def test_unknown_name_and_parameter():
    with pytest.raises(ValueError, match="unknown head"):
        create("arcfaces", 4, 3)
    with pytest.raises(ValueError, match=r"unknown parameter.*margin"):
        create("cosface", 4, 3, margin=0.3)
    with pytest.raises(ValueError, match="num_classes"):
        create("arcface", 4, 1)


# elasticface draws new margins at every call; sface's gradient is not the derivative of its value (the sigmoid
# weights are held constant by design, tested in test_sface.py)
@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("elasticface") and n != "sface"])
def test_float64_path_and_gradcheck(name, batch):
    """float64 embeddings keep the head in float64 (reference checks); autograd agrees with finite differences."""
    x, y = batch(b=5, d=4, k=3, seed=10)
    head = create(name, 4, 3).double().eval()
    x64 = x.double().requires_grad_(True)
    assert head(x64, y).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda v: head(v, y), (x64,), eps=1e-6, atol=1e-5, rtol=1e-4)
