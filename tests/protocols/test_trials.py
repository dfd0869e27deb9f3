"""Trial lists: parsing (real VoxCeleb1-O lists, Kaldi format, bad input); cosine scoring vs brute force."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from veriloss.protocols.trials import TrialList, parse_trials, read_trials, score_trials

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "voxceleb1_trials"
VERI_TEST = DATA / "veri_test.txt"
VERI_CLEAN = DATA / "veri_test_cleaned.txt"
needs_vox = pytest.mark.skipif(
    not (VERI_TEST.is_file() and VERI_CLEAN.is_file()),
    reason=f"VoxCeleb1 trial lists not found under {DATA} (shared data folder absent)",
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _cosine_loops(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


# ---------------------------------------------------------------- real lists


@needs_vox
def test_real_voxceleb1_original_counts():
    trials = read_trials(VERI_TEST)
    assert len(trials) == 37_720
    assert trials.num_target == 18_860 and trials.num_nontarget == 18_860
    keys = trials.keys()
    assert len(keys) == 4_715
    assert len({k.split("/")[0] for k in keys}) == 40
    assert trials.enroll[0] == "id10270/x6uYqmx31kE/00001.wav"
    assert trials.test[0] == "id10270/8jEAjG6SegY/00008.wav"
    assert bool(trials.labels[0]) and not bool(trials.labels[1])
    assert trials.line_numbers[0] == 1 and trials.line_numbers[-1] == 37_720
    # the labels equal the ground-truth file shipped with the real scores
    gt = np.load(DATA / "vgg_thin_resnet34_scores" / "groundtruth_labels.npy")
    np.testing.assert_array_equal(trials.labels.numpy(), gt.astype(bool))
    # a target trial pairs the same speaker, a non-target different speakers
    same = [a.split("/")[0] == b.split("/")[0] for a, b in zip(trials.enroll, trials.test)]
    np.testing.assert_array_equal(np.array(same), trials.labels.numpy())


@needs_vox
def test_real_voxceleb1_cleaned_counts_without_trailing_newline():
    assert not VERI_CLEAN.read_bytes().endswith(b"\n")
    trials = read_trials(VERI_CLEAN, fmt="voxceleb")
    assert len(trials) == 37_611
    assert trials.num_target == 18_802 and trials.num_nontarget == 18_809
    assert len(trials.keys()) == 4_708
    assert len({k.split("/")[0] for k in trials.keys()}) == 40
    assert trials.line_numbers[-1] == 37_611


@needs_vox
def test_real_list_reversed_pairs_are_not_duplicates():
    trials = read_trials(VERI_TEST)
    pairs = set(zip(trials.enroll, trials.test))
    reversed_ = sum((b, a) in pairs for a, b in pairs)
    assert reversed_ == 2 * 338  # 338 unordered pairs listed in both orders; accepted


@needs_vox
def test_real_list_in_kaldi_format_parses_identically(tmp_path):
    vox = read_trials(VERI_TEST)
    lines = [f"{a} {b} {'target' if y else 'nontarget'}" for a, b, y in zip(vox.enroll, vox.test, vox.labels.tolist())]
    kaldi = read_trials(_write(tmp_path / "trials", "\n".join(lines) + "\n"))
    assert kaldi.enroll == vox.enroll and kaldi.test == vox.test
    assert torch.equal(kaldi.labels, vox.labels)


@needs_vox
def test_real_list_scoring_matches_brute_force():
    trials = read_trials(VERI_TEST)
    keys = trials.keys()
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(len(keys), 16, generator=g, dtype=torch.float64)
    scores = score_trials(trials, emb, keys=keys, batch_size=5000)
    row = {k: i for i, k in enumerate(keys)}
    e = emb.numpy()
    idx = np.random.default_rng(0).choice(len(trials), 300, replace=False)
    for i in idx:  # brute force on a random subset of the 37,720 trials
        ref = _cosine_loops(e[row[trials.enroll[i]]].tolist(), e[row[trials.test[i]]].tolist())
        assert scores[i].item() == pytest.approx(ref, abs=1e-12)


# ---------------------------------------------------------------- parsing


def test_kaldi_and_voxceleb_small_lists(tmp_path):
    vox = read_trials(_write(tmp_path / "v.txt", "1 a b\n\n0 a c\n1 c d\n"))
    assert vox.enroll == ["a", "a", "c"] and vox.test == ["b", "c", "d"]
    assert vox.labels.tolist() == [True, False, True]
    assert vox.line_numbers == [1, 3, 4]
    kal = read_trials(_write(tmp_path / "k.txt", "a b target\na c nontarget\n  c d   target  \n"))
    assert kal.labels.tolist() == [True, False, True] and kal.test == ["b", "c", "d"]
    assert kal.keys() == ["a", "b", "c", "d"]


def test_explicit_format_must_match(tmp_path):
    p = _write(tmp_path / "k.txt", "a b target\n")
    with pytest.raises(ValueError, match=r"k\.txt:1: label 'a' is not one of \['0', '1'\] \(voxceleb format\)"):
        read_trials(p, fmt="voxceleb")
    with pytest.raises(ValueError, match="fmt must be one of"):
        read_trials(p, fmt="nist")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("1 a b\n0 a c\n1 a\n", r"bad\.txt:3: expected 3 fields 'label enroll test'"),
        ("1 a b\n2 a c\n", r"bad\.txt:2: label '2' is not one of \['0', '1'\]"),
        ("1 a b\n\na c nontarget\n", r"bad\.txt:3: label 'a' is not one of"),
        ("a b target\na c maybe\n", r"bad\.txt:2: label 'maybe' is not one of \['nontarget', 'target'\]"),
        ("a b c d\n", r"bad\.txt:1: not a trial line"),
        ("1 x target\n", r"bad\.txt:1: cannot tell the trial format"),
        ("\n\n", r"bad\.txt: the trial list is empty"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, text, pattern):
    with pytest.raises(ValueError, match=pattern):
        read_trials(_write(tmp_path / "bad.txt", text))


def test_duplicated_trials_name_both_lines(tmp_path):
    p = _write(tmp_path / "dup.txt", "1 a b\n0 a c\n1 b a\n\n1 a b\n")
    with pytest.raises(ValueError, match=r"dup\.txt: duplicated trial.*lines 1 and 5 \(a b\)"):
        read_trials(p)
    trials = read_trials(p, allow_duplicates=True)
    assert len(trials) == 4


def test_unreadable_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read trial file"):
        read_trials(tmp_path / "nope.txt")


# ---------------------------------------------------------------- scoring


def _small_case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    keys = [f"spk{i % 4}/utt{i}.wav" for i in range(9)]
    emb = torch.randn(9, 5, generator=g, dtype=torch.float64)
    rng = np.random.default_rng(seed)
    lines = []
    seen = set()
    while len(lines) < 20:
        a, b = rng.choice(9, 2, replace=False)
        if (a, b) in seen:
            continue
        seen.add((a, b))
        lines.append(f"{int(a % 4 == b % 4)} {keys[a]} {keys[b]}")
    return keys, emb, parse_trials(lines)


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_score_trials_matches_brute_force(batch_size):
    keys, emb, trials = _small_case()
    table = {k: emb[i] for i, k in enumerate(keys)}
    ref = [_cosine_loops(table[a].tolist(), table[b].tolist()) for a, b in zip(trials.enroll, trials.test)]
    by_matrix = score_trials(trials, emb, keys=keys, batch_size=batch_size)
    by_dict = score_trials(trials, table, batch_size=batch_size)
    by_numpy = score_trials(trials, {k: v.numpy() for k, v in table.items()}, batch_size=batch_size)
    assert by_matrix.dtype == torch.float64
    np.testing.assert_allclose(by_matrix.numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(by_dict.numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(by_numpy.numpy(), ref, rtol=0, atol=1e-12)
    # float32 embeddings: float32 scores, close to the float64 reference
    f32 = score_trials(trials, emb.float(), keys=keys)
    assert f32.dtype == torch.float32
    np.testing.assert_allclose(f32.numpy(), ref, atol=1e-6)


def test_extra_embeddings_are_ignored_and_order_does_not_matter():
    keys, emb, trials = _small_case(1)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(3))
    extra = torch.randn(3, 5, dtype=torch.float64)
    keys2 = [keys[i] for i in perm.tolist()] + ["x", "y", "z"]
    emb2 = torch.cat([emb[perm], extra])
    torch.testing.assert_close(score_trials(trials, emb2, keys=keys2), score_trials(trials, emb, keys=keys))


def test_missing_keys_are_reported_by_name():
    keys, emb, trials = _small_case()
    have = trials.keys()[:2]
    table = {k: emb[0] for k in have}
    missing = trials.keys()[2:]
    with pytest.raises(ValueError, match=rf"{len(missing)} key\(s\) are missing from the embeddings: ") as err:
        score_trials(trials, table)
    msg = str(err.value)
    assert all(k in msg for k in missing[:5])
    assert f"(and {len(missing) - 5} more)" in msg
    drop = trials.keys()[3]
    keep = [i for i, k in enumerate(keys) if k != drop]
    with pytest.raises(ValueError, match=rf"1 key\(s\) are missing from the embeddings: {drop}$"):
        score_trials(trials, emb[keep], keys=[keys[i] for i in keep])


def test_bad_embedding_inputs():
    keys, emb, trials = _small_case()
    with pytest.raises(ValueError, match=r"keys .* is required"):
        score_trials(trials, emb)
    with pytest.raises(ValueError, match=r"appear more than once in keys"):
        score_trials(trials, torch.cat([emb, emb[:1]]), keys=[*keys, keys[0]])
    with pytest.raises(ValueError, match=r"must have shape \(len\(keys\), dim\)"):
        score_trials(trials, emb[:5], keys=keys)
    zero = emb.clone()
    zero[keys.index(trials.enroll[0])] = 0
    with pytest.raises(ValueError, match=rf"all-zero.*{trials.enroll[0]}"):
        score_trials(trials, zero, keys=keys)
    nan = emb.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        score_trials(trials, nan, keys=keys)
    with pytest.raises(ValueError, match="batch_size"):
        score_trials(trials, emb, keys=keys, batch_size=0)


def test_trial_list_is_a_plain_container():
    t = TrialList(["a"], ["b"], torch.tensor([True]), [1])
    assert len(t) == 1 and t.keys() == ["a", "b"] and t.folds is None
