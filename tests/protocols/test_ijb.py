"""IJB-B/C 1:1 protocol: a synthetic set in the real meta-file formats, vs a brute-force pipeline."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from veriloss.protocols.ijb import ijb_scores, read_ijb_protocol, template_features


def _make_set(tmp_path: Path, seed: int = 0):
    """Faces, template pairs and detector scores in the formats of ijbc_face_tid_mid.txt,
    ijbc_template_pair_label.txt and ijbc_name_5pts_score.txt."""
    rng = np.random.default_rng(seed)
    template_ids = [3, 7, 8, 15, 16, 42, 100, 101, 250, 9999]  # not contiguous, not starting at 0
    subject = {t: i // 2 for i, t in enumerate(template_ids)}
    faces = []  # (name, tid, mid)
    n = 0
    for t in template_ids:
        medias = rng.choice(np.arange(60000, 60030), rng.integers(1, 4), replace=False)
        for m in medias:
            for _ in range(rng.integers(1, 4)):
                n += 1
                faces.append((f"{n}.jpg", t, int(m)))
    # the same media id in two templates (IJB lets a media belong to several templates)
    n += 1
    faces.append((f"{n}.jpg", 7, faces[0][2]))
    order = rng.permutation(len(faces))  # the file is not grouped by template
    faces = [faces[i] for i in order]
    pairs = [(a, b, int(subject[a] == subject[b])) for a, b in itertools.combinations(template_ids, 2)]
    pairs = [pairs[i] for i in rng.permutation(len(pairs))[:30]]
    det = rng.uniform(0.3, 1.0, len(faces))
    (tmp_path / "ijbc_face_tid_mid.txt").write_text("".join(f"{a} {t} {m}\n" for a, t, m in faces))
    (tmp_path / "ijbc_template_pair_label.txt").write_text("".join(f"{a} {b} {y}\n" for a, b, y in pairs))
    lmk = rng.uniform(30, 90, (len(faces), 10))
    (tmp_path / "ijbc_name_5pts_score.txt").write_text(
        "".join(f"{f[0]} {' '.join(f'{v:.2f}' for v in lm)} {q!r}\n" for f, lm, q in zip(faces, lmk, det.tolist()))
    )
    return faces, pairs, det


def _brute_force(faces, pairs, det, emb, flipped, flip, norm, use_det):
    """insightface's pipeline written with loops over Python floats."""
    feats = []
    for i in range(len(faces)):
        x = [float(v) for v in emb[i]]
        if flip:
            x = [a + float(b) for a, b in zip(x, flipped[i])]
        if norm:
            r = math.sqrt(sum(v * v for v in x))
            x = [v / r for v in x]
        if use_det:
            x = [v * float(det[i]) for v in x]
        feats.append(x)
    templates = {}
    for t in sorted({f[1] for f in faces}):
        media_feats = []
        for m in sorted({f[2] for f in faces if f[1] == t}):
            rows = [feats[i] for i, f in enumerate(faces) if f[1] == t and f[2] == m]
            media_feats.append([sum(col) / len(rows) for col in zip(*rows)])
        s = [sum(col) for col in zip(*media_feats)]
        r = math.sqrt(sum(v * v for v in s))
        templates[t] = [v / r for v in s]
    return [sum(a * b for a, b in zip(templates[t1], templates[t2])) for t1, t2, _ in pairs]


def _read(tmp_path, det=True, **kw):
    return read_ijb_protocol(
        tmp_path / "ijbc_face_tid_mid.txt",
        tmp_path / "ijbc_template_pair_label.txt",
        tmp_path / "ijbc_name_5pts_score.txt" if det else None,
        **kw,
    )


def test_reading_the_meta_files(tmp_path):
    faces, pairs, det = _make_set(tmp_path)
    proto = _read(tmp_path)
    assert proto.image_names == [f[0] for f in faces]
    assert proto.templates.tolist() == [f[1] for f in faces]
    assert proto.medias.tolist() == [f[2] for f in faces]
    assert proto.pair_t1.tolist() == [p[0] for p in pairs] and proto.pair_t2.tolist() == [p[1] for p in pairs]
    assert proto.labels.tolist() == [bool(p[2]) for p in pairs]
    np.testing.assert_allclose(proto.detector_scores.numpy(), det, rtol=1e-7)
    assert _read(tmp_path, det=False).detector_scores is None


@pytest.mark.parametrize(("flip", "norm", "use_det"), list(itertools.product([False, True], repeat=3)))
def test_scores_match_brute_force_for_every_switch(tmp_path, flip, norm, use_det):
    faces, pairs, _det = _make_set(tmp_path)
    proto = _read(tmp_path)
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(len(faces), 6, generator=g, dtype=torch.float64) * torch.rand(len(faces), 1, generator=g)
    flipped = emb + 0.3 * torch.randn(len(faces), 6, generator=g, dtype=torch.float64)
    scores, labels = ijb_scores(
        proto, emb, flipped, flip=flip, normalize_images=norm, use_detector_scores=use_det, batch_size=7
    )
    det32 = proto.detector_scores.double().numpy()  # the float32 values read from the file
    ref = _brute_force(faces, pairs, det32, emb.numpy(), flipped.numpy(), flip, norm, use_det)
    np.testing.assert_allclose(scores.numpy(), ref, rtol=0, atol=1e-12)
    assert labels.tolist() == [bool(p[2]) for p in pairs]
    # float32 embeddings give float32 scores close to the float64 reference
    s32, _ = ijb_scores(
        proto, emb.float(), flipped.float(), flip=flip, normalize_images=norm, use_detector_scores=use_det
    )
    assert s32.dtype == torch.float32
    np.testing.assert_allclose(s32.numpy(), ref, atol=1e-5)


def test_switches_change_the_scores(tmp_path):
    faces, _, _ = _make_set(tmp_path)
    proto = _read(tmp_path)
    g = torch.Generator().manual_seed(2)
    emb = torch.randn(len(faces), 6, generator=g, dtype=torch.float64) * torch.rand(len(faces), 1, generator=g)
    base, _ = ijb_scores(proto, emb)
    for kw in ({"normalize_images": True}, {"use_detector_scores": True}):
        other, _ = ijb_scores(proto, emb, **kw)
        assert not torch.allclose(base, other)


def test_template_features_are_unit_and_sorted(tmp_path):
    faces, _, _ = _make_set(tmp_path)
    proto = _read(tmp_path)
    emb = torch.randn(len(faces), 4, dtype=torch.float64)
    tids, feats = template_features(emb, proto.templates, proto.medias)
    assert tids.tolist() == sorted({f[1] for f in faces})
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(len(tids), dtype=torch.float64))


# ---------------------------------------------------------------- bad input


def _rewrite(path: Path, lines_fn):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines_fn(lines)) + "\n")


@pytest.mark.parametrize(
    ("file", "edit", "pattern"),
    [
        (
            "ijbc_face_tid_mid.txt",
            lambda ls: [*ls[:2], "3.jpg 3", *ls[3:]],
            r"face_tid_mid\.txt:3: expected 3 fields",
        ),
        (
            "ijbc_face_tid_mid.txt",
            lambda ls: [*ls[:1], "2.jpg x 5", *ls[2:]],
            r"face_tid_mid\.txt:2: template id 'x'",
        ),
        ("ijbc_face_tid_mid.txt", lambda ls: ["1.jpg 3 m1", *ls[1:]], r"face_tid_mid\.txt:1: media id 'm1'"),
        (
            "ijbc_template_pair_label.txt",
            lambda ls: [*ls[:4], "3 7", *ls[5:]],
            r"pair_label\.txt:5: expected 3 fields",
        ),
        (
            "ijbc_template_pair_label.txt",
            lambda ls: [*ls[:1], "3 7 2", *ls[2:]],
            r"pair_label\.txt:2: label must be 1",
        ),
        (
            "ijbc_template_pair_label.txt",
            lambda ls: [*ls, "", "3 5 0"],
            r"pair_label\.txt: 1 pair\(s\) use template ids "
            r"that no image of .*face_tid_mid\.txt belongs to: 5 \(line 32\)",
        ),
        (
            "ijbc_template_pair_label.txt",
            lambda ls: [*ls, ls[3]],
            r"pair_label\.txt: 1 duplicated template pair\(s\).*"
            r"lines 4 and 31",
        ),
        (
            "ijbc_template_pair_label.txt",
            lambda ls: [*ls[:10], "", "  ", *ls[10:], ls[12]],
            r"pair_label\.txt: 1 duplicated template pair\(s\).*lines 15 and 33",
        ),
        (
            "ijbc_name_5pts_score.txt",
            lambda ls: [*ls[:2], ls[3], ls[2], *ls[4:]],
            r"5pts_score\.txt:3: image '.*' does "
            r"not match face list entry 3",
        ),
        (
            "ijbc_name_5pts_score.txt",
            lambda ls: ls[:-1],
            r"5pts_score\.txt: \d+ detector scores for \d+ images",
        ),
        (
            "ijbc_name_5pts_score.txt",
            lambda ls: [ls[0].rsplit(" ", 1)[0] + " high", *ls[1:]],
            r"5pts_score\.txt:1: detector score 'high' is not a number",
        ),
    ],
)
def test_bad_meta_files_name_file_and_line(tmp_path, file, edit, pattern):
    _make_set(tmp_path)
    _rewrite(tmp_path / file, edit)
    with pytest.raises(ValueError, match=pattern):
        _read(tmp_path)


def test_duplicates_can_be_allowed_and_missing_files_are_reported(tmp_path):
    _make_set(tmp_path)
    _rewrite(tmp_path / "ijbc_template_pair_label.txt", lambda ls: [*ls, ls[0]])
    assert _read(tmp_path, allow_duplicates=True).num_pairs == 31
    (tmp_path / "ijbc_name_5pts_score.txt").unlink()
    with pytest.raises(ValueError, match=r"cannot read IJB meta file .*5pts_score\.txt"):
        _read(tmp_path, allow_duplicates=True)


def test_bad_scoring_arguments(tmp_path):
    faces, _, _ = _make_set(tmp_path)
    proto = _read(tmp_path)
    emb = torch.randn(len(faces), 4)
    with pytest.raises(ValueError, match="one row per image"):
        ijb_scores(proto, emb[:-1])
    with pytest.raises(ValueError, match="flip=True needs the flipped-image embeddings"):
        ijb_scores(proto, emb, flip=True)
    with pytest.raises(ValueError, match=r"flipped must have shape|features per row"):
        ijb_scores(proto, emb, torch.randn(len(faces), 3), flip=True)
    with pytest.raises(ValueError, match="no detector scores"):
        ijb_scores(_read(tmp_path, det=False), emb, use_detector_scores=True)
    zero = emb.clone()
    zero[proto.templates == 42] = 0
    with pytest.raises(ValueError, match=r"pool to an all-zero feature .* template ids \[42\]"):
        ijb_scores(proto, zero)
    nan = emb.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        ijb_scores(proto, nan)
