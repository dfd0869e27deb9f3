"""Mixed precision: fp16 autocast with a GradScaler and bf16 autocast training steps stay finite (a tiny backbone and
a dense or a streaming head; by hand and through the Trainer), and ``amp: auto`` picks bf16 on a GPU that runs it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from veriloss import heads, models
from veriloss.train import Trainer
from veriloss.train.config import DEFAULTS
from veriloss.train.optimizers import build_optimizer
from veriloss.train.precision import amp_dtype, precision_name

from .conftest import DEVICES, requires_cuda

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
CLASSES, EMB, STEPS, BATCH, SIZE = 10, 16, 4, 8, 16
# a dense head, and a streaming α head (sparse W gradient, LazySGD: what the GradScaler must unscale and step)
HEADS = {"arcface": ({}, "sgd"), "qmargin-stream": ({"chunk_size": 4}, "lazy-sgd")}


class RandomImages(torch.utils.data.Dataset):
    """``n`` random 1×size×size images with labels ``i % classes``, in memory; items draw no random numbers."""

    random_items = False

    def __init__(self, n: int = 32, classes: int = CLASSES, size: int = SIZE, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 1, size, size, generator=g)
        self.labels = np.arange(n) % classes
        self.num_classes = classes

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


def _parts(head: str, device: str) -> tuple[torch.nn.Module, torch.nn.Module, str]:
    torch.manual_seed(0)
    params, optim = HEADS[head]
    model = models.create("small-cnn", width=4, embedding_dim=EMB, input_size=SIZE).to(device)
    name = "qmargin" if head == "qmargin-stream" else head
    return model, heads.create(name, EMB, CLASSES, **params).to(device), optim


def _trainer_config(device: str, amp: str, optim: str, lr: float) -> dict:
    """A few logged steps, no warm-up, no validation, nothing written but the checkpoint."""
    return {
        "device": device,
        "amp": amp,
        "batch_size": BATCH,
        "max_steps": STEPS,
        "optim": {"name": optim, "lr": lr},
        "schedule": {"warmup_steps": 0},
        "validate": {"every_epochs": 0},
        "log": {"every_steps": 1, "tensorboard": False, "progress": False},
    }


def _all_finite(*modules: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for m in modules for p in m.parameters())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", list(DTYPES))
@pytest.mark.parametrize("head_name", list(HEADS))
def test_autocast_steps_by_hand_stay_finite(head_name, precision, device):
    """forward under autocast, float32 head, ``scaler.scale(loss).backward()``, ``scaler.step``: finite losses and
    parameters, and the parameters moved (the scaler did not skip every step)."""
    model, head, optim = _parts(head_name, device)
    optimizer = build_optimizer(model, head, {**DEFAULTS["optim"], "name": optim, "lr": 0.05})
    # init_scale 2⁸ instead of 2¹⁶: the default overflows ArcFace's first gradients (s = 64) and skips steps, halving
    # the scale each time, which would need more steps than this test takes to reach a step that is applied
    scaler = torch.amp.GradScaler(device, init_scale=2.0**8, enabled=precision == "fp16")
    data = RandomImages()
    before = [p.detach().clone() for p in (*model.parameters(), *head.parameters())]
    losses = []
    for step in range(STEPS):
        rows = torch.arange(step * BATCH, (step + 1) * BATCH) % len(data)
        x, y = data.images[rows].to(device), torch.as_tensor(data.labels[rows.numpy()]).to(device)
        with torch.autocast(device, dtype=DTYPES[precision]):
            emb = model(x)
        assert emb.dtype == DTYPES[precision]
        loss = head(emb.float(), y)
        assert loss.dtype == torch.float32
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if head.sparse_gradients:
            assert head.weight.grad.is_sparse
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses)), losses
    assert _all_finite(model, head)
    after = [*model.parameters(), *head.parameters()]
    assert any(not torch.equal(a.detach(), b) for a, b in zip(after, before)), "no step was taken"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", list(DTYPES))
@pytest.mark.parametrize("head_name", list(HEADS))
def test_trainer_autocast_steps_stay_finite(head_name, precision, device, tmp_path):
    """The Trainer (its autocast step module and its GradScaler) for a few steps: every logged loss finite (it raises
    on a non-finite one), the parameters finite, the precision recorded."""
    if device == "cpu" and precision == "fp16":
        pytest.skip("the trainer's GradScaler is CUDA's: fp16 with loss scaling is a CUDA path")
    model, head, optim = _parts(head_name, device)
    config = _trainer_config(device, precision, optim, lr=0.05)
    trainer = Trainer(model, head, RandomImages(), None, tmp_path, config=config, log=lambda _m: None)
    assert trainer.amp_dtype == DTYPES[precision]
    assert trainer.scaler.is_enabled() == (precision == "fp16")
    result = trainer.fit()
    assert result["steps"] == STEPS
    losses = [row["loss"] for row in trainer.history if "loss" in row]
    assert len(losses) == STEPS and all(np.isfinite(losses)), losses
    trainer.flush()
    assert _all_finite(trainer.backbone, trainer.loss)
    assert trainer.precision == precision_name(DTYPES[precision])


def _native_bf16() -> bool:
    """What "supports bf16" means for ``amp: auto``: natively, not emulated (as the trainer asks torch)."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older torch without the keyword
        return bool(torch.cuda.is_bf16_supported())


@requires_cuda
def test_amp_auto_picks_bf16_on_a_gpu_that_supports_it(tmp_path):
    device = torch.device("cuda")
    expected = torch.bfloat16 if _native_bf16() else torch.float16
    assert amp_dtype("auto", device) == expected
    if torch.cuda.get_device_capability(device) >= (8, 0):  # Ampere and later (A100, H100, H200) run bf16
        assert expected == torch.bfloat16
    model, head, _ = _parts("arcface", "cuda")
    trainer = Trainer(model, head, RandomImages(), None, tmp_path, log=lambda _m: None,
                      config={"device": "cuda", "amp": "auto", "batch_size": BATCH, "max_steps": 1,
                              "log": {"tensorboard": False, "progress": False}})  # fmt: skip
    assert trainer.amp_dtype == expected and trainer.precision == precision_name(expected)
    assert trainer.scaler.is_enabled() == (expected == torch.float16)  # loss scaling only for fp16


@requires_cuda
@pytest.mark.timeout(300)  # inductor generates and compiles Triton kernels for the forward and the backward
def test_trainer_compile_inductor_on_cuda_trains_as_eager(tmp_path):
    """``compile: true`` (inductor: Triton kernels) on CUDA, float32: the backbone is compiled, and its weights after
    a few steps equal those of the eager run to float rounding (IEEE float32: no TF32, see conftest; small lr: the
    comparison is not chaotic)."""
    weights = {}
    for compiled in (False, True):
        model, head, optim = _parts("arcface", "cuda")
        init = {k: v.detach().double().cpu() for k, v in model.state_dict().items()}
        config = {**_trainer_config("cuda", "none", optim, lr=0.01), "compile": compiled}
        trainer = Trainer(
            model, head, RandomImages(), None, tmp_path / str(compiled), config=config, log=lambda _m: None
        )
        trainer.fit()
        assert (trainer.backbone._compiled_call_impl is not None) == compiled
        weights[compiled] = {k: v.detach().double().cpu() for k, v in trainer.backbone.state_dict().items()}
    assert weights[True].keys() == weights[False].keys() == init.keys()
    for key, eager in weights[False].items():
        torch.testing.assert_close(weights[True][key], eager, rtol=1e-3, atol=1e-4, msg=lambda m, k=key: f"{k}: {m}")
    assert any(not torch.equal(weights[False][k], init[k]) for k in init), "the eager run did not train"
