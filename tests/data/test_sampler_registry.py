"""The batch plans by name (veriloss.data.samplers): the same batches as the trainer's if/elif (a verbatim copy
below), load-time checks of a config's sampler section, and user-registered samplers."""

import numpy as np
import pytest
import torch

from veriloss.data import (
    ClassBalancedSampler,
    PKSampler,
    batch_plan,
    check_sampler_config,
    describe_sampler,
    epoch_batches,
    register_sampler,
    samplers_available,
    unregister_sampler,
)


class _TrainerToday:
    """``Trainer._epoch_batches`` as of the sampler registry (src/veriloss/train/trainer.py), copied verbatim."""

    def __init__(self, labels, batch_size, seed, sampler):
        self.train_set = _Labels(labels)
        self.batch_size, self.seed, self.config = batch_size, seed, {"sampler": sampler}

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """The global batches of ``epoch`` (dropping the last partial one), a pure function of (seed, epoch)."""
        cfg = self.config["sampler"]
        name = cfg.get("name", "random")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if name == "random":
            order = torch.randperm(len(self.train_set), generator=g).tolist()
            n = len(order) // self.batch_size
            return [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(n)]
        if name == "pk":
            p, k = cfg.get("p"), cfg.get("k")
            if not p or not k or int(p) * int(k) != self.batch_size:
                raise ValueError(f"sampler pk needs p and k with p·k = batch_size ({self.batch_size}), got {p}, {k}")
            sampler = PKSampler(self.train_set.labels, int(p), int(k), seed=self.seed)
            sampler.set_epoch(epoch)
            return [list(b) for b in sampler]
        if name == "class-balanced":
            sampler = ClassBalancedSampler(self.train_set.labels, seed=self.seed)
            sampler.set_epoch(epoch)
            order = list(sampler)
            n = len(order) // self.batch_size
            return [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(n)]
        raise ValueError(f"sampler.name must be random, pk or class-balanced, got {name!r}")


class _Labels:
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)


def _labels(counts, seed=0):
    """Labels with the given number of samples per identity, shuffled (a tensor, as datasets carry them)."""
    labels = np.repeat(np.arange(len(counts)), counts)
    return torch.from_numpy(np.random.default_rng(seed).permutation(labels))


LABELS = [_labels([5, 6, 7, 8, 9, 10, 4, 12]), _labels([2, 1, 6, 6, 3, 20], seed=1), _labels([4] * 30, seed=2)]


@pytest.mark.parametrize("labels", LABELS, ids=["uneven", "small-ids", "even"])
@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_random_and_class_balanced_batches_equal_the_trainers(labels, seed):
    for name in ("random", "class-balanced"):
        for batch_size in (4, 8, 12, 7):
            today = _TrainerToday(labels, batch_size, seed, {"name": name, "p": None, "k": None})
            plan = batch_plan({"name": name, "p": None, "k": None}, labels, batch_size, seed)
            for epoch in (0, 1, 2, 5, 31):
                want = today._epoch_batches(epoch)
                assert plan.batches(epoch) == want
                assert epoch_batches(name, labels, batch_size, seed, epoch) == want
                assert all(len(b) == batch_size for b in want) and len(want) == len(labels) // batch_size


@pytest.mark.parametrize("labels", LABELS, ids=["uneven", "small-ids", "even"])
@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_pk_batches_equal_the_trainers(labels, seed):
    for p, k in ((2, 2), (3, 4), (4, 2), (2, 6)):
        config = {"name": "pk", "p": p, "k": k}
        today = _TrainerToday(labels, p * k, seed, config)
        plan = batch_plan(config, labels, p * k, seed)
        for epoch in (0, 1, 2, 5, 31):
            want = today._epoch_batches(epoch)
            assert plan.batches(epoch) == want
            assert epoch_batches("pk", labels, p * k, seed, epoch, p=p, k=k) == want
            assert all(type(i) is int for b in want for i in plan.batches(epoch)[0])


def test_a_plan_is_a_pure_function_of_seed_and_epoch():
    labels = LABELS[0]
    plan = batch_plan({"name": "pk", "p": 2, "k": 4}, labels, 8, 3)
    later = [plan.batches(e) for e in (2, 0, 1)]
    assert later == [batch_plan({"name": "pk", "p": 2, "k": 4}, labels, 8, 3).batches(e) for e in (2, 0, 1)]
    assert later[0] != later[1]
    assert epoch_batches("random", labels, 8, 3, 0) != epoch_batches("random", labels, 8, 4, 0)


def test_available_and_describe():
    assert samplers_available() == ["random", "pk", "class-balanced"]
    pk = describe_sampler("PK")
    assert pk["required"] == ["p", "k"] and pk["types"] == {"p": "an integer", "k": "an integer"}
    assert pk["summary"].startswith("pk:")
    assert describe_sampler("random")["parameters"] == {}


@pytest.mark.parametrize(
    ("sampler", "batch_size", "match"),
    [
        ({"name": "balanced"}, 8, r"sampler\.name must be one of random, pk, class-balanced .*'balanced'.*class-bal"),
        ({"name": 3}, 8, r"sampler\.name must be one of .*got 3"),
        (
            {"name": "pk", "p": None, "k": None},
            16,
            r"^sampler: \{'name': 'pk', 'p': None, 'k': None\} has no p, k; sampler pk needs p: an integer, k",
        ),
        ({"name": "pk", "p": 4}, 16, r"has no k; sampler pk needs k: an integer"),
        ({"name": "pk", "p": 3, "k": 3}, 16, r"^sampler: .*p·k = 3·3 = 9, not batch_size \(16\)"),
        ({"name": "pk", "p": 1, "k": 16}, 16, r"has p = 1; sampler pk needs integers p, k ≥ 2"),
        ({"name": "pk", "p": 4, "k": 1.5}, 16, r"^sampler\.k must be an integer, got 1\.5"),
        ({"name": "pk", "p": 4.0, "k": 4}, 16, r"^sampler\.p must be an integer, got 4\.0 \(write 4\)"),
        ({"name": "pk", "p": True, "k": 4}, 16, r"sampler\.p must be an integer, got True"),
        ({"name": "random", "p": 0}, 16, r"sampler\.p: 0 does not apply to sampler 'random' \(its keys: name\)"),
        ({"name": "pk", "p": 4, "k": 4, "kk": 2}, 16, r"sampler\.kk: 2 does not apply .*did you mean 'k'"),
        ([("name", "pk")], 16, r"sampler must be a mapping"),
    ],
)
def test_check_sampler_config_names_the_key_the_value_and_the_fix(sampler, batch_size, match):
    with pytest.raises(ValueError, match=match):
        check_sampler_config(sampler, batch_size)


def test_check_sampler_config_accepts_the_config_defaults_and_the_recipes():
    check_sampler_config({"name": "random", "p": None, "k": None}, 256)  # DEFAULTS["sampler"]
    check_sampler_config({}, 256)  # random
    check_sampler_config({"name": "class-balanced", "p": None, "k": None}, 7)
    check_sampler_config({"name": "PK", "p": 64, "k": 4}, 256)  # the omniglot suite's pair losses
    with pytest.raises(ValueError, match="sp: 3 does not apply"):
        check_sampler_config({"name": "pk", "p": 2, "k": 2, "sp": 3}, 4, where="bench.sampler")


def test_batch_plan_checks_its_arguments():
    with pytest.raises(ValueError, match="not batch_size"):
        batch_plan({"name": "pk", "p": 2, "k": 2}, LABELS[0], 8, 0)
    with pytest.raises(ValueError, match="batch_size must be an integer ≥ 1"):
        batch_plan({"name": "random"}, LABELS[0], 0, 0)
    with pytest.raises(ValueError, match="seed must be"):
        batch_plan({"name": "random"}, LABELS[0], 4, -1)
    with pytest.raises(ValueError, match="epoch must be"):
        epoch_batches("random", LABELS[0], 4, 0, -1)


class Sequential:
    """sequential: the samples in order, ``stride`` apart (test registration)."""

    def __init__(self, labels, batch_size, seed, *, stride: int = 1, tag: str | None = None):
        self.n, self.batch_size, self.stride = len(labels), batch_size, stride

    @staticmethod
    def check(batch_size, *, stride, tag):
        return None if stride <= batch_size else f"has stride = {stride} > batch_size ({batch_size})"

    def batches(self, epoch):
        order = list(range(0, self.n, self.stride))
        return [order[i : i + self.batch_size] for i in range(0, len(order) - self.batch_size + 1, self.batch_size)]


def test_a_registered_sampler_is_named_checked_and_removed():
    register_sampler("test-sequential", Sequential, aliases=("test-seq",))
    try:
        assert samplers_available()[-1] == "test-sequential"
        assert epoch_batches("test-seq", list(range(10)), 2, 0, 0, stride=2) == [[0, 2], [4, 6]]
        assert epoch_batches("test-sequential", list(range(5)), 2, 0, 3, tag=None) == [[0, 1], [2, 3]]
        check_sampler_config({"name": "test-sequential", "stride": 2, "tag": "x"}, 4)
        with pytest.raises(ValueError, match=r"sampler\.stride must be an integer, got '2'"):
            check_sampler_config({"name": "test-sequential", "stride": "2"}, 4)
        with pytest.raises(ValueError, match=r"sampler\.tag must be a string or null, got 3"):
            check_sampler_config({"name": "test-sequential", "tag": 3}, 4)
        with pytest.raises(ValueError, match=r"has stride = 5 > batch_size \(4\)"):
            check_sampler_config({"name": "test-sequential", "stride": 5}, 4)
        with pytest.raises(ValueError, match="already registered"):
            register_sampler("test-sequential", Sequential)
    finally:
        unregister_sampler("test-sequential")
    assert "test-sequential" not in samplers_available()
    with pytest.raises(ValueError, match="must be one of random, pk, class-balanced"):
        check_sampler_config({"name": "test-seq"}, 4)


def test_register_sampler_refuses_what_cannot_be_a_plan():
    class NoBatches:
        def __init__(self, labels, batch_size, seed): ...

    class Renamed:
        def __init__(self, y, batch_size, seed): ...

        def batches(self, epoch): ...

    class Named:
        def __init__(self, labels, batch_size, seed, name: str = "x"): ...

        def batches(self, epoch): ...

    for plan, match in ((NoBatches, "batches"), (Renamed, "labels, batch_size, seed"), (Named, "'name'")):
        with pytest.raises(ValueError, match=match):
            register_sampler("test-bad", plan)
    assert "test-bad" not in samplers_available()
