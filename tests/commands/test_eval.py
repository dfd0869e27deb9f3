"""``veriloss eval``: real VoxCeleb1-O scores reproduce SOURCE.md; every embeddings protocol equals an independent
computation on small synthetic files; bad input gives a clean error (exit 2) that names the problem."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from veriloss.cli import main
from veriloss.metrics import auc, eer, min_dcf, tar_at_far
from veriloss.protocols import all_pairs
from veriloss.protocols.pair_lists import lfw_accuracy
from veriloss.protocols.score_norm import normalize_scores

from ..voxceleb_data import SCORES, TABLE, VOX, needs_vox, score_file

FARS = "1e-6,1e-5,1e-3,1e-2"


def _run(argv, capsys):
    rc = main(["eval", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _ok(argv, capsys, out_dir: Path) -> dict:
    rc, out, err = _run([*argv, "--out", out_dir], capsys)
    assert rc == 0, err
    assert "| system |" in out
    return json.loads((out_dir / "metrics.json").read_text())


def _source_row(rec: dict) -> tuple[str, str, str, str]:
    tar = {t["far"]: t for t in rec["tar_at_far"]}
    assert not tar[1e-6]["measurable"] and not tar[1e-5]["measurable"]  # 18,860 non-targets
    return (
        f"{100 * rec['eer']:.2f}%",
        f"{rec['min_dcf'][0]['min_dcf']:.3f}",
        f"{tar[1e-2]['tar']:.3f}",
        f"{tar[1e-3]['tar']:.3f}",
    )


# --------------------------------------------------------------------------------------------- real VoxCeleb scores
@needs_vox
@pytest.mark.parametrize("truth", ["labels", "trials"])
def test_voxceleb_scores_reproduce_source_table(truth, capsys, tmp_path):
    """All six systems in one run (one row and one curve each), against the trial list or the label array."""
    argv = ["scores", "--far", FARS]
    for name, *_ in TABLE:
        argv += ["--scores", score_file(name), "--name", name]
    argv += (
        ["--labels", SCORES / "groundtruth_labels.npy"] if truth == "labels" else ["--trials", VOX / "veri_test.txt"]
    )
    if truth == "labels":
        argv.append("--no-plots")
    doc = _ok(argv, capsys, tmp_path / "out")
    assert [r["name"] for r in doc["systems"]] == [r[0] for r in TABLE]
    for rec, (_, *expected) in zip(doc["systems"], TABLE):
        assert (rec["n_genuine"], rec["n_impostor"]) == (18860, 18860)
        assert _source_row(rec) == tuple(expected)
    md = (tmp_path / "out" / "metrics.md").read_text()
    assert md.count("\n| gvlad_") == 6 and "not measurable" in md
    if truth == "trials":
        for png in ("roc.png", "det.png", "hist.png"):
            with Image.open(tmp_path / "out" / png) as im:
                assert im.format == "PNG" and im.size[0] >= 700 and im.size[1] >= 500
    else:
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json", "metrics.md"]


@needs_vox
def test_voxceleb_text_score_files(capsys, tmp_path):
    """'enroll test score' lines in shuffled order, and one score per line, give the numbers of the .npy."""
    name, *expected = TABLE[2]
    scores = np.load(score_file(name))
    lines = (VOX / "veri_test.txt").read_text().split("\n")
    trials = [line.split() for line in lines if line.strip()]
    keyed = [f"{e} {t} {float(s)!r}\n" for (_, e, t), s in zip(trials, scores)]
    random.Random(0).shuffle(keyed)
    (tmp_path / "keyed.txt").write_text("".join(keyed))
    (tmp_path / "plain.txt").write_text("".join(f"{float(s)!r}\n" for s in scores))
    base = ["scores", "--trials", VOX / "veri_test.txt", "--far", FARS, "--no-plots"]
    for i, f in enumerate(("keyed.txt", "plain.txt")):
        doc = _ok([*base, "--scores", tmp_path / f], capsys, tmp_path / str(i))
        assert _source_row(doc["systems"][0]) == tuple(expected)
    doc = _ok(
        [
            "scores",
            "--labels",
            SCORES / "groundtruth_labels.npy",
            "--scores",
            tmp_path / "plain.txt",
            "--no-plots",
            "--far",
            FARS,
        ],
        capsys,
        tmp_path / "2",
    )
    assert _source_row(doc["systems"][0]) == tuple(expected)


def test_default_output_directory_and_name(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    np.save("sysA.npy", rng.normal(size=200))
    np.save("labels.npy", np.arange(200) % 2)
    rc, out, err = _run(["scores", "--scores", "sysA.npy", "--labels", "labels.npy", "--no-plots"], capsys)
    assert rc == 0, err
    doc = json.loads((tmp_path / "eval" / "sysA" / "metrics.json").read_text())
    assert doc["systems"][0]["name"] == "sysA" and "| sysA |" in out
    assert [t["far"] for t in doc["systems"][0]["tar_at_far"]] == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
    assert [m["p_target"] for m in doc["systems"][0]["min_dcf"]] == [0.01, 0.05]


# --------------------------------------------------------------------------------------------- synthetic embeddings
def _embeddings(tmp_path: Path, n_ids=15, per=4, d=8, seed=0, stem="emb", labels=True, keys=True):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_ids), per)
    x = rng.normal(size=(n_ids, d))[y] + 0.8 * rng.normal(size=(y.size, d))
    k = [f"id{c:02d}/utt{j}.wav" for c in range(n_ids) for j in range(per)]
    np.save(tmp_path / f"{stem}.npy", x)
    if labels:
        np.save(tmp_path / f"{stem}.labels.npy", y.astype(np.int64))
    if keys:
        (tmp_path / f"{stem}.keys.txt").write_text("\n".join(k) + "\n")
    return x, y, k


def _cos(a, b) -> float:
    a, b = [float(v) for v in a], [float(v) for v in b]
    return sum(p * q for p, q in zip(a, b)) / math.sqrt(sum(p * p for p in a) * sum(q * q for q in b))


def _expected(s: np.ndarray, same: np.ndarray, fars, ps=(0.01, 0.05)):
    g, i = s[same], s[~same]
    return eer(g, i).eer, [min_dcf(g, i, p).min_dcf for p in ps], [t.tar for t in tar_at_far(g, i, fars)], auc(g, i)


def _got(rec: dict):
    return rec["eer"], [m["min_dcf"] for m in rec["min_dcf"]], [t["tar"] for t in rec["tar_at_far"]], rec["auc"]


def test_all_pairs_equals_protocol(capsys, tmp_path):
    x, y, _ = _embeddings(tmp_path)
    fars = [1e-4, 1e-3, 1e-2]
    doc = _ok(
        ["embeddings", tmp_path / "emb.npy", "--protocol", "all-pairs", "--far", "1e-4,1e-3,1e-2"],
        capsys,
        tmp_path / "out",
    )
    (rec,) = doc["systems"]
    res = all_pairs(torch.from_numpy(x), torch.from_numpy(y), far=fars, p_targets=(0.01, 0.05))
    assert (rec["n_genuine"], rec["n_impostor"]) == (res.n_genuine, res.n_impostor) == (90, 1680)
    assert _got(rec) == (res.eer.eer, [m.min_dcf for m in res.min_dcf], [t.tar for t in res.tar], res.auc)
    assert [t["measurable"] for t in rec["tar_at_far"]] == [False, True, True]
    assert doc["meta"]["protocol"] == "all-pairs" and rec["name"] == "emb"
    with Image.open(tmp_path / "out" / "det.png") as im:
        assert im.format == "PNG"
    # the same from a .pt dict with labels inside
    torch.save({"embeddings": torch.from_numpy(x), "labels": torch.from_numpy(y)}, tmp_path / "e.pt")
    doc2 = _ok(
        ["embeddings", tmp_path / "e.pt", "--protocol", "all-pairs", "--far", "1e-4,1e-3,1e-2", "--no-plots"],
        capsys,
        tmp_path / "out2",
    )
    assert _got(doc2["systems"][0]) == _got(rec)


def _trial_list(keys, y, n=150, seed=1):
    rng = random.Random(seed)
    pairs = rng.sample(list(itertools.permutations(range(len(keys)), 2)), n)
    return [(a, b, bool(y[a] == y[b])) for a, b in pairs]


@pytest.mark.parametrize("fmt", ["kaldi", "voxceleb"])
def test_trials_equal_brute_force(fmt, capsys, tmp_path):
    x, y, keys = _embeddings(tmp_path)
    trials = _trial_list(keys, y)
    if fmt == "kaldi":
        text = "".join(f"{keys[a]} {keys[b]} {'target' if s else 'nontarget'}\n" for a, b, s in trials)
    else:
        text = "".join(f"{int(s)} {keys[a]} {keys[b]}\n" for a, b, s in trials)
    (tmp_path / "trials.txt").write_text(text)
    doc = _ok(
        [
            "embeddings",
            tmp_path / "emb.npy",
            "--protocol",
            "trials",
            tmp_path / "trials.txt",
            "--far",
            "0.01,0.1",
            "--no-plots",
        ],
        capsys,
        tmp_path / "out",
    )
    s = np.array([_cos(x[a], x[b]) for a, b, _ in trials])
    same = np.array([t[2] for t in trials])
    got, want = _got(doc["systems"][0]), _expected(s, same, [0.01, 0.1])
    assert got[0] == pytest.approx(want[0], rel=1e-12) and got[1:] == want[1:]
    assert doc["systems"][0]["n_genuine"] == int(same.sum())


def test_score_normalization(capsys, tmp_path):
    x, y, keys = _embeddings(tmp_path)
    trials = _trial_list(keys, y)
    (tmp_path / "trials.txt").write_text("".join(f"{int(s)} {keys[a]} {keys[b]}\n" for a, b, s in trials))
    cohort = np.random.default_rng(9).normal(size=(40, 8))
    np.save(tmp_path / "cohort.npy", cohort)
    raw = torch.tensor([_cos(x[a], x[b]) for a, b, _ in trials], dtype=torch.float64)
    ea = torch.from_numpy(x[[a for a, _, _ in trials]])
    eb = torch.from_numpy(x[[b for _, b, _ in trials]])
    same = np.array([t[2] for t in trials])
    for opt, method, k in (("s", "s-norm", None), ("as", "as-norm", 10), ("z", "z-norm", None)):
        argv = [
            "embeddings",
            tmp_path / "emb.npy",
            "--protocol",
            "trials",
            "--protocol-file",
            tmp_path / "trials.txt",
            "--score-norm",
            opt,
            "--cohort",
            tmp_path / "cohort.npy",
            "--far",
            "0.01,0.1",
            "--no-plots",
        ]
        if k:
            argv += ["--top-k", k]
        doc = _ok(argv, capsys, tmp_path / opt)
        s = normalize_scores(raw, ea, eb, torch.from_numpy(cohort), method=method, top_k=k).numpy()
        got, want = _got(doc["systems"][0]), _expected(s, same, [0.01, 0.1])
        assert got[0] == pytest.approx(want[0], rel=1e-9) and got[1:] == want[1:]
        assert doc["meta"]["score_norm"] == {"method": method, "cohort": str(tmp_path / "cohort.npy"), "top_k": k}


def test_lfw_pairs(capsys, tmp_path):
    rng = random.Random(2)
    names = [f"Person_{c}" for c in "ABCDEFGHIJKLMNOPQRST"]
    imgs = {n: 4 for n in names}
    per_fold = 3
    used, lines = set(), ["10\t3"]
    folds = []
    for _fold in range(10):
        block = []
        while len(block) < per_fold:
            n = rng.choice(names)
            i, j = sorted(rng.sample(range(1, imgs[n] + 1), 2))
            if (n, i, n, j) not in used:
                used.add((n, i, n, j))
                block.append((n, i, n, j))
        while len(block) < 2 * per_fold:
            n1, n2 = rng.sample(names, 2)
            i, j = rng.randint(1, 4), rng.randint(1, 4)
            if (n1, i, n2, j) not in used:
                used.add((n1, i, n2, j))
                block.append((n1, i, n2, j))
        folds.append(block)
        lines += [f"{a}\t{i}\t{j}" for a, i, _, j in block[:per_fold]]
        lines += [f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in block[per_fold:]]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    keys = [f"{n}/{n}_{i:04d}.jpg" for n in names for i in range(1, 5)]
    ident = np.repeat(np.arange(len(names)), 4)
    x = np.random.default_rng(4).normal(size=(len(names), 6))[ident] + 0.9 * np.random.default_rng(5).normal(
        size=(len(keys), 6)
    )
    np.save(tmp_path / "lfw.npy", x)
    (tmp_path / "lfw.keys.txt").write_text("\n".join(keys) + "\n")
    doc = _ok(
        [
            "embeddings",
            tmp_path / "lfw.npy",
            "--protocol",
            "pairs",
            tmp_path / "pairs.txt",
            "--far",
            "0.1",
            "--no-plots",
        ],
        capsys,
        tmp_path / "out",
    )
    row = {k: i for i, k in enumerate(keys)}
    flat = [p for block in folds for p in block]
    s = np.array([_cos(x[row[f"{a}/{a}_{i:04d}.jpg"]], x[row[f"{b}/{b}_{j:04d}.jpg"]]) for a, i, b, j in flat])
    same = np.array([a == b for a, _, b, _ in flat])
    fold_ids = np.repeat(np.arange(10), 2 * per_fold)
    acc = lfw_accuracy(s, same, fold_ids)
    rec = doc["systems"][0]
    assert rec["fold_accuracy"]["mean"] == pytest.approx(acc.mean, abs=1e-12)
    assert rec["fold_accuracy"]["std"] == pytest.approx(acc.std, abs=1e-12)
    assert rec["fold_accuracy"]["accuracies"] == pytest.approx(acc.accuracies.tolist(), abs=1e-12)
    got, want = _got(rec), _expected(s, same, [0.1])
    assert got[0] == pytest.approx(want[0], rel=1e-12) and got[1:] == want[1:]
    md = (tmp_path / "out" / "metrics.md").read_text()
    assert f"| {100 * acc.mean:.2f} ± {100 * acc.std:.2f} |" in md and "10-fold acc %" in md
    assert doc["meta"]["list_format"] == "lfw"


def test_generic_pair_list(capsys, tmp_path):
    x, y, keys = _embeddings(tmp_path)
    pairs = _trial_list(keys, y, n=80, seed=3)
    (tmp_path / "pairs.txt").write_text("".join(f"{int(s)} {keys[a]} {keys[b]}\n" for a, b, s in pairs))
    torch.save({"embeddings": torch.from_numpy(x), "keys": keys}, tmp_path / "emb.pt")  # keys inside the .pt
    doc = _ok(
        [
            "embeddings",
            tmp_path / "emb.pt",
            "--protocol",
            "pairs",
            tmp_path / "pairs.txt",
            "--far",
            "0.05",
            "--no-plots",
        ],
        capsys,
        tmp_path / "out",
    )
    s = np.array([_cos(x[a], x[b]) for a, b, _ in pairs])
    same = np.array([p[2] for p in pairs])
    got, want = _got(doc["systems"][0]), _expected(s, same, [0.05])
    assert got[0] == pytest.approx(want[0], rel=1e-12) and got[1:] == want[1:]
    assert "fold_accuracy" not in doc["systems"][0]


def _ijb_set(tmp_path: Path):
    """A tiny IJB set in the real meta formats (faces not grouped by template, several media per template)."""
    rng = np.random.default_rng(6)
    tids = [11, 12, 20, 21, 30, 31, 40, 41]
    subject = {t: t // 10 for t in tids}
    faces = []
    for t in tids:
        for m in rng.choice(np.arange(500, 520), 2, replace=False):
            for _ in range(rng.integers(1, 3)):
                faces.append((f"{len(faces) + 1}.jpg", t, int(m)))
    faces = [faces[i] for i in rng.permutation(len(faces))]
    pairs = [(a, b, int(subject[a] == subject[b])) for a, b in itertools.combinations(tids, 2)]
    q = rng.uniform(0.4, 1.0, len(faces))
    meta = tmp_path / "IJBC" / "meta"
    meta.mkdir(parents=True)
    (meta / "ijbc_face_tid_mid.txt").write_text("".join(f"{n} {t} {m}\n" for n, t, m in faces))
    (meta / "ijbc_template_pair_label.txt").write_text("".join(f"{a} {b} {y}\n" for a, b, y in pairs))
    (meta / "ijbc_name_5pts_score.txt").write_text(
        "".join(f"{n} {' '.join(['50.0'] * 10)} {s!r}\n" for (n, _, _), s in zip(faces, q.tolist()))
    )
    centers = {s: rng.normal(size=6) for s in set(subject.values())}
    emb = np.stack([centers[subject[t]] + rng.normal(size=6) for _, t, _ in faces])
    flipped = emb + 0.3 * rng.normal(size=emb.shape)
    np.save(tmp_path / "ijb.npy", emb)
    np.save(tmp_path / "ijb_flip.npy", flipped)
    return faces, pairs, q, emb, flipped


def _ijb_brute(faces, pairs, q, emb, flipped, flip, norm, det):
    feats = []
    for i in range(len(faces)):
        v = [float(a) + (float(b) if flip else 0.0) for a, b in zip(emb[i], flipped[i])]
        if norm:
            r = math.sqrt(sum(a * a for a in v))
            v = [a / r for a in v]
        feats.append([a * float(q[i]) for a in v] if det else v)
    tmpl = {}
    for t in {f[1] for f in faces}:
        total = [0.0] * len(feats[0])
        for m in sorted({f[2] for f in faces if f[1] == t}):
            rows = [feats[i] for i, f in enumerate(faces) if f[1] == t and f[2] == m]
            total = [s + sum(col) / len(rows) for s, col in zip(total, zip(*rows))]
        tmpl[t] = total
    return np.array([_cos(tmpl[a], tmpl[b]) for a, b, _ in pairs]), np.array([bool(y) for _, _, y in pairs])


@pytest.mark.parametrize("switches", [(), ("--flip", "--norm", "--detector"), ("--detector",)])
def test_ijb_equals_brute_force(switches, capsys, tmp_path):
    faces, pairs, q, emb, flipped = _ijb_set(tmp_path)
    argv = [
        "embeddings",
        tmp_path / "ijb.npy",
        "--protocol",
        "ijb",
        tmp_path / "IJBC",
        "--far",
        "0.05,0.2",
        "--no-plots",
        *switches,
    ]
    if "--flip" in switches:
        argv += ["--flipped", tmp_path / "ijb_flip.npy"]
    doc = _ok(argv, capsys, tmp_path / "out")
    s, same = _ijb_brute(
        faces, pairs, q, emb, flipped, "--flip" in switches, "--norm" in switches, "--detector" in switches
    )
    got, want = _got(doc["systems"][0]), _expected(s, same, [0.05, 0.2])
    assert got[0] == pytest.approx(want[0], rel=1e-9) and got[1:] == want[1:]
    assert (doc["systems"][0]["n_genuine"], doc["systems"][0]["n_impostor"]) == (4, 24)
    assert doc["meta"]["flip"] == ("--flip" in switches) and doc["meta"]["detector"] == ("--detector" in switches)


# --------------------------------------------------------------------------------------------- bad input
def _err(argv, capsys, *fragments):
    rc, _, err = _run([*argv, "--no-plots"], capsys)
    assert rc == 2
    assert err.startswith("veriloss eval: error: ")
    for f in fragments:
        assert f in err, err
    return err


@pytest.mark.parametrize(
    "far,fragment",
    [
        ("0,1e-3", "--far: 0 is outside the open interval (0, 1)"),
        ("1e-3,1", "--far: 1 is outside the open interval (0, 1)"),
        ("1.5", "--far: 1.5 is outside the open interval (0, 1)"),
        ("-1e-3", "--far: -1e-3 is outside the open interval (0, 1)"),
        ("1e-3,abc", "--far: 'abc' is not a number"),
        ("1e-3,,1e-2", "--far: '' is not a number"),
        ("nan", "--far: nan is outside the open interval (0, 1)"),
    ],
)
def test_far_outside_unit_interval(far, fragment, capsys, tmp_path):
    np.save(tmp_path / "s.npy", np.arange(4.0))
    np.save(tmp_path / "l.npy", np.array([0, 1, 0, 1]))
    _err(["scores", "--scores", tmp_path / "s.npy", "--labels", tmp_path / "l.npy", f"--far={far}"], capsys, fragment)
    _embeddings(tmp_path)
    _err(["embeddings", tmp_path / "emb.npy", "--protocol", "all-pairs", f"--far={far}"], capsys, fragment)


def test_p_target_outside_unit_interval(capsys, tmp_path):
    np.save(tmp_path / "s.npy", np.arange(4.0))
    np.save(tmp_path / "l.npy", np.array([0, 1, 0, 1]))
    argv = ["scores", "--scores", tmp_path / "s.npy", "--labels", tmp_path / "l.npy", "--p-target", "0.01,2"]
    _err(argv, capsys, "--p-target: 2 is outside the open interval (0, 1)")


def test_missing_files(capsys, tmp_path):
    np.save(tmp_path / "l.npy", np.array([0, 1]))
    _err(
        ["scores", "--scores", tmp_path / "nope.npy", "--labels", tmp_path / "l.npy"],
        capsys,
        "--scores: file not found",
        "nope.npy",
    )
    _err(
        ["scores", "--scores", tmp_path / "l.npy", "--trials", tmp_path / "t.txt"],
        capsys,
        "--trials: file not found",
        "t.txt",
    )
    _err(["embeddings", tmp_path / "none.npy", "--protocol", "all-pairs"], capsys, "file not found", "none.npy")
    _embeddings(tmp_path)
    _err(
        ["embeddings", tmp_path / "emb.npy", "--protocol", "trials", tmp_path / "t.txt"],
        capsys,
        "--protocol: file not found",
        "t.txt",
    )
    _err(
        ["embeddings", tmp_path / "emb.npy", "--protocol", "ijb", tmp_path / "nodir"],
        capsys,
        "--protocol ijb: folder not found",
        "nodir",
    )
    (tmp_path / "empty").mkdir()
    _err(
        ["embeddings", tmp_path / "emb.npy", "--protocol", "ijb", tmp_path / "empty"],
        capsys,
        "need exactly one *_face_tid_mid.txt",
        "found none",
    )


def test_malformed_and_duplicated_lines(capsys, tmp_path):
    _, _, keys = _embeddings(tmp_path)
    t = tmp_path / "trials.txt"
    t.write_text(f"1 {keys[0]} {keys[1]}\n1 {keys[0]} {keys[2]} extra\n")
    _err(["embeddings", tmp_path / "emb.npy", "--protocol", "trials", t], capsys, f"{t}:2", "expected 3 fields")
    t.write_text(f"1 {keys[0]} {keys[1]}\n\n2 {keys[0]} {keys[2]}\n")
    _err(["embeddings", tmp_path / "emb.npy", "--protocol", "trials", t], capsys, f"{t}:3", "label '2'")
    t.write_text(f"1 {keys[0]} {keys[1]}\n0 {keys[0]} {keys[5]}\n1 {keys[0]} {keys[1]}\n")
    _err(["embeddings", tmp_path / "emb.npy", "--protocol", "trials", t], capsys, "duplicated trial", "lines 1 and 3")
    _err(["scores", "--scores", tmp_path / "emb.labels.npy", "--trials", t], capsys, "duplicated trial")
    # score files
    t.write_text(f"1 {keys[0]} {keys[1]}\n0 {keys[0]} {keys[5]}\n")
    s = tmp_path / "scores.txt"
    s.write_text("0.5\n0.25x\n")
    _err(["scores", "--scores", s, "--trials", t], capsys, f"{s}:2: score '0.25x' is not a number")
    s.write_text(f"{keys[0]} {keys[1]} 0.5\n{keys[0]} {keys[5]}\n")
    _err(["scores", "--scores", s, "--trials", t], capsys, f"{s}:2: expected 'enroll test score'")
    s.write_text(f"{keys[0]} {keys[1]} 0.5\n{keys[0]} {keys[5]} 0.1\n{keys[0]} {keys[1]} 0.7\n")
    _err(["scores", "--scores", s, "--trials", t], capsys, "scored twice", "lines 1 and 3")
    s.write_text("0.5\n0.1\n0.3\n")
    _err(["scores", "--scores", s, "--trials", t], capsys, "holds 3 scores but there are 2 trials")
    np.save(tmp_path / "bad_labels.npy", np.array([0, 1, 2]))
    _err(["scores", "--scores", s, "--labels", tmp_path / "bad_labels.npy"], capsys, "labels 0 (non-target) or 1")


def test_unknown_keys(capsys, tmp_path):
    _, _, keys = _embeddings(tmp_path)
    t = tmp_path / "trials.txt"
    t.write_text(f"1 {keys[0]} {keys[1]}\n0 {keys[0]} ghost/utt9.wav\n")
    _err(
        ["embeddings", tmp_path / "emb.npy", "--protocol", "trials", t],
        capsys,
        "missing from the embeddings",
        "ghost/utt9.wav",
    )
    t.write_text(f"1 {keys[0]} {keys[1]}\n0 {keys[0]} {keys[5]}\n")
    s = tmp_path / "scores.txt"
    s.write_text(f"{keys[0]} {keys[1]} 0.5\n{keys[0]} {keys[5]} 0.1\nx y 0.3\n")
    _err(["scores", "--scores", s, "--trials", t], capsys, "not trials of", "x y (line 3)")
    s.write_text(f"{keys[0]} {keys[1]} 0.5\n")
    _err(["scores", "--scores", s, "--trials", t], capsys, "have no score", f"{keys[0]} {keys[5]} (line 2)")
    s.write_text(f"{keys[0]} {keys[1]} 0.5\n{keys[0]} {keys[5]} 0.1\n")
    np.save(tmp_path / "l.npy", np.array([1, 0]))
    _err(["scores", "--scores", s, "--labels", tmp_path / "l.npy"], capsys, "needs --trials")


def test_embeddings_without_labels_or_keys(capsys, tmp_path):
    _embeddings(tmp_path, labels=False, keys=False)
    _err(
        ["embeddings", tmp_path / "emb.npy", "--protocol", "all-pairs"],
        capsys,
        "--protocol all-pairs needs identity labels",
        "emb.labels.npy",
    )
    (tmp_path / "t.txt").write_text("1 a b\n0 a c\n")
    _err(
        ["embeddings", tmp_path / "emb.npy", "--protocol", "trials", tmp_path / "t.txt"],
        capsys,
        "has no keys",
        "emb.keys.txt",
    )
    np.save(tmp_path / "short.labels.npy", np.zeros(3, dtype=np.int64))
    _err(
        ["embeddings", tmp_path / "emb.npy", "--protocol", "all-pairs", "--labels", tmp_path / "short.labels.npy"],
        capsys,
        "shape (3,) for 60 embeddings",
    )


def test_option_conflicts(capsys, tmp_path):
    _embeddings(tmp_path)
    e = tmp_path / "emb.npy"
    _err(["embeddings", e, "--protocol", "bogus"], capsys, "unknown protocol 'bogus'")
    _err(["embeddings", e, "--protocol", "trials"], capsys, "--protocol trials needs a file")
    _err(["embeddings", e, "--protocol", "all-pairs", e], capsys, "all-pairs takes no file")
    _err(
        ["embeddings", e, "--protocol", "all-pairs", "--score-norm", "s", "--cohort", e],
        capsys,
        "--score-norm applies to the pairs and trials protocols",
    )
    _err(["embeddings", e, "--protocol", "all-pairs", "--flip"], capsys, "apply to --protocol ijb only")
    _ijb_set(tmp_path)
    _err(
        ["embeddings", tmp_path / "ijb.npy", "--protocol", "ijb", tmp_path / "IJBC", "--flip"],
        capsys,
        "--flip needs --flipped FILE",
    )
    _err(["embeddings", e, "--protocol", "ijb", tmp_path / "IJBC"], capsys, "must follow the face list order")
    np.save(tmp_path / "s.npy", np.arange(4.0))
    np.save(tmp_path / "l.npy", np.array([0, 1, 0, 1]))
    _err(
        ["scores", "--scores", tmp_path / "s.npy", "--scores", tmp_path / "s.npy", "--labels", tmp_path / "l.npy"],
        capsys,
        "system names must differ",
    )
    np.save(tmp_path / "l1.npy", np.array([1, 1, 1, 1]))
    _err(["scores", "--scores", tmp_path / "s.npy", "--labels", tmp_path / "l1.npy"], capsys, "no non-target trials")
