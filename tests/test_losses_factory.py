"""Every head and pair loss through the one factory: construction options (init_std, chunk_size, sharded, reduction),
per-sample losses (``reduction="none"``) against the default loss, exports under the class names, capabilities, and
input validation: one host synchronization with the checks on, none but the α solver's own with them off."""

from __future__ import annotations

import copy
import math
import sys
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from veriloss import heads, losses, pairwise
from veriloss.heads import unchecked

D, K, B = 8, 6, 12
ALPHA = ["alpha", "qmargin", "a3m", "a3m-i"]
#: every head, and the α heads once more streamed and sharded (one process: world size 1)
HEAD_CASES = [(name, {}) for name in heads.available()] + [
    (name, layout) for name in ALPHA for layout in ({"chunk_size": 4}, {"sharded": True})
]
HEAD_IDS = [name + "".join(f"-{k}" for k in layout) for name, layout in HEAD_CASES]
PAIR_CASES = [(name, {}) for name in pairwise.available()] + [
    ("triplet", {"mining": "all"}),
    ("triplet", {"mining": "batch-hard"}),
    ("contrastive", {"normalize": False}),
    ("range", {"k": 3, "normalize": False}),
]
PAIR_IDS = [name + "".join(f"-{v}" for v in params.values()) for name, params in PAIR_CASES]


def _batch(dtype=torch.float64, seed=0):
    """P×K-style labels (6 identities × 2 samples) so that every pair and triplet loss has its pairs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, generator=g, dtype=dtype)
    y = torch.arange(B) % K
    return x, y


def _head(name: str, layout: dict, reduction: str = "mean") -> heads.Head:
    torch.manual_seed(0)
    return heads.create(name, D, K, reduction=reduction, **layout).double()


def _pair_loss(name: str, params: dict, reduction: str = "mean") -> pairwise.PairwiseLoss:
    torch.manual_seed(0)
    spec = pairwise.describe(name)["parameters"]
    sizes = {k: v for k, v in (("embedding_dim", D), ("num_classes", K)) if k in spec}
    loss = pairwise.create(name, reduction=reduction, **sizes, **params).double()
    if hasattr(loss, "centers"):  # centres away from 0, so that both terms matter
        loss.centers.copy_(torch.randn(K, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    return loss


def _value_and_grads(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, reduce=lambda t: t):
    module = copy.deepcopy(module)  # centre updates and λ's iteration must not leak from one call into the next
    xa = x.clone().requires_grad_(True)
    torch.manual_seed(1)  # ElasticFace draws its margins from the global generator
    value = reduce(module(xa, y))
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(value, [xa, *params])
    return value.detach(), [g.to_dense() if g.is_sparse else g for g in grads]


def _check_reductions(make, x, y):
    mean, g_mean = _value_and_grads(make("mean"), x, y)
    per = make("none")(x, y)
    assert per.shape == (x.shape[0],)
    none, g_none = _value_and_grads(make("none"), x, y, lambda t: t.mean())
    total, g_sum = _value_and_grads(make("sum"), x, y)
    torch.testing.assert_close(none, mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(total, x.shape[0] * mean, rtol=1e-12, atol=1e-12)
    for a, b, c in zip(g_none, g_mean, g_sum):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(c, x.shape[0] * b, rtol=1e-10, atol=1e-12)


# ---- reduction ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, layout", HEAD_CASES, ids=HEAD_IDS)
def test_every_head_gives_per_sample_losses_whose_mean_is_the_loss(name, layout):
    x, y = _batch()
    _check_reductions(lambda reduction: _head(name, layout, reduction), x, y)


@pytest.mark.parametrize("name, params", PAIR_CASES, ids=PAIR_IDS)
def test_every_pair_loss_gives_per_sample_losses_whose_mean_is_the_loss(name, params):
    x, y = _batch()
    _check_reductions(lambda reduction: _pair_loss(name, params, reduction), x, y)


def _pair_terms(x, y):
    """Python loops over the pairs: (i, j, same identity, squared distance, distance) of every ordered pair i ≠ j."""
    n = x.shape[0]
    return [
        (i, j, bool(y[i] == y[j]), float(((x[i] - x[j]) ** 2).sum()), float((x[i] - x[j]).norm()))
        for i in range(n)
        for j in range(n)
        if i != j
    ]


def test_per_sample_shares_match_their_documented_definitions():
    """Float64 loops: contrastive and marginal are each sample's mean over its B−1 pairs; the triplet losses
    sum the losses anchored at the sample times B/T; center is ½‖x_i − c_{y_i}‖²."""
    x, y = _batch()
    n = x.shape[0]
    xn = F.normalize(x, dim=1)

    per = pairwise.create("contrastive", reduction="none")(x, y)
    want = torch.zeros(n, dtype=torch.float64)
    for i, _, same, d2, d in _pair_terms(xn, y):
        want[i] += 0.5 * (d2 if same else max(0.0, 1.0 - d) ** 2) / (n - 1)
    torch.testing.assert_close(per, want, rtol=1e-12, atol=1e-12)

    per = pairwise.create("marginal", reduction="none")(x, y)
    want = torch.zeros(n, dtype=torch.float64)
    for i, _, same, d2, _ in _pair_terms(xn, y):
        want[i] += max(0.0, 0.3 - (1.0 if same else -1.0) * (1.2 - d2)) / (n - 1)
    torch.testing.assert_close(per, want, rtol=1e-12, atol=1e-12)

    per = pairwise.create("triplet", mining="all", reduction="none")(x, y)
    sums, count = torch.zeros(n, dtype=torch.float64), 0
    for a, _, same, dap, _ in _pair_terms(xn, y):
        if same:
            for m in range(n):
                if y[m] != y[a]:
                    sums[a] += max(0.0, dap - float(((xn[a] - xn[m]) ** 2).sum()) + 0.2)
                    count += 1
    torch.testing.assert_close(per, sums * n / count, rtol=1e-12, atol=1e-12)

    center = _pair_loss("center", {}, "none")
    c = center.centers.clone()
    torch.testing.assert_close(center(x, y), 0.5 * ((x - c[y]) ** 2).sum(dim=1), rtol=1e-12, atol=1e-12)


def test_reduction_is_checked():
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        heads.create("arcface", 4, 3, reduction="avg")
    with pytest.raises(ValueError, match="reduction must be"):
        pairwise.create("triplet", reduction=None)
    assert "reduction='none'" in repr(heads.create("cosface", 4, 3, reduction="none"))


# ---- exports, options, capabilities ------------------------------------------------------------------------------
def test_every_loss_class_is_exported_under_its_name():
    for name in heads.available():
        cls = type(heads.create(name, D, K))
        assert getattr(heads, cls.__name__) is cls and cls.__name__ in heads.__all__, name
    for name in pairwise.available():
        cls = type(_pair_loss(name, {}))
        assert getattr(pairwise, cls.__name__) is cls and cls.__name__ in pairwise.__all__, name


COSINE_HEADS = {n for n in heads.available() if n not in ("softmax", "l2softmax", "lsoftmax", "harmonic")}


@pytest.mark.parametrize("name", heads.available())
def test_default_prototype_init_is_small_for_cosine_heads(name):
    torch.manual_seed(0)
    head = heads.create(name, 64, 500)
    std = float(head.weight.detach().std())
    want = 0.01 if name in COSINE_HEADS else 1 / math.sqrt(64)
    assert head.prototype_std == pytest.approx(want) and std == pytest.approx(want, rel=0.05)
    torch.manual_seed(0)
    assert float(heads.create(name, 64, 500, init_std=0.3).weight.detach().std()) == pytest.approx(0.3, rel=0.05)


def test_harmonic_init_follows_its_distance():
    assert heads.create("harmonic", 16, 4, distance="cosine").prototype_std == 0.01
    assert heads.create("harmonic", 16, 4, distance="manhattan").prototype_std == 0.25


def test_init_std_draws_once_from_the_seeded_generator_and_sharded_heads_cut_the_same_matrix():
    torch.manual_seed(3)
    head = losses.from_config({"name": "cosface", "params": {}, "init_std": 0.05}, 16, 40)
    torch.manual_seed(3)
    expected = torch.empty(40, 16).normal_(0.0, 0.05)
    torch.testing.assert_close(head.weight.detach(), expected, rtol=0, atol=0)
    torch.manual_seed(3)
    shard = losses.from_config({"name": "a3m", "params": {"sharded": True}, "init_std": 0.05}, 16, 40)
    torch.testing.assert_close(shard.weight.detach(), expected, rtol=0, atol=0)  # one process owns every row
    torch.manual_seed(3)
    default = losses.from_config({"name": "arcface", "params": {}, "init_std": None}, 16, 40)
    assert default.init_std is None and default.prototype_std == 0.01


def test_from_config_keeps_the_config_keys_and_refuses_misplaced_options():
    stream = losses.from_config({"name": "alpha", "params": {"chunk_size": 8}}, 16, 40)
    assert stream.chunk_size == 8 and stream.sparse_gradients
    both = losses.from_config({"name": "qmargin", "params": {"chunk_size": 8, "sharded": True}}, 16, 40)
    assert both.sharded and both.sparse_gradients
    with pytest.raises(ValueError, match=r"loss\.params\.init_std .*loss\.init_std"):
        losses.from_config({"name": "arcface", "params": {"init_std": 0.01}}, 16, 40)
    with pytest.raises(ValueError, match=r"loss\.params\.reduction"):
        losses.from_config({"name": "arcface", "params": {"reduction": "none"}}, 16, 40)
    with pytest.raises(ValueError, match="prototypes"):
        losses.from_config({"name": "triplet", "params": {}, "init_std": 0.01}, 16, 40)
    with pytest.raises(ValueError, match="only the α heads"):
        losses.from_config({"name": "arcface", "params": {"chunk_size": 8}}, 16, 40)
    with pytest.raises(ValueError, match="true or false"):
        losses.from_config({"name": "alpha", "params": {"sharded": "yes"}}, 16, 40)


@pytest.mark.parametrize("name", heads.available())
def test_capabilities(name):
    head = heads.create(name, D, K)
    assert head.can_reinitialize == (name == "a3m-i") == hasattr(head, "reinitialize_prototypes")
    assert not head.sparse_gradients and not head.sharded
    margins = {"cosface", "arcface", "combined", "a3m", "a3m-i", "qmargin"} | {
        n for n in heads.available() if n.startswith("elasticface")
    }
    assert head.has_margin == (name in margins)
    if not head.has_margin:
        with pytest.raises(ValueError, match="no margin"):
            head.ramp_margin(0.5)
        return
    before = {a: getattr(head, a) for a in head.margin_attributes}
    head.ramp_margin(0.0)
    head.ramp_margin(0.25)
    for a, v in before.items():
        assert getattr(head, a) == pytest.approx(v**0.25 if a == "kappa" else 0.25 * v)
    head.ramp_margin(1.0)
    assert {a: getattr(head, a) for a in head.margin_attributes} == pytest.approx(before)


# ---- validation: once when on, no host synchronization when off ------------------------------------------------
_SYNCS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__")
#: the α solver reads the device where its maths needs it (see veriloss.functional.alpha): the Newton iterations
#: stop once every row converged, the second pass runs for the rows that need it, the candidates' width is the
#: largest count of a row; the stream grows its top-k while a left-out logit may be in a support
_SOLVER = {
    "_solve_threshold",
    "solve",
    "candidates_above",
    "_pack_by_row",
    "_pack_vectorized",
    "stream_top",
    "stream_above",
}


def _count_syncs(monkeypatch, run) -> Counter:
    """Run ``run()`` counting the host reads of tensors, by the function that asked for them."""
    calls: Counter = Counter()
    for method in _SYNCS:
        original = getattr(torch.Tensor, method)

        def spy(self, *args, _original=original, **kwargs):
            calls[sys._getframe(1).f_code.co_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, spy)
    try:
        run()
    finally:
        monkeypatch.undo()
    return calls


def _forward_backward(module, x, y):
    def run():
        module(x.clone().requires_grad_(True), y).sum().backward()

    return run


def _syncs(monkeypatch, module, checked: bool) -> tuple[int, int]:
    """(host reads outside the α solver, reads inside it) of one forward and backward."""
    x, y = _batch(torch.float32)
    if checked:
        calls = _count_syncs(monkeypatch, _forward_backward(copy.deepcopy(module), x, y))
    else:
        with unchecked():
            calls = _count_syncs(monkeypatch, _forward_backward(copy.deepcopy(module), x, y))
    solver = sum(n for f, n in calls.items() if f in _SOLVER)
    return sum(calls.values()) - solver, solver


@pytest.mark.parametrize("name, layout", HEAD_CASES, ids=HEAD_IDS)
def test_heads_read_the_device_once_to_validate_and_never_when_unchecked(monkeypatch, name, layout):
    head = heads.create(name, D, K, **layout)
    assert _syncs(monkeypatch, head, checked=True)[0] == 1  # the batch check: one transfer for every value
    assert _syncs(monkeypatch, head, checked=False)[0] == 0
    if name not in ALPHA:
        assert _syncs(monkeypatch, head, checked=False)[1] == 0


@pytest.mark.parametrize("name, params", PAIR_CASES, ids=PAIR_IDS)
def test_pair_losses_read_the_device_once_to_validate_and_never_when_unchecked(monkeypatch, name, params):
    loss = _pair_loss(name, params).float()
    assert _syncs(monkeypatch, loss, checked=True) == (1, 0)
    assert _syncs(monkeypatch, loss, checked=False) == (0, 0)


def test_unchecked_skips_value_checks_only_inside_the_block():
    head = heads.create("cosface", D, K)
    x, y = _batch(torch.float32)
    bad = y.clone()
    bad[0] = -1
    with pytest.raises(ValueError, match="non-negative"):
        head(x, bad)
    with unchecked():
        head(x, y)  # fine inputs: the same loss
        with pytest.raises(ValueError, match="features"):  # shapes are still checked: free
            head(x[:, :3], y)
    with pytest.raises(ValueError, match="non-negative"):
        head(x, bad)
    assert pairwise.unchecked is heads.unchecked


def test_the_trainer_steps_without_the_input_checks(monkeypatch, tmp_path):
    from veriloss.data import SyntheticIdentities
    from veriloss.heads import base
    from veriloss.models import create as create_model
    from veriloss.train import Trainer

    def refuse(*args, **kwargs):
        raise AssertionError("the training step validated its batch")

    monkeypatch.setattr(base, "check_batch", refuse)
    trainer = Trainer(
        create_model("small-cnn", width=4, embedding_dim=16),
        heads.create("cosface", 16, 8),
        SyntheticIdentities(8, 4, image_size=28),
        SyntheticIdentities(4, 4, image_size=28, identity_offset=8),
        tmp_path,
        config={"batch_size": 8, "max_steps": 2, "amp": "none", "log": {"tensorboard": False}},
        log=lambda message: None,
    )
    assert trainer.fit()["steps"] == 2
    with pytest.raises(ValueError, match="num_classes=8"):
        Trainer(
            create_model("small-cnn", width=4, embedding_dim=16),
            heads.create("cosface", 16, 5),
            SyntheticIdentities(8, 4, image_size=28),
            None,
            tmp_path / "small",
            config={"batch_size": 8, "max_steps": 1, "amp": "none", "log": {"tensorboard": False}},
        )
