import math

import pytest
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner
from pytorch_metric_learning.reducers import MeanReducer

from veriloss.pairwise import TripletLoss, create
from veriloss.pairwise.base import squared_distances
from veriloss.pairwise.triplet import mine_batch_hard, mine_semi_hard


def unit(x: torch.Tensor) -> list[torch.Tensor]:
    return [r / r.norm() for r in x]


def sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).sum()


def sqf(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(sq(a, b).detach())


def reference(x: torch.Tensor, y: torch.Tensor, margin: float, mining: str) -> tuple[torch.Tensor, float]:
    """Float64 loops straight from the definitions; returns (loss, fraction of non-zero terms)."""
    xn, n = unit(x), len(y)
    terms = []
    if mining == "all":
        for a in range(n):
            for p in range(n):
                for q in range(n):
                    if a != p and y[a] == y[p] and y[q] != y[a]:
                        terms.append(torch.clamp(sq(xn[a], xn[p]) - sq(xn[a], xn[q]) + margin, min=0.0))
    elif mining == "batch-hard":
        for a in range(n):
            pos = [p for p in range(n) if p != a and y[p] == y[a]]
            neg = [q for q in range(n) if y[q] != y[a]]
            if not pos:
                continue
            hp = max(pos, key=lambda p: sqf(xn[a], xn[p]))
            hn = min(neg, key=lambda q: sqf(xn[a], xn[q]))
            terms.append(torch.clamp(sq(xn[a], xn[hp]) - sq(xn[a], xn[hn]) + margin, min=0.0))
    else:  # semi-hard, TF-Addons fallback
        for a in range(n):
            neg = [q for q in range(n) if y[q] != y[a]]
            for p in range(n):
                if p == a or y[p] != y[a]:
                    continue
                dap = sq(xn[a], xn[p])
                farther = [q for q in neg if sqf(xn[a], xn[q]) > float(dap.detach())]
                if farther:
                    chosen = min(farther, key=lambda q: sqf(xn[a], xn[q]))
                else:
                    chosen = max(neg, key=lambda q: sqf(xn[a], xn[q]))
                terms.append(torch.clamp(dap - sq(xn[a], xn[chosen]) + margin, min=0.0))
    stacked = torch.stack(terms)
    return stacked.mean(), float((stacked > 0).double().mean())


def batch(seed: int, labels: list[int], d: int = 4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(labels), d, generator=g), torch.tensor(labels)


LABELS = [[0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 1, 0, 2, 1, 0, 3, 3, 4, 2]]  # the second has singletons (3 and 4)


@pytest.mark.parametrize("mining", ["all", "batch-hard", "semi-hard"])
@pytest.mark.parametrize("margin", [0.2, 1.0])
@pytest.mark.parametrize(("seed", "labels"), [(0, LABELS[0]), (1, LABELS[1]), (2, LABELS[1])])
def test_value_gradient_and_active_fraction_match_brute_force(mining, margin, seed, labels):
    x, y = batch(seed, labels)
    loss_fn = TripletLoss(margin=margin, mining=mining)
    x32 = x.clone().requires_grad_()
    loss = loss_fn(x32, y)
    loss.backward()
    x64 = x.double().requires_grad_()
    ref, active = reference(x64, y, margin, mining)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-5)
    assert loss_fn.statistics()["active_fraction"] == pytest.approx(active)


def pml_triplet(x, y, margin, miner=None):
    distance = LpDistance(normalize_embeddings=True, p=2, power=2)
    loss_fn = TripletMarginLoss(margin=margin, distance=distance, reducer=MeanReducer())
    indices = None if miner is None else miner(x, y)
    return loss_fn(x, y, indices)


@pytest.mark.parametrize("seed", [3, 4])
def test_all_and_batch_hard_agree_with_pytorch_metric_learning(seed):
    x, y = batch(seed, LABELS[1], d=6)
    ours = TripletLoss(margin=0.3, mining="all")(x, y)
    assert ours.item() == pytest.approx(pml_triplet(x, y, 0.3).item(), rel=1e-5, abs=1e-6)
    miner = BatchHardMiner(distance=LpDistance(normalize_embeddings=True, p=2, power=2))
    ours = TripletLoss(margin=0.3, mining="batch-hard")(x, y)
    assert ours.item() == pytest.approx(pml_triplet(x, y, 0.3, miner).item(), rel=1e-5, abs=1e-6)


def circle(angles: list[float]) -> torch.Tensor:
    return torch.tensor([[math.cos(t), math.sin(t)] for t in angles])


def chord2(t: float) -> float:
    return 2 - 2 * math.cos(t)


def test_batch_hard_picks_farthest_positive_and_closest_negative():
    # anchor 0 at angle 0; positives at 0.3 and 1.0; negatives at 0.5, 0.8 and 2.0
    x = circle([0.0, 0.3, 1.0, 0.5, 0.8, 2.0])
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    anchors, dap, dan = mine_batch_hard(squared_distances(x), y)
    assert anchors.tolist() == [True, True, True, True, True, False]  # sample 5 has no positive
    assert dap[0].item() == pytest.approx(chord2(1.0), abs=1e-6)  # farthest positive: angle 1.0
    assert dan[0].item() == pytest.approx(chord2(0.5), abs=1e-6)  # closest negative: angle 0.5
    # anchor 3 (angle 0.5, class 1): its only positive is at 0.8; closest negative is the anchor 0 cluster at 0.3
    assert dap[3].item() == pytest.approx(chord2(0.3), abs=1e-6)
    assert dan[3].item() == pytest.approx(chord2(0.2), abs=1e-6)
    loss = TripletLoss(margin=0.2, mining="batch-hard")(x, y)
    expected = [max(0.0, float(p - n) + 0.2) for p, n in zip(dap, dan)]
    assert loss.item() == pytest.approx(sum(expected) / 5, rel=1e-5)


def test_semi_hard_picks_closest_farther_negative_and_falls_back_to_farthest():
    # class 0 at angles 0, 0.3, 1.0 and 3.0; negatives at 0.5, 0.8, 2.1 (no two distances tie)
    x = circle([0.0, 0.3, 1.0, 3.0, 0.5, 0.8, 2.1])
    y = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    chosen, fallback = mine_semi_hard(squared_distances(x), y)
    # (a=0, p=1): d_ap at angle 0.3 → negatives farther: 0.5, 0.8, 2.1 → closest is 0.5
    assert chosen[0, 1].item() == pytest.approx(chord2(0.5), abs=1e-6)
    # (a=0, p=2): d_ap at angle 1.0 → only 2.1 is farther
    assert chosen[0, 2].item() == pytest.approx(chord2(2.1), abs=1e-6)
    # (a=0, p=3): positive at 3.0 rad is farther than every negative → fallback to the farthest negative (2.1)
    assert bool(fallback[0, 3]) and not bool(fallback[0, 1]) and not bool(fallback[0, 2])
    assert chosen[0, 3].item() == pytest.approx(chord2(2.1), abs=1e-6)
    # (a=3 at 3.0, p=2 at 1.0): Δ = 2.0; negatives at Δ 2.5, 2.2, 0.9 → farther: 2.2 (0.8) is the closest of them
    assert chosen[3, 2].item() == pytest.approx(chord2(2.2), abs=1e-6)
    loss_fn = TripletLoss(margin=0.2, mining="semi-hard")
    loss_fn(x, y)
    # fallback pairs: those (a, p) of class 0 whose positive is farther than every negative
    pos = (y[:, None] == y[None, :]) & ~torch.eye(7, dtype=torch.bool)
    assert loss_fn.statistics()["fallback_fraction"] == pytest.approx(float(fallback[pos].float().mean()))
    assert 0 < loss_fn.statistics()["fallback_fraction"] < 1


def test_all_mining_counts_zero_triplets_in_the_mean():
    # well separated classes: every triplet satisfies the margin → loss 0, no active triplet
    x = circle([0.0, 0.05, math.pi, math.pi + 0.05])
    y = torch.tensor([0, 0, 1, 1])
    loss_fn = TripletLoss(mining="all")
    assert loss_fn(x, y).item() == pytest.approx(0.0, abs=1e-7)
    assert loss_fn.statistics() == {"active_fraction": 0.0, "num_triplets": 8.0}


def test_default_is_semi_hard_and_created_by_name():
    assert TripletLoss().mining == "semi-hard"
    assert create("triplet", mining="all", margin=0.1).margin == 0.1


@pytest.mark.parametrize(("kwargs", "match"), [({"mining": "hard"}, "mining"), ({"margin": -1}, "margin")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TripletLoss(**kwargs)
