"""torch.compile of the losses. Every head and pair loss whose training step reads nothing from the device traces
into one graph (``fullgraph=True``: a host read, a data-dependent size or an untraceable call would fail it), forward
and backward (AOTAutograd), with the eager loss and gradients. The α heads and the α functions run the exact solver
eagerly between graphs (a few breaks, not one per flag it reads), with the eager results. CPU only: dynamo traces,
no code is generated (the ``eager``/``aot_eager`` backends)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch._dynamo

from veriloss import heads, pairwise
from veriloss._checks import validating
from veriloss.functional import alpha_divergence_loss, alpha_softargmax

B, D, K = 12, 8, 10

# The α family (the heads with a streaming layout) reads convergence flags on the host by design, the range loss
# groups the batch by class (torch.unique); the same split as tests/gpu/test_heads.py's sync-free steps.
ALPHA = [n for n in heads.available() if "chunk_size" in heads.describe(n)["parameters"]]
ONE_GRAPH = [("head", n) for n in heads.available() if n not in ALPHA]
ONE_GRAPH += [("pairwise", n) for n in pairwise.available() if n != "range"]


def _module(kind: str, name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "head":
        return heads.create(name, D, K)
    dims = {"embedding_dim": D, "num_classes": K}
    return pairwise.create(name, **{k: dims[k] for k in pairwise.describe(name)["required"]})


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, D, generator=g) * 2, torch.arange(B) % 4  # every label at least twice (pair losses)


def _step(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, **compile) -> tuple[torch.Tensor, ...]:
    """Loss, gradient of the embeddings and of every parameter, for a copy of ``module`` (some heads advance a
    buffer at each step), compiled with ``compile`` if given; the global RNG seeded (ElasticFace draws margins)."""
    module = copy.deepcopy(module)
    run = torch.compile(module, **compile) if compile else module
    xa = x.clone().requires_grad_(True)
    torch.manual_seed(5)
    torch._dynamo.reset()
    loss = run(xa, y)
    loss.backward()
    grads = (p.grad.to_dense() if p.grad is not None and p.grad.is_sparse else p.grad for p in module.parameters())
    return (loss.detach(), xa.grad, *grads)


def _assert_same(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> None:
    """Equal within float32 rounding (AOTAutograd may decompose a formula differently): each entry within rtol 1e-6
    or 1e-6 × max(1, the largest |entry| of that tensor)."""
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert (u is None) == (v is None)
        if u is not None:
            torch.testing.assert_close(v, u, rtol=1e-6, atol=1e-6 * max(1.0, float(u.abs().max())))


@pytest.mark.parametrize("kind,name", ONE_GRAPH, ids=[f"{k}-{n}" for k, n in ONE_GRAPH])
def test_the_training_step_compiles_into_one_graph_with_the_eager_result(kind, name):
    module, (x, y) = _module(kind, name), _batch()
    _assert_same(_step(module, x, y), _step(module, x, y, fullgraph=True, backend="aot_eager"))


@pytest.mark.parametrize("name", ALPHA)
@pytest.mark.parametrize("chunk_size", [None, 4], ids=["dense", "streaming"])
def test_alpha_heads_run_the_solver_eagerly_between_graphs_with_the_eager_result(name, chunk_size):
    head, (x, y) = heads.create(name, D, K, alpha=1.5, chunk_size=chunk_size), _batch()
    _assert_same(_step(head, x, y), _step(head, x, y, backend="aot_eager"))
    torch._dynamo.reset()
    explained = torch._dynamo.explain(head)(x, y)
    # a break in each frame around the solver's call (the head's forward, its loss, the α loss); traced into, the
    # solver broke the graph once per flag read: 11–12 times dense, 29 times streamed over 3 chunks
    assert explained.graph_break_count <= 3, [r.reason for r in explained.break_reasons]


def test_alpha_functions_compile_around_the_solver_with_the_eager_result():
    z = torch.randn(6, 9, generator=torch.Generator().manual_seed(2)) * 3
    y = torch.arange(6) % 9
    v = torch.randn(6, 9, generator=torch.Generator().manual_seed(3))
    for fn in (lambda t: (alpha_softargmax(t, 1.5) * v).sum(), lambda t: alpha_divergence_loss(t, y, 1.25)):
        results = []
        for run in (fn, torch.compile(fn, backend="aot_eager")):
            torch._dynamo.reset()
            t = z.clone().requires_grad_(True)
            out = run(t)
            out.backward()
            results.append((out.detach(), t.grad))
        _assert_same(*results)
        torch._dynamo.reset()
        assert torch._dynamo.explain(fn)(z.clone()).graph_break_count <= 3


def test_value_checks_are_skipped_in_compiled_code_only():
    def flag() -> torch.Tensor:
        return torch.tensor(1.0 if validating() else 0.0)

    torch._dynamo.reset()
    assert float(flag()) == 1.0
    assert float(torch.compile(flag, fullgraph=True, backend="eager")()) == 0.0
    head = heads.create("cosface", D, K)
    x, y = _batch()
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        head(x, y)  # eager: checked
    torch._dynamo.reset()
    assert torch.isnan(torch.compile(head, fullgraph=True, backend="eager")(x, y))  # compiled: shapes only
