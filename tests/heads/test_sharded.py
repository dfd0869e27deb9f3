"""Sharded α heads (sharded=True) against the dense heads in one process: 2 and 3 gloo processes, float64,
several K (not divisible by the world size, fewer and more than 32 classes per rank, supports far past the 32
candidates), margins and Q-Margin's non-uniform q, α ∈ {1.25, 1.5, 2}, unequal batches per rank; checkpoint state
gathering and cutting; gradcheck; bad input."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from tests.processes import run_processes
from veriloss import heads
from veriloss.heads import full_state_dicts, local_state_dicts, shard_range

_PARAMS = {"alpha": {}, "qmargin": {"m": 1.0}, "a3m": {"m": 0.3}, "a3m-i": {"m": 0.2, "overflow": "clamp"}}

# (name, K, α, s, params, chunk_size); K = 3 puts one class on some ranks; K = 7 gives ranks of 4/3 or 3/2/2
# classes (below the 32 candidates), K = 101 gives 51/50 or 34/34/33 (above them); K = 3000 at α = 1.25, s = 3
# gives supports of hundreds of classes.
CASES = [(name, k, a, 4.0, _PARAMS[name], None) for name in _PARAMS for k in (7, 101) for a in (1.25, 1.5, 2.0)] + [
    ("qmargin", 3000, 1.25, 3.0, {"kappa": 0.3}, None),
    ("a3m", 3000, 1.25, 3.0, {"m": 0.2}, 257),
    ("a3m", 101, 1.5, 4.0, {"m": 0.3}, 16),
    ("qmargin", 3, 2.0, 4.0, {"m": 1.0}, None),  # 2/1 or 1/1/1 classes per rank
]


def _data(k: int, b: int, d: int = 8, seed: int = 0):
    """Half the samples near their prototype (target in the support), half random (wide supports, p_y = 0)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(k, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (b,), generator=g)
    x = torch.randn(b, d, generator=g, dtype=torch.float64)
    near = torch.arange(b) % 2 == 0
    x[near] = F.normalize(w[y[near]], dim=1) * 3 + 0.4 * x[near]
    return x, y, w


def _run(head, x, y):
    xa = x.clone().requires_grad_(True)
    head.zero_grad()
    loss = head(xa, y)
    loss.backward()
    grad = head.weight.grad
    return loss.detach(), xa.grad, grad.to_dense() if grad.is_sparse else grad


def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float, what: str) -> None:
    """``torch.allclose`` with a message (assert_close is not used in the workers: its first call imports
    torch.distributed.tensor, seconds per process)."""
    if actual.shape != expected.shape or not torch.allclose(actual, expected, rtol=rtol, atol=atol):
        err = (actual - expected).abs().max() if actual.shape == expected.shape else "shape"
        raise AssertionError(f"{what}: {tuple(actual.shape)} vs {tuple(expected.shape)}, max error {err}")


def _pair(name, k, alpha, s, params, chunk, w):
    dense = heads.create(name, w.shape[1], k, alpha=alpha, s=s, **params).double()
    shard = heads.create(name, w.shape[1], k, alpha=alpha, s=s, chunk_size=chunk, sharded=True, **params).double()
    dense.weight.data.copy_(w)
    shard.weight.data.copy_(w[shard.shard.start : shard.shard.end])
    return dense, shard


def _check_case(rank: int, world: int, name, k, alpha, s, params, chunk) -> None:
    counts = [3 + 2 * r for r in range(world)]  # unequal batches: 3, 5, 7 rows
    x, y, w = _data(k, sum(counts), seed=k)
    dense, shard = _pair(name, k, alpha, s, params, chunk, w)
    a, b = shard_range(k, world, rank)
    assert (shard.shard.start, shard.shard.end) == (a, b) and shard.weight.shape == (b - a, 8)
    mine = slice(sum(counts[:rank]), sum(counts[: rank + 1]))
    l_d, gx_d, gw_d = _run(dense, x, y)
    l_s, gx_s, gw_s = _run(shard, x[mine], y[mine])
    case = f"{name} K={k} α={alpha} chunk={chunk} rank {rank}/{world}"
    _close(l_s, l_d, 1e-12, 1e-12, f"loss, {case}")
    # the DDP convention: world size × ∂L/∂x of the rank's rows
    _close(gx_s, world * gx_d[mine], 1e-10, 1e-12, f"x.grad, {case}")
    _close(gw_s, gw_d[a:b], 1e-10, 1e-12, f"W.grad, {case}")
    assert (shard.weight.grad.is_sparse) == (chunk is not None), case
    assert shard.statistics() == dense.statistics(), (case, shard.statistics(), dense.statistics())
    if k == 3000:
        assert shard.statistics()["support_size"] > 100, case  # far past every rank's 32 candidates: pass 2


def _check_state_dicts(rank: int, world: int) -> None:
    """One SGD step with momentum: gathered state = the dense head's; cut state = this rank's slices."""
    k, d = 11, 8
    x, y, w = _data(k, 6, d)
    dense, shard = _pair("qmargin", k, 1.5, 4.0, {"m": 1.0}, None, w)
    a, b = shard.shard.start, shard.shard.end
    opt_d = torch.optim.SGD(dense.parameters(), lr=0.5, momentum=0.9)
    opt_s = torch.optim.SGD(shard.parameters(), lr=0.5, momentum=0.9)
    _run(dense, x, y)
    _run(shard, x[rank::world], y[rank::world])
    shard.weight.grad.copy_(dense.weight.grad[a:b])  # the global batch's gradient (the batches differ here)
    opt_d.step()
    opt_s.step()
    m_state, o_state = full_state_dicts(shard, opt_s)
    if rank == 0:
        _close(m_state["weight"], dense.weight.detach(), 1e-14, 1e-14, "gathered W")
        buf = o_state["state"][0]["momentum_buffer"]
        _close(buf, opt_d.state[dense.weight]["momentum_buffer"], 1e-14, 1e-14, "gathered momentum")
    else:
        assert m_state["weight"].shape == (b - a, d)
    assert opt_s.state[shard.weight]["momentum_buffer"].shape == (b - a, d)  # the live state is untouched
    local_m, local_o = local_state_dicts(shard, opt_s, dense.state_dict(), opt_d.state_dict())
    assert torch.equal(local_m["weight"], dense.weight.detach()[a:b])
    assert torch.equal(local_o["state"][0]["momentum_buffer"], opt_d.state[dense.weight]["momentum_buffer"][a:b])
    shard.load_state_dict(local_m)
    opt_s.load_state_dict(local_o)
    try:
        local_state_dicts(shard, opt_s, {"weight": torch.zeros(k + 1, d)}, None)
        raise AssertionError("a state with the wrong K was accepted")
    except ValueError as err:
        assert "all 11 prototypes" in str(err)


def _check_reinit_and_errors(rank: int, world: int) -> None:
    k, d = 10, 4
    head = heads.create("a3m-i", d, k, alpha=1.5, sharded=True)
    a, b = head.shard.start, head.shard.end
    means = torch.randn(k, d, generator=torch.Generator().manual_seed(1))
    means[3] = 0.0  # no samples: kept
    kept = head.weight.detach()[3 - a].clone() if a <= 3 < b else None
    assert head.reinitialize_prototypes(means) == k - 1  # counted over all ranks
    expect = F.normalize(means, dim=1)[a:b]
    for j in range(b - a):
        want = kept if a + j == 3 else expect[j]
        _close(head.weight.detach()[j], want, 1e-6, 1e-7, f"re-initialized prototype {a + j}")
    bad_calls = [lambda: head.reinitialize_prototypes(means[:-1])]
    if world > 2:  # K = 2 < world (K = 1 is rejected by every head)
        bad_calls.append(lambda: heads.create("alpha", 4, 2, sharded=True))
    for bad in bad_calls:
        try:
            bad()
            raise AssertionError("accepted")
        except ValueError as err:
            assert "at least one class per process" in str(err) or "all K classes" in str(err), str(err)


def _worker(rank: int, world: int) -> None:
    early = heads.create("alpha", 4, 10, sharded=True)  # built before the process group: one process
    dist.init_process_group("gloo")  # rank, world size and address from the environment run_processes sets
    for case in CASES:
        _check_case(rank, world, *case)
    _check_state_dicts(rank, world)
    _check_reinit_and_errors(rank, world)
    try:
        early(torch.randn(2, 4), torch.tensor([0, 1]))
        raise AssertionError("a head built for one process ran under a process group")
    except ValueError as err:
        assert "after init_process_group" in str(err)
    dist.barrier()


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_equals_dense_over_gloo_processes(world):
    run_processes(_worker, world)


# ---- one process (no process group): the sharded head is the dense head ---------------------------------------
@pytest.mark.parametrize("name", list(_PARAMS))
def test_single_process_equals_dense_and_same_initialization(name):
    torch.manual_seed(5)
    dense = heads.create(name, 8, 40, alpha=1.5, **_PARAMS[name])
    after_dense = torch.rand(1)
    torch.manual_seed(5)
    shard = heads.create(name, 8, 40, alpha=1.5, sharded=True, **_PARAMS[name])
    assert torch.equal(torch.rand(1), after_dense)  # the same RNG consumption: training runs stay comparable
    assert torch.equal(dense.weight, shard.weight) and (shard.shard.start, shard.shard.end) == (0, 40)
    assert shard.sharded and not dense.sharded
    assert isinstance(shard, type(dense)) and "sharded" in repr(shard)
    x, y, w = _data(40, 10)
    dense, shard = _pair(name, 40, 1.25, 4.0, _PARAMS[name], None, w)
    l_d, gx_d, gw_d = _run(dense, x, y)
    l_s, gx_s, gw_s = _run(shard, x, y)
    torch.testing.assert_close(l_s, l_d, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx_s, gx_d, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gw_s, gw_d, rtol=1e-10, atol=1e-12)
    assert shard.statistics() == dense.statistics()


@pytest.mark.parametrize("name", ["qmargin", "a3m"])
def test_gradcheck(name):
    x, y, w = _data(40, 5, d=4, seed=1)
    head = heads.create(name, 4, 40, alpha=1.5, s=4.0, sharded=True, **_PARAMS[name]).double()

    def f(xx, ww):
        return torch.func.functional_call(head, {"weight": ww}, (xx, y))

    assert torch.autograd.gradcheck(f, (x.clone().requires_grad_(True), w.clone().requires_grad_(True)))


@pytest.mark.parametrize("k", [2, 7, 101, 1000])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shard_range_is_a_balanced_contiguous_partition(k, world):
    if world > k:
        with pytest.raises(ValueError, match="at least one class per process"):
            shard_range(k, world, 0)
        return
    ranges = [shard_range(k, world, r) for r in range(world)]
    assert ranges[0][0] == 0 and ranges[-1][1] == k
    assert all(ranges[r][1] == ranges[r + 1][0] for r in range(world - 1))
    sizes = [b - a for a, b in ranges]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] - sizes[-1] <= 1 and sum(sizes) == k


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="only the α heads"):
        heads.create("arcface", 4, 10, sharded=True)
    with pytest.raises(ValueError, match="unknown head"):
        heads.create("nosuchhead", 4, 10, sharded=True)
    with pytest.raises(ValueError, match=r"unknown parameter.*accepted: .*alpha"):
        heads.create("qmargin", 4, 10, q=3, sharded=True)
    with pytest.raises(ValueError, match="alpha > 1"):
        heads.create("alpha", 4, 10, alpha=1.0, sharded=True)
    with pytest.raises(ValueError, match="sharded must be true or false"):
        heads.create("alpha", 4, 10, sharded=2)
    with pytest.raises(ValueError, match="rank must be"):
        shard_range(10, 2, 2)
    with pytest.raises(ValueError, match="world_size"):
        shard_range(10, 0, 0)
    head = heads.create("a3m-i", 4, 10, sharded=True)
    with pytest.raises(ValueError, match="all K classes"):
        head.reinitialize_prototypes(torch.zeros(9, 4))
    with pytest.raises(ValueError, match="labels must be < num_classes"):
        head(torch.randn(2, 4), torch.tensor([0, 10]))
