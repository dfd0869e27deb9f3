"""Every head on CUDA in float32 against the same head in float64 on the CPU: same weights, same inputs; the loss and
the gradients w.r.t. the embeddings and every parameter (W, and a bias, a learnable scale or a Mahalanobis factor
where the head has one). The CPU case runs the same comparison in float32 on the CPU."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from veriloss import heads, pairwise
from veriloss.functional import margins
from veriloss.functional.distances import DISTANCES
from veriloss.heads import angular, unchecked

from .conftest import DEVICES, requires_cuda

B, D, K = 24, 16, 40
CHUNK = 16  # the streaming α heads read W in 3 chunks (16 + 16 + 8)

STREAMING = [n for n in heads.available() if "chunk_size" in heads.describe(n)["parameters"]]
CASES = [
    *[(name, {}) for name in heads.available()],  # default parameters
    *[(name, {"chunk_size": CHUNK}) for name in STREAMING],
    *[("harmonic", {"distance": d}) for d in DISTANCES if d != "euclidean"],  # euclidean is the default
]

# float32 against float64: the loss and every gradient entry within rtol, or within atol × max(1, the largest
# |entry| of that gradient) (the heads' logits reach s = 64 × cos θ: a float32 rounding of cos θ is ~6e-8 × 64)
RTOL, ATOL = 1e-4, 1e-5


def _case_id(case: tuple[str, dict]) -> str:
    name, params = case
    return name + "".join(f"[{k}={v}]" for k, v in params.items())


def _batch(weight: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Every class once, the rest uniform; half the samples near their prototype (targets inside the α heads'
    supports, confident margins), half random (wide supports, targets outside them)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, weight.shape[0], (B,), generator=g)
    y[: min(B, weight.shape[0])] = torch.arange(min(B, weight.shape[0]))
    x = torch.randn(B, weight.shape[1], generator=g)
    near = torch.arange(B) % 2 == 0
    x[near] = F.normalize(weight.detach()[y[near]].float(), dim=1) * 3 + 0.4 * x[near]
    return x, y


def _same_elastic_margins(monkeypatch: pytest.MonkeyPatch) -> None:
    """ElasticFace draws its per-sample margins from the global generator of the embeddings' device, and the CPU and
    CUDA generators give different numbers for the same seed. Both runs draw them here from one seeded CPU generator in
    float64 (the real :func:`elastic_margins`, ``sort`` included; the margins carry no gradient), then cast them to
    the device and dtype of the head, so only the draw itself is not run on the device."""
    original = margins.elastic_margins

    def seeded(target_cos, m, sigma, sort=False, generator=None):
        drawn = original(target_cos.detach().double().cpu(), m, sigma, sort, generator=torch.Generator().manual_seed(7))
        return drawn.to(target_cos.device, target_cos.dtype)

    monkeypatch.setattr(angular, "elastic_margins", seeded)


def _run(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss and the gradients (dense, float64, on the CPU) of the embeddings and of each parameter."""
    x = x.clone().requires_grad_(True)
    head.zero_grad(set_to_none=True)
    loss = head(x, y)
    loss.backward()
    grads = {"embeddings": x.grad}
    grads.update({n: p.grad for n, p in head.named_parameters() if p.grad is not None})
    dense = {n: (g.to_dense() if g.is_sparse else g).detach().double().cpu() for n, g in grads.items()}
    return loss.detach().double().cpu(), dense


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_float32_on_device_equals_float64_reference(case, device, monkeypatch):
    name, params = case
    torch.manual_seed(0)
    head = heads.create(name, D, K, **params)
    x, y = _batch(head.weight)
    if isinstance(head, angular._ElasticFace):
        _same_elastic_margins(monkeypatch)
    reference = copy.deepcopy(head).double()  # training mode on both: L-Softmax's λ schedule is at step 0 in each
    tested = copy.deepcopy(head).to(device)
    loss, grads = _run(tested, x.to(device), y.to(device))
    ref_loss, ref_grads = _run(reference, x.double(), y)

    assert tested.weight.device.type == device and tested.weight.dtype == torch.float32
    assert torch.isfinite(ref_loss) and ref_loss > 0
    torch.testing.assert_close(loss, ref_loss, rtol=RTOL, atol=ATOL)
    assert grads.keys() == ref_grads.keys()
    assert {"embeddings", "weight"} <= grads.keys()
    for key, ref_grad in ref_grads.items():
        scale = max(1.0, float(ref_grad.abs().max()))
        torch.testing.assert_close(grads[key], ref_grad, rtol=RTOL, atol=ATOL * scale, msg=lambda m, k=key: f"{k}: {m}")
    if "chunk_size" in params:  # the streaming layout: a sparse W gradient on the device too
        assert tested.weight.grad.is_sparse


# Losses whose training step reads nothing from the device. The α heads' exact solver reads a convergence flag per
# Newton iteration (and, streamed, a few flags per chunk of W); the range loss groups the batch by class (torch.unique:
# a size that depends on the data). Those synchronize by design and are left out.
SYNC_FREE = [("head", n) for n in heads.available() if n not in STREAMING]
SYNC_FREE += [("pairwise", n) for n in pairwise.available() if n != "range"]


@requires_cuda
@pytest.mark.parametrize("kind,name", SYNC_FREE, ids=[f"{k}-{n}" for k, n in SYNC_FREE])
def test_training_step_does_not_synchronize_with_the_host(kind, name):
    """Forward and backward under ``unchecked()`` (as the trainer runs them) with CUDA's sync debug mode set to
    raise: no host read of a device value, no copy from pageable host memory."""
    torch.manual_seed(0)
    if kind == "head":
        module = heads.create(name, D, K).cuda()
    else:
        dims = {"embedding_dim": D, "num_classes": K}
        module = pairwise.create(name, **{k: dims[k] for k in pairwise.describe(name)["required"]}).cuda()
    x = torch.randn(B, D, device="cuda")
    y = torch.arange(B, device="cuda") % (K if kind == "head" else 6)

    def step() -> None:
        xa = x.clone().requires_grad_(True)
        with unchecked():
            module(xa, y).backward()

    step()  # the first step may set up state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
