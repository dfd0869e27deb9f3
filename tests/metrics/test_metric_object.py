"""VerificationMetric: equal to the functional metrics and to all_pairs, batch-invariant, resettable, strict about
its inputs, and synchronized over gloo processes (variable sizes, an empty process, errors raised everywhere)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributed as dist

from tests.processes import run_processes
from veriloss.metrics import VerificationMetric, auc, eer, min_dcf, tar_at_far
from veriloss.protocols import all_pairs

FARS = (1e-2, 1e-3)
PS = (0.01, 0.05)


def _pairs(n: int, seed: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores with ties (rounded to 1/64) and 0/1 labels, about one genuine pair in five."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.2).long()
    s = torch.randn(n, generator=g, dtype=torch.float64) + 1.5 * y
    return (torch.round(s * 64) / 64).to(dtype), y


def _samples(n: int, seed: int, ids: int = 30, d: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(ids, d, generator=torch.Generator().manual_seed(123))
    y = torch.randint(0, ids, (n,), generator=g)
    return centers[y] + 0.8 * torch.randn(n, d, generator=g), y


def _tar(t) -> float:
    return math.nan if t.tar is None else t.tar


def same(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal keys (in order) and equal values, NaN (a TAR@FAR that is not measurable) equal to NaN."""
    pairs = zip(a.values(), b.values())
    return list(a) == list(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in pairs)


def _functional(scores: torch.Tensor, labels: torch.Tensor, prefix: str = "") -> dict[str, float]:
    g, imp = scores[labels == 1], scores[labels == 0]
    out = {f"{prefix}tar@far={f:g}": _tar(t) for f, t in zip(FARS, tar_at_far(g, imp, list(FARS)))}
    out[f"{prefix}eer"] = eer(g, imp).eer
    out.update({f"{prefix}min_dcf@p={p:g}": min_dcf(g, imp, p).min_dcf for p in PS})
    out[f"{prefix}auc"] = auc(g, imp)
    return out


def _protocol(x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    r = all_pairs(x, y, far=FARS, p_targets=PS)
    out = {f"tar@far={t.far_target:g}": _tar(t) for t in r.tar}
    out["eer"] = r.eer.eer
    out.update({f"min_dcf@p={m.p_target:g}": m.min_dcf for m in r.min_dcf})
    out["auc"] = r.auc
    return out


# ---------------------------------------------------------------------------------------------- one process
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scores_equal_the_functional_metrics(dtype):
    s, y = _pairs(5000, 1, dtype)
    metric = VerificationMetric(far=FARS, p_target=PS)
    metric.update(s, y)
    got = metric.compute()
    assert same(got, _functional(s, y))
    assert list(got) == ["tar@far=0.01", "tar@far=0.001", "eer", "min_dcf@p=0.01", "min_dcf@p=0.05", "auc"]
    assert all(type(v) is float for v in got.values())
    assert 0.5 < got["auc"] < 1 and 0 < got["eer"] < 0.5  # real, non-trivial values


def test_embeddings_equal_all_pairs():
    x, y = _samples(300, 2)
    metric = VerificationMetric(far=FARS, p_target=PS)
    metric.update(embeddings=x, identities=y)
    got = metric.compute()
    assert same(got, _protocol(x, y))
    assert 0 < got["eer"] < 0.5


def test_several_updates_equal_one_update_with_everything():
    s, y = _pairs(3000, 3)
    one, many = VerificationMetric(far=FARS, p_target=PS), VerificationMetric(far=FARS, p_target=PS)
    one.update(s, y)
    for a, b in [(0, 1000), (1000, 1000), (1000, 2999), (2999, 3000)]:  # an empty batch included
        many.update(s[a:b], y[a:b])
    assert many.num_samples == 3000 and same(many.compute(), one.compute())

    x, ids = _samples(240, 4)
    one, many = VerificationMetric(far=FARS, p_target=PS), VerificationMetric(far=FARS, p_target=PS)
    one.update(embeddings=x, identities=ids)
    for a in range(0, 240, 64):  # pairs across batches count: the union is scored all-pairs
        many.update(embeddings=x[a : a + 64], identities=ids[a : a + 64])
    assert same(many.compute(), one.compute()) and same(one.compute(), _protocol(x, ids))


def test_bool_labels_numpy_inputs_half_scores_and_prefix():
    s, y = _pairs(2000, 5)
    ref = _functional(s, y, prefix="val/")
    metric = VerificationMetric(far=FARS, p_target=PS, prefix="val/")
    metric.update(s.numpy(), y.bool().numpy())
    assert same(metric.compute(), ref)
    half = VerificationMetric(far=FARS, p_target=PS)
    half.update(s.half(), y)  # 1/64 steps are exact in float16
    assert same(half.compute(), _functional(s, y))
    assert half.compute()["eer"] == ref["val/eer"]


def test_unmeasurable_tar_is_nan_and_scalar_parameters():
    s, y = _pairs(200, 6)  # about 160 impostors: FAR 1e-3 is not measurable
    metric = VerificationMetric(far=1e-3, p_target=0.05, c_miss=10.0, c_fa=1.0)
    metric.update(s, y)
    got = metric.compute()
    assert math.isnan(got["tar@far=0.001"])
    g, imp = s[y == 1], s[y == 0]
    assert got["min_dcf@p=0.05"] == min_dcf(g, imp, 0.05, 10.0, 1.0).min_dcf
    assert got["min_dcf@p=0.05"] != min_dcf(g, imp, 0.05).min_dcf


def test_reset_forgets_everything_and_frees_the_mode():
    s, y = _pairs(1000, 7)
    metric = VerificationMetric(far=FARS, p_target=PS)
    metric.update(*_pairs(500, 8))
    metric.reset()
    assert metric.mode is None and metric.num_samples == 0
    with pytest.raises(ValueError, match="has no data"):
        metric.compute()
    metric.update(s, y)
    assert metric.mode == "scores" and same(metric.compute(), _functional(s, y))
    metric.reset()
    x, ids = _samples(100, 9)
    metric.update(embeddings=x, identities=ids)  # the other mode after a reset
    assert metric.mode == "embeddings" and same(metric.compute(), _protocol(x, ids))


def test_compute_leaves_the_state_and_can_be_repeated():
    s, y = _pairs(1000, 10)
    metric = VerificationMetric(far=FARS, p_target=PS)
    metric.update(s[:600], y[:600])
    first = metric.compute()
    assert same(metric.compute(), first)
    metric.update(s[600:], y[600:])
    assert same(metric.compute(), _functional(s, y)) and not same(metric.compute(), first)


def test_mixing_the_two_update_forms_is_an_error():
    s, y = _pairs(100, 11)
    x, ids = _samples(20, 12)
    metric = VerificationMetric()
    metric.update(s, y)
    with pytest.raises(ValueError, match=r"accumulates scores/labels and cannot also take embeddings/identities"):
        metric.update(embeddings=x, identities=ids)
    metric = VerificationMetric()
    metric.update(embeddings=x, identities=ids)
    with pytest.raises(ValueError, match=r"reset\(\)"):
        metric.update(s, y)
    with pytest.raises(ValueError, match="not both"):
        VerificationMetric().update(s, y, embeddings=x, identities=ids)
    with pytest.raises(ValueError, match="not both"):
        VerificationMetric().update(s, embeddings=x)


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((), {}, "needs scores and labels"),
        ((torch.rand(4),), {}, "needs both"),
        (([0.1, 0.2], [1, 0]), {}, "must be a torch.Tensor"),
        ((torch.rand(4, 1), torch.ones(4, dtype=torch.long)), {}, "1-D .*flatten"),
        ((torch.rand(4), torch.ones(3, dtype=torch.long)), {}, "one entry per score"),
        ((torch.rand(4), torch.ones(4)), {}, "0/1 integers or booleans.*labels.long"),
        ((torch.rand(4), torch.tensor([0, 1, 2, 1])), {}, "0 \\(impostor pair\\) or 1.*identities="),
        ((torch.tensor([0.1, math.nan, 0.2]), torch.tensor([0, 1, 1])), {}, "scores contains 1 non-finite"),
        ((torch.tensor([True, False]), torch.tensor([0, 1])), {}, "real similarity scores"),
        ((), {"embeddings": torch.rand(4, 3)}, "needs both"),
        ((), {"embeddings": torch.rand(4), "identities": torch.arange(4)}, r"shape \(batch, dim\)"),
        ((), {"embeddings": torch.ones(4, 3, dtype=torch.long), "identities": torch.arange(4)}, "floating-point"),
        ((), {"embeddings": torch.rand(4, 3), "identities": torch.arange(3)}, "one entry per embedding"),
        ((), {"embeddings": torch.rand(4, 3), "identities": torch.rand(4)}, "integer tensor"),
        ((), {"embeddings": torch.rand(2, 3), "identities": torch.tensor([0, -1])}, "non-negative.*-1"),
        ((), {"embeddings": torch.full((2, 3), math.inf), "identities": torch.arange(2)}, "6 non-finite"),
    ],
)
def test_bad_updates_name_the_argument(args, kwargs, match):
    metric = VerificationMetric()
    with pytest.raises(ValueError, match=match):
        metric.update(*args, **kwargs)
    assert metric.mode is None and metric.num_samples == 0  # a rejected batch changes nothing


def test_embedding_size_must_stay_the_same():
    metric = VerificationMetric()
    metric.update(embeddings=torch.rand(4, 3), identities=torch.arange(4))
    with pytest.raises(ValueError, match="3 features per row"):
        metric.update(embeddings=torch.rand(4, 5), identities=torch.arange(4))


def test_compute_without_both_kinds_of_pairs_says_why():
    metric = VerificationMetric()
    metric.update(torch.rand(5), torch.ones(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"5 genuine .* and 0 impostor"):
        metric.compute()
    metric = VerificationMetric()
    metric.update(embeddings=torch.rand(3, 4), identities=torch.arange(3))
    with pytest.raises(ValueError, match="no genuine pairs"):
        metric.compute()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"far": 0.0}, "far must be in the open interval"),
        ({"far": ()}, "far is an empty sequence"),
        ({"far": "0.001"}, "string"),
        ({"p_target": 1.5}, "p_target must be in the open interval"),
        ({"p_target": []}, "p_target is an empty sequence"),
        ({"p_target": "0.01"}, "string"),
        ({"c_miss": 0}, "c_miss must be a finite cost"),
        ({"c_fa": -1.0}, "c_fa must be a finite cost"),
        ({"dist_sync": 1}, "dist_sync must be true or false"),
        ({"prefix": None}, "prefix must be a string"),
        ({"block_size": 0}, "block_size must be a positive integer"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VerificationMetric(**kwargs)


def test_repr_and_numpy_rates():
    metric = VerificationMetric(far=np.array([1e-2, 1e-3]), p_target=np.float64(0.01))
    assert metric.far == (1e-2, 1e-3) and metric.p_target == (0.01,)
    metric.update(*_pairs(10, 13))
    assert repr(metric) == (
        "VerificationMetric(far=(0.01, 0.001), p_target=(0.01), mode='scores', num_samples=10, dist_sync=True)"
    )


# ---------------------------------------------------------------------------------------------- gloo processes
_SIZES = {0: 1700, 1: 900}  # pairs per process: different lengths
_ROWS = {0: 130, 1: 70}  # embeddings per process


def _union_pairs(world: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [_pairs(_SIZES[r], 100 + r, torch.float64 if r == 1 else torch.float32) for r in range(world)]


def _union_samples(world: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [_samples(_ROWS[r], 200 + r) for r in range(world)]


def _expect_error(fn, match: str) -> None:
    try:
        fn()
    except ValueError as err:
        assert match in str(err), str(err)
    else:
        raise AssertionError(f"no ValueError ({match!r})")


def _sync_worker(rank: int, world: int) -> None:
    dist.init_process_group("gloo")
    pairs, samples = _union_pairs(world), _union_samples(world)

    # scores: every process gets the metrics of the union (a float32 and a float64 process)
    metric = VerificationMetric(far=FARS, p_target=PS)
    s, y = pairs[rank]
    for a in range(0, len(s), 400):
        metric.update(s[a : a + 400], y[a : a + 400])
    all_s = torch.cat([p[0].double() for p in pairs])
    all_y = torch.cat([p[1] for p in pairs])
    assert same(metric.compute(), _functional(all_s, all_y))
    assert metric.num_samples == _SIZES[rank]  # the local state is left as it was
    local = VerificationMetric(far=FARS, p_target=PS, dist_sync=False)
    local.update(s, y)
    assert same(local.compute(), _functional(s, y))

    # embeddings: the union scored all-pairs, cross-process pairs included
    metric = VerificationMetric(far=FARS, p_target=PS)
    x, ids = samples[rank]
    metric.update(embeddings=x[:50], identities=ids[:50])
    metric.update(embeddings=x[50:], identities=ids[50:])
    all_x = torch.cat([p[0] for p in samples])
    all_ids = torch.cat([p[1] for p in samples])
    assert same(metric.compute(), _protocol(all_x, all_ids))

    # a process without data: the others' data is the union
    metric = VerificationMetric(far=FARS, p_target=PS)
    if rank == 0:
        metric.update(embeddings=x, identities=ids)
    assert same(metric.compute(), _protocol(samples[0][0], samples[0][1]))

    # errors decided from the gathered sizes are raised on every process (no hang)
    _expect_error(VerificationMetric().compute, "on at least one process")
    mixed = VerificationMetric()
    if rank == 0:
        mixed.update(s, y)
    else:
        mixed.update(embeddings=x, identities=ids)
    _expect_error(mixed.compute, "different kinds of input")
    sizes = VerificationMetric()
    sizes.update(embeddings=torch.rand(4, 3 + rank), identities=torch.arange(4))
    _expect_error(sizes.compute, "different sizes [3, 4]")
    dist.barrier()


def test_synced_compute_equals_one_process_on_the_union():
    run_processes(_sync_worker, 2, timeout=240.0)
