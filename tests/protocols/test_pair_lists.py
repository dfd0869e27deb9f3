"""LFW pairs.txt parsing, 10-fold accuracy (vs a brute-force threshold search), generic pair lists."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from veriloss.protocols.pair_lists import (
    best_accuracy_threshold,
    lfw_accuracy,
    lfw_image_key,
    parse_lfw_pairs,
    read_lfw_pairs,
    read_pair_list,
)
from veriloss.protocols.trials import score_trials


def _lfw_text(n_folds: int, per_class: int, seed: int = 0, header: str | None = None) -> tuple[str, list]:
    """A pairs.txt in the real layout (tab separated) and the expected (key_a, key_b, same, fold) per pair."""
    rng = np.random.default_rng(seed)
    lines = [header if header is not None else f"{n_folds}\t{per_class}"]
    expected = []
    for fold in range(n_folds):
        for k in range(per_class):
            name = f"Person_{fold}_{k}"
            i, j = rng.choice(np.arange(1, 40), 2, replace=False)
            lines.append(f"{name}\t{i}\t{j}")
            expected.append((f"{name}/{name}_{i:04d}.jpg", f"{name}/{name}_{j:04d}.jpg", True, fold))
        for k in range(per_class):
            n1, n2 = f"Other_{fold}_{k}_A", f"Other_{fold}_{k}_B"
            i, j = rng.integers(1, 12, 2)
            lines.append(f"{n1}\t{i}\t{n2}\t{j}")
            expected.append((f"{n1}/{n1}_{i:04d}.jpg", f"{n2}/{n2}_{j:04d}.jpg", False, fold))
    return "\n".join(lines) + "\n", expected


def test_lfw_image_key():
    assert lfw_image_key("Abel_Pacheco", 1) == "Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert lfw_image_key("Tony_Blair", 134, ".png") == "Tony_Blair/Tony_Blair_0134.png"


def test_parse_full_size_lfw_pairs(tmp_path):
    text, expected = _lfw_text(10, 300)
    p = tmp_path / "pairs.txt"
    p.write_text(text)
    pairs = read_lfw_pairs(p)
    assert len(pairs) == 6000 and pairs.num_target == 3000
    assert pairs.folds is not None
    assert torch.bincount(pairs.folds).tolist() == [600] * 10
    assert [(a, b, bool(y), int(f)) for a, b, y, f in zip(pairs.enroll, pairs.test, pairs.labels, pairs.folds)] == (
        expected
    )
    assert pairs.line_numbers[0] == 2 and pairs.line_numbers[-1] == 6001


def test_single_number_header_is_one_fold():
    text, expected = _lfw_text(1, 5, header="5")
    pairs = parse_lfw_pairs(text.splitlines())
    assert len(pairs) == 10 and pairs.folds.tolist() == [0] * 10
    assert pairs.labels.tolist() == [e[2] for e in expected]


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda ls: ["ten 300", *ls[1:]], r"pairs\.txt:1: expected the header 'folds pairs_per_class'"),
        (lambda ls: [ls[0], "Abel_Pacheco\t1", *ls[2:]], r"pairs\.txt:2: expected a matched 'name i j' line"),
        (
            lambda ls: [*ls[:4], "A\t1\tB", *ls[5:]],
            r"pairs\.txt:5: expected a mismatched 'name1 i name2 j' line",
        ),
        (
            lambda ls: [ls[0], "Abel_Pacheco\tx\t4", *ls[2:]],
            r"pairs\.txt:2: image number 'x' is not an integer",
        ),
        (lambda ls: [ls[0], "Abel_Pacheco\t0\t4", *ls[2:]], r"pairs\.txt:2: image number must be ≥ 1"),
        (lambda ls: ls[:-1], r"pairs\.txt:12: the file ends after 11 pairs, but the header announces 12"),
        (lambda ls: [*ls, "A\t1\tB\t2"], r"pairs\.txt:14: extra line after the 12 pairs"),
        (lambda ls: [*ls[:2], ls[1], *ls[3:]], r"pairs\.txt: duplicated trial.*lines 2 and 3"),
    ],
)
def test_lfw_bad_input_names_file_and_line(tmp_path, mutate, pattern):
    text, _ = _lfw_text(3, 2)
    p = tmp_path / "pairs.txt"
    p.write_text("\n".join(mutate(text.splitlines())) + "\n")
    with pytest.raises(ValueError, match=pattern):
        read_lfw_pairs(p)


def test_lfw_empty_and_unreadable(tmp_path):
    p = tmp_path / "pairs.txt"
    p.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_lfw_pairs(p)
    with pytest.raises(ValueError, match="cannot read pair file"):
        read_lfw_pairs(tmp_path / "missing.txt")


# ---------------------------------------------------------------- threshold search and 10-fold accuracy


def _brute_best_threshold(scores: list[float], same: list[bool]) -> tuple[float, float]:
    """Every split of the sorted distinct scores, by explicit loops; ties → the highest threshold."""
    distinct = sorted(set(scores))
    candidates = [-math.inf] + [(lo + hi) / 2 for lo, hi in itertools.pairwise(distinct)] + [math.inf]
    best_t, best_acc = None, -1.0
    for t in candidates:
        correct = 0
        for s, y in zip(scores, same):
            correct += (s >= t) == y
        acc = correct / len(scores)
        if acc >= best_acc:
            best_t, best_acc = t, acc
    return best_t, best_acc


def _brute_lfw(scores, same, folds):
    accs, thrs = [], []
    for f in sorted(set(folds)):
        tr = [(s, y) for s, y, g in zip(scores, same, folds) if g != f]
        te = [(s, y) for s, y, g in zip(scores, same, folds) if g == f]
        t, _ = _brute_best_threshold([s for s, _ in tr], [y for _, y in tr])
        accs.append(sum((s >= t) == y for s, y in te) / len(te))
        thrs.append(t)
    mean = sum(accs) / len(accs)
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / len(accs))
    return mean, std, accs, thrs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_threshold_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(80) < 0.5
    s = np.round(rng.normal(y * 1.0, 1.0), 1)  # rounding creates ties
    t, acc = best_accuracy_threshold(s, y)
    bt, bacc = _brute_best_threshold(s.tolist(), y.tolist())
    assert acc == pytest.approx(bacc, abs=1e-15)
    assert t == pytest.approx(bt, abs=1e-12)


def test_best_threshold_edge_cases():
    # all genuine: accept everything
    assert best_accuracy_threshold(np.array([0.1, 0.5]), np.array([True, True])) == (-math.inf, 1.0)
    # all impostor: reject everything
    assert best_accuracy_threshold(np.array([0.1, 0.5]), np.array([False, False])) == (math.inf, 1.0)
    # separable: midpoint of the gap
    t, acc = best_accuracy_threshold(np.array([0.1, 0.2, 0.7, 0.9]), np.array([False, False, True, True]))
    assert (t, acc) == (pytest.approx(0.45), 1.0)
    with pytest.raises(ValueError, match="same length"):
        best_accuracy_threshold(np.zeros(3), np.zeros(2, bool))
    with pytest.raises(ValueError, match="non-finite"):
        best_accuracy_threshold(np.array([0.0, np.nan]), np.array([True, False]))


@pytest.mark.parametrize("seed", [0, 1])
def test_lfw_accuracy_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    folds = np.repeat(np.arange(10), 40)
    y = np.tile(np.repeat([True, False], 20), 10)
    s = np.round(rng.normal(y * 1.5, 1.0), 2)
    res = lfw_accuracy(torch.from_numpy(s).float().double(), torch.from_numpy(y), torch.from_numpy(folds))
    mean, std, accs, thrs = _brute_lfw(s.tolist(), y.tolist(), folds.tolist())
    np.testing.assert_allclose(res.accuracies, accs, atol=1e-15)
    np.testing.assert_allclose(res.thresholds, thrs, atol=1e-12)
    assert res.mean == pytest.approx(mean, abs=1e-15)
    assert res.std == pytest.approx(std, abs=1e-15)
    sample_sd = math.sqrt(sum((a - mean) ** 2 for a in accs) / 9)
    assert res.standard_error == pytest.approx(sample_sd / math.sqrt(10), abs=1e-15)
    assert res.fold_ids.tolist() == list(range(10))
    assert 0.6 < res.mean < 0.95  # informative scores, not perfect


def test_lfw_accuracy_perfect_and_errors():
    folds = np.repeat(np.arange(10), 4)
    y = np.tile([True, True, False, False], 10)
    res = lfw_accuracy(np.where(y, 0.8, 0.1), y, folds)
    assert res.mean == 1.0 and res.std == 0.0
    np.testing.assert_allclose(res.thresholds, 0.45)
    with pytest.raises(ValueError, match="at least 2 distinct fold ids"):
        lfw_accuracy(np.zeros(4), np.array([1, 0, 1, 0]), np.zeros(4))
    with pytest.raises(ValueError, match="same length"):
        lfw_accuracy(np.zeros(4), np.zeros(4), np.zeros(3))


def test_lfw_end_to_end_with_embeddings(tmp_path):
    """pairs.txt → cosine scores → 10-fold accuracy, against loops over the file."""
    text, expected = _lfw_text(10, 6, seed=3)
    p = tmp_path / "pairs.txt"
    p.write_text(text)
    pairs = read_lfw_pairs(p)
    g = torch.Generator().manual_seed(0)
    # identity-dependent embeddings so that matched pairs score higher
    ident = {}
    table = {}
    for k in pairs.keys():
        person = k.split("/")[0].removesuffix("_A").removesuffix("_B")
        ident.setdefault(person, torch.randn(8, generator=g, dtype=torch.float64))
        table[k] = ident[person] + 0.9 * torch.randn(8, generator=g, dtype=torch.float64)
    scores = score_trials(pairs, table)
    ref = []
    for a, b, _, _ in expected:
        va, vb = table[a].tolist(), table[b].tolist()
        dot = sum(x * y for x, y in zip(va, vb))
        ref.append(dot / math.sqrt(sum(x * x for x in va) * sum(y * y for y in vb)))
    np.testing.assert_allclose(scores.numpy(), ref, atol=1e-12)
    res = lfw_accuracy(scores, pairs.labels, pairs.folds)
    mean, std, accs, _ = _brute_lfw(ref, [e[2] for e in expected], [e[3] for e in expected])
    np.testing.assert_allclose(res.accuracies, accs, atol=1e-12)
    assert (res.mean, res.std) == (pytest.approx(mean), pytest.approx(std))


# ---------------------------------------------------------------- generic label a b lists


def test_generic_pair_list(tmp_path):
    p = Path(tmp_path / "pairs.lst")
    p.write_text("1 img/a.png img/b.png\n0 img/a.png img/c.png\n")
    pairs = read_pair_list(p)
    assert pairs.enroll == ["img/a.png", "img/a.png"] and pairs.labels.tolist() == [True, False]
    p.write_text("1 img/a.png img/b.png\nimg/a.png img/c.png nontarget\n")
    with pytest.raises(ValueError, match=r"pairs\.lst:2: label 'img/a\.png' is not one of \['0', '1'\]"):
        read_pair_list(p)
    p.write_text("1 a b\n1 a b\n")
    with pytest.raises(ValueError, match="lines 1 and 2"):
        read_pair_list(p)
