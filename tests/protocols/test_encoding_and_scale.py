"""Protocol files with a UTF-8 byte-order mark or bytes that are not UTF-8, and cosine scoring at extreme embedding
scales (trial lists, all pairs, cohort normalization, IJB templates): the scores of c·x are those of x."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from veriloss.protocols import all_pairs
from veriloss.protocols.ijb import (
    ijb_scores,
    read_detector_scores,
    read_face_tid_mid,
    read_ijb_protocol,
    read_template_pairs,
)
from veriloss.protocols.pair_lists import read_lfw_pairs, read_pair_list
from veriloss.protocols.score_norm import cohort_stats, normalize_scores
from veriloss.protocols.trials import parse_trials, read_trials, score_trials

BOM = b"\xef\xbb\xbf"
SCALES = [1e-30, 1e-12, 1e19, 1e30]


def _write(path: Path, text: str, bom: bool = True) -> Path:
    path.write_bytes((BOM if bom else b"") + text.encode("utf-8"))
    return path


# ---------------------------------------------------------------------------------------------------- BOM
def test_trial_lists_with_a_bom(tmp_path):
    vox = read_trials(_write(tmp_path / "vox.txt", "1 a.wav b.wav\n0 a.wav c.wav\n"))
    assert vox.enroll == ["a.wav", "a.wav"] and vox.labels.tolist() == [True, False]
    kaldi = read_trials(_write(tmp_path / "kaldi.txt", "a b target\r\na c nontarget\r\n"))
    assert kaldi.enroll == ["a", "a"] and kaldi.labels.tolist() == [True, False]
    assert read_pair_list(_write(tmp_path / "pairs.txt", "1 x y\n")).enroll == ["x"]


def test_lfw_pairs_with_a_bom(tmp_path):
    text = "2 1\nAl 1 2\nAl 1 Bo 1\nCy 1 3\nCy 2 Bo 2\n"
    pairs = read_lfw_pairs(_write(tmp_path / "pairs.txt", text))
    assert pairs.enroll[0] == "Al/Al_0001.jpg" and pairs.folds.tolist() == [0, 0, 1, 1]


def test_ijb_meta_files_with_a_bom(tmp_path):
    names, tids, mids = read_face_tid_mid(_write(tmp_path / "faces.txt", "1.jpg 3 60\n2.jpg 4 61\n"))
    assert names == ["1.jpg", "2.jpg"] and tids.tolist() == [3, 4] and mids.tolist() == [60, 61]
    t1, t2, labels = read_template_pairs(_write(tmp_path / "pairs.txt", "3 4 0\n4 3 1\n"))
    assert t1.tolist() == [3, 4] and t2.tolist() == [4, 3] and labels.tolist() == [False, True]
    det = read_detector_scores(_write(tmp_path / "det.txt", "1.jpg 0.5\n2.jpg 0.75\n"), names)
    assert det.tolist() == [0.5, 0.75]


# ---------------------------------------------------------------------------------------------------- not UTF-8
_BAD_LINE2 = b"\xff\xfeoops"


@pytest.mark.parametrize(
    ("reader", "content"),
    [
        (read_trials, b"1 a b\n0 a " + _BAD_LINE2 + b"\n"),
        (read_pair_list, b"1 a b\n0 a " + _BAD_LINE2 + b"\n"),
        (read_lfw_pairs, b"1 1\nAl 1 " + _BAD_LINE2 + b"\n"),
        (read_face_tid_mid, b"1.jpg 3 60\n" + _BAD_LINE2 + b" 4 61\n"),
        (read_template_pairs, b"3 4 0\n4 " + _BAD_LINE2 + b" 1\n"),
        (read_detector_scores, b"1.jpg 0.5\n" + _BAD_LINE2 + b" 0.7\n"),
    ],
)
def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path, reader, content):
    path = tmp_path / "latin1.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: not valid UTF-8 text (byte 0xff")) as info:
        reader(path)
    assert not isinstance(info.value, UnicodeDecodeError)


def test_a_bom_elsewhere_than_the_start_is_not_dropped():
    with pytest.raises(ValueError, match="not a trial line"):
        parse_trials(["\ufeff1 a b\n"])  # parse_trials takes text as given; only the file readers drop a BOM


# ---------------------------------------------------------------------------------------------------- scoring scale
def _embeddings(n=12, d=8, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("c", SCALES)
def test_trial_scores_are_scale_invariant(c):
    x = _embeddings()
    keys = [f"u{i}" for i in range(len(x))]
    trials = parse_trials([f"{int(i % 3 == 0)} u{i} u{(i * 5 + 1) % 12}\n" for i in range(12)])
    ref = score_trials(trials, x, keys)
    got = score_trials(trials, x * c, keys)
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("c", SCALES)
def test_all_pairs_is_scale_invariant(c):
    y = torch.arange(40) % 8
    x = _embeddings(8, 6, seed=1)[y] + 0.6 * _embeddings(40, 6, seed=2)  # 8 identities with spread
    ref = all_pairs(x, y, far=(0.01,))
    got = all_pairs(x * c, y, far=(0.01,))  # before: every score 0 at c = 1e19 (EER 50 %)
    np.testing.assert_allclose(np.sort(got.genuine), np.sort(ref.genuine), rtol=0, atol=1e-6)
    assert abs(got.eer.eer - ref.eer.eer) < 1e-9 and ref.eer.eer < 0.25
    assert abs(float(got.tar[0]) - float(ref.tar[0])) < 1e-9


@pytest.mark.parametrize("c", SCALES)
def test_cohort_normalization_is_scale_invariant(c):
    enroll, test, cohort = _embeddings(10, 6, 2), _embeddings(10, 6, 3), _embeddings(20, 6, 4)
    scores = torch.nn.functional.cosine_similarity(enroll, test)
    ref = normalize_scores(scores, enroll, test, cohort)
    got = normalize_scores(scores, enroll * c, test * c, cohort * c)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    mean, _ = cohort_stats(enroll * c, cohort)
    torch.testing.assert_close(mean, cohort_stats(enroll, cohort)[0], rtol=1e-5, atol=1e-6)


def _ijb_set(tmp_path: Path):
    faces = [(f"{i}.jpg", 3 + i % 4, 60 + i % 6) for i in range(16)]
    pairs = [(3, 4, 0), (3, 5, 0), (4, 6, 1), (5, 6, 0), (3, 6, 1)]
    (tmp_path / "f.txt").write_text("".join(f"{a} {t} {m}\n" for a, t, m in faces))
    (tmp_path / "p.txt").write_text("".join(f"{a} {b} {y}\n" for a, b, y in pairs))
    (tmp_path / "d.txt").write_text(
        "".join(f"{a} 1 2 3 4 5 6 7 8 9 10 {0.5 + i / 40}\n" for i, (a, _, _) in enumerate(faces))
    )
    return read_ijb_protocol(tmp_path / "f.txt", tmp_path / "p.txt", tmp_path / "d.txt")


@pytest.mark.parametrize("c", [*SCALES, 3e37])
@pytest.mark.parametrize("options", [{}, {"flip": True}, {"normalize_images": True, "use_detector_scores": True}])
def test_ijb_template_scores_are_scale_invariant(tmp_path, c, options):
    protocol = _ijb_set(tmp_path)
    x = _embeddings(16, 5, seed=6)
    x = x / x.abs().max()  # so that c = 3e37 keeps every entry finite
    flipped = _embeddings(16, 5, seed=7)
    flipped = flipped / flipped.abs().max()
    ref, _ = ijb_scores(protocol, x, flipped, **options)
    got, _ = ijb_scores(protocol, x * c, flipped * c, **options)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
