"""`veriloss train`, `embed` and `eval` on audio files, exactly as for images: generated speakers written to disk as
wav files (a manifest TSV for training, a Kaldi wav.scp/utt2spk list over a VoxCeleb-style folder for testing), a
few training steps, then embeddings and scores checked against a direct computation in the test (one utterance at
a time, cosine and AS-norm in float64 loops)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from veriloss.cli import main
from veriloss.data.audio import SyntheticSpeakers
from veriloss.metrics import auc, eer, min_dcf, tar_at_far
from veriloss.models import load_backbone

from ..data.test_audio_chunks import _starts
from ..voxceleb_data import VOX

sf = pytest.importorskip("soundfile")

SR = 16000
TEST_LENGTHS = [16000, 11200, 16000, 8000]  # per utterance j of a test speaker: repeats, so lengths group
CONFIG = """
seed: 0
data:
  name: audio-list
  train_list: {root}/train.tsv
  test_list: {root}/test_kaldi
  crop_seconds: 0.5
  chunk_seconds: 0.5
  chunk_hop: 0.25
model:
  name: ecapa-tdnn
  channels: 16
  mfa_channels: 24
  attention_channels: 8
  se_channels: 8
  scale: 2
  embedding_dim: 8
  n_mels: 20
optim: {{name: adamw, lr: 2.0e-3, weight_decay: 0.0}}
schedule: {{warmup_steps: 1}}
batch_size: 8
max_steps: 4
amp: none
validate: {{every_epochs: 0, far: [0.01]}}
log: {{every_steps: 2, tensorboard: false, progress: false}}
loss:
  name: arcface
  params: {{s: 8.0, m: 0.2}}
"""


def _test_key(k: int, j: int) -> str:
    return f"id9{k:04d}/vid{j // 2}/{j % 2 + 1:05d}.wav"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """train/: 6 speakers × 4 utterances (1 s) + train.tsv; wav/: 4 other speakers × 4 utterances of 0.5–1 s laid
    out as VoxCeleb (id9000k/vidN/0000M.wav) + test_kaldi/{wav.scp, utt2spk} keyed by those relative paths."""
    root = tmp_path_factory.mktemp("corpus")
    train = SyntheticSpeakers(6, 4, seconds=1.0, seed=0)
    rows = []
    for i in range(len(train)):
        k, j = divmod(i, 4)
        rel = f"train/spk{k}/u{j}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, train.waveform(i), SR, subtype="PCM_16")
        rows.append((f"spk{k}-u{j}", f"spk{k}", rel))
    with open(root / "train.tsv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["utt", "speaker", "file"])
        writer.writerows(rows)
    test = SyntheticSpeakers(4, 4, seconds=1.0, seed=0, speaker_offset=6)
    scp, spk = [], []
    for i in range(len(test)):
        k, j = divmod(i, 4)
        key = _test_key(k, j)
        (root / "wav" / key).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / "wav" / key, test.waveform(i)[: TEST_LENGTHS[j]], SR, subtype="PCM_16")
        scp.append(f"{key} ../wav/{key}\n")
        spk.append(f"{key} {key.split('/')[0]}\n")
    (root / "test_kaldi").mkdir()
    (root / "test_kaldi" / "wav.scp").write_text("".join(scp))
    (root / "test_kaldi" / "utt2spk").write_text("".join(spk))
    (root / "speaker.yaml").write_text(CONFIG.format(root=root))
    return root


@pytest.fixture(scope="module")
def run_dir(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["train", str(corpus / "speaker.yaml"), "--out", str(out)]) == 0
    return out


def _embed(run_dir: Path, out: Path, *extra) -> tuple[np.ndarray, np.ndarray, list[str]]:
    assert main(["embed", str(run_dir), "--out", str(out), *map(str, extra)]) == 0
    stem = out.with_suffix("")
    keys = Path(f"{stem}.keys.txt").read_text().split("\n")[:-1]
    return np.load(out), np.load(f"{stem}.labels.npy"), keys


def _wave(path: Path) -> torch.Tensor:
    samples, rate = sf.read(path, dtype="float32")
    assert rate == SR
    return torch.from_numpy(samples)[None]


def _direct(backbone, waves: list[torch.Tensor], chunk: int | None = None, hop: int | None = None) -> np.ndarray:
    """Each utterance (or chunk) through the backbone alone; chunk average normalize(mean normalize(e_i))."""
    rows = []
    with torch.no_grad():
        for w in waves:
            if chunk is None:
                rows.append(backbone(w[None]).double().numpy()[0])
                continue
            t = w.shape[-1]
            parts = [w[:, s : s + chunk] for s in _starts(t, chunk, hop)] if t > chunk else [w]
            unit = [e / np.linalg.norm(e) for e in (backbone(p[None]).double().numpy()[0] for p in parts)]
            mean = np.mean(unit, axis=0)
            rows.append(mean / np.linalg.norm(mean))
    return np.stack(rows)


def _cos(a, b) -> float:
    a, b = [float(v) for v in a], [float(v) for v in b]
    return sum(p * q for p, q in zip(a, b)) / math.sqrt(sum(p * p for p in a) * sum(q * q for q in b))


def _eval(argv, out: Path) -> dict:
    assert main(["eval", "embeddings", *map(str, argv), "--out", str(out), "--no-plots"]) == 0
    (record,) = json.loads((out / "metrics.json").read_text())["systems"]
    return record


def _check_metrics(record: dict, scores: np.ndarray, target: np.ndarray, fars: list[float]) -> None:
    g, i = scores[target], scores[~target]
    assert (record["n_genuine"], record["n_impostor"]) == (g.size, i.size)
    assert record["eer"] == pytest.approx(eer(g, i).eer, abs=1e-9)
    assert record["auc"] == pytest.approx(auc(g, i), abs=1e-9)
    assert [m["min_dcf"] for m in record["min_dcf"]] == pytest.approx(
        [min_dcf(g, i, p).min_dcf for p in (0.01, 0.05)], abs=1e-9
    )
    assert [t["tar"] for t in record["tar_at_far"]] == [t.tar for t in tar_at_far(g, i, fars)]


# ---------------------------------------------------------------------------------------------------------- tests


def test_embed_test_split_then_eval_all_pairs_reproduces_the_trainer(run_dir, corpus, tmp_path):
    (trained,) = json.loads((run_dir / "metrics.json").read_text())["systems"]
    assert trained["steps"] == 4 and trained["n_embeddings"] == 16
    x, labels, keys = _embed(run_dir, tmp_path / "test.npy", "--data", "test")
    assert keys == [_test_key(k, j) for k in range(4) for j in range(4)]
    assert labels.tolist() == [k for k in range(4) for _ in range(4)] and x.shape == (16, 8)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)  # the config's chunking: unit norm
    ours = _eval([tmp_path / "test.npy", "--protocol", "all-pairs", "--far", "0.01"], tmp_path / "ev")
    assert (ours["n_genuine"], ours["n_impostor"]) == (trained["n_genuine"], trained["n_impostor"]) == (24, 96)
    assert ours["eer"] == pytest.approx(trained["eer"], abs=1e-12)
    assert ours["auc"] == pytest.approx(trained["auc"], abs=1e-12)


def test_embeddings_equal_a_direct_computation(run_dir, corpus, tmp_path):
    backbone = load_backbone(run_dir)
    keys = [_test_key(k, j) for k in range(4) for j in range(4)]
    waves = [_wave(corpus / "wav" / k) for k in keys]
    assert [w.shape[-1] for w in waves] == TEST_LENGTHS * 4
    # whole utterances (not normalized), config chunks (0.5 s every 0.25 s), command-line chunks on the folder
    whole, _, k1 = _embed(run_dir, tmp_path / "whole.npy", "--data", "test", "--whole-utterances", "--batch-size", 5)
    np.testing.assert_allclose(whole, _direct(backbone, waves), rtol=0, atol=3e-5)
    assert k1 == keys and not np.allclose(np.linalg.norm(whole, axis=1), 1.0)
    chunked, _, _ = _embed(run_dir, tmp_path / "chunked.npy", "--data", "test")
    np.testing.assert_allclose(chunked, _direct(backbone, waves, 8000, 4000), rtol=0, atol=3e-5)
    folder, labels, k3 = _embed(
        run_dir, tmp_path / "folder.npy", "--data", corpus / "wav", "--chunk-seconds", 0.4, "--chunk-hop", 0.2
    )
    assert k3 == keys and labels.tolist() == [k for k in range(4) for _ in range(4)]
    np.testing.assert_allclose(folder, _direct(backbone, waves, 6400, 3200), rtol=0, atol=3e-5)
    assert np.abs(folder - chunked).max() > 1e-3  # other chunks, other embeddings
    # the training speakers, whole (the cohort below): a manifest's keys are its utterance ids
    train, train_labels, k4 = _embed(run_dir, tmp_path / "train.npy", "--data", "train", "--whole-utterances")
    assert k4[:2] == ["spk0-u0", "spk0-u1"] and train.shape == (24, 8) and train_labels.max() == 5
    direct = _direct(backbone, [_wave(corpus / "train" / "spk3" / "u2.wav")])
    np.testing.assert_allclose(train[k4.index("spk3-u2")], direct[0], rtol=0, atol=3e-5)


def test_eval_trials_and_adaptive_s_norm_equal_brute_force(run_dir, corpus, tmp_path):
    x, _, _ = _embed(run_dir, tmp_path / "emb.npy", "--data", "test")
    cohort, _, _ = _embed(run_dir, tmp_path / "cohort.npy", "--data", "train", "--whole-utterances")
    keys = [_test_key(k, j) for k in range(4) for j in range(4)]  # the files; x's rows follow them
    pairs = [(a, b) for a in range(16) for b in range(a + 1, 16) if (a + b) % 3 != 0]  # a VoxCeleb-style list
    target = np.array([keys[a].split("/")[0] == keys[b].split("/")[0] for a, b in pairs])
    (tmp_path / "trials.txt").write_text("".join(f"{int(t)} {keys[a]} {keys[b]}\n" for (a, b), t in zip(pairs, target)))
    raw = np.array([_cos(x[a], x[b]) for a, b in pairs])
    record = _eval(
        [tmp_path / "emb.npy", "--protocol", "trials", tmp_path / "trials.txt", "--far", "0.05"], tmp_path / "t"
    )
    _check_metrics(record, raw, target, [0.05])
    top_k = 7

    def stats(e):
        s = sorted((_cos(e, c) for c in cohort), reverse=True)[:top_k]
        mean = sum(s) / top_k
        return mean, math.sqrt(sum((v - mean) ** 2 for v in s) / top_k)

    side = [stats(x[i]) for i in range(16)]
    normed = np.array(
        [0.5 * ((s - side[a][0]) / side[a][1] + (s - side[b][0]) / side[b][1]) for (a, b), s in zip(pairs, raw)]
    )
    argv = [tmp_path / "emb.npy", "--protocol", "trials", tmp_path / "trials.txt", "--far", "0.05"]
    argv += ["--score-norm", "as", "--cohort", tmp_path / "cohort.npy", "--top-k", top_k]
    _check_metrics(_eval(argv, tmp_path / "as"), normed, target, [0.05])
    assert np.abs(normed - raw).max() > 0.1  # the normalization changed the scores


@pytest.mark.skipif(not (VOX / "veri_test.txt").is_file(), reason="VoxCeleb1 trial lists not available")
def test_a_voxceleb_folder_scores_real_trial_lines(run_dir, tmp_path):
    """Audio at the real keys of the first 30 lines of VoxCeleb1-O (generated voices, one per speaker id): the
    folder's embedding keys are the list's keys and `eval --protocol trials` scores its lines unchanged."""
    lines = (VOX / "veri_test.txt").read_text().splitlines()[:30]
    trials = [line.split() for line in lines]
    keys = sorted({k for _, a, b in trials for k in (a, b)})
    speakers = sorted({k.split("/")[0] for k in keys})
    voices = SyntheticSpeakers(len(speakers), len(keys), seconds=0.5, seed=5)
    for n, key in enumerate(keys):
        (tmp_path / "wav" / key).parent.mkdir(parents=True, exist_ok=True)
        index = speakers.index(key.split("/")[0]) * len(keys) + n
        sf.write(tmp_path / "wav" / key, voices.waveform(index), SR, subtype="PCM_16")
    x, labels, got = _embed(run_dir, tmp_path / "vox.npy", "--data", tmp_path / "wav")
    assert got == keys and len(keys) == 32 and labels.tolist() == [speakers.index(k.split("/")[0]) for k in keys]
    (tmp_path / "first30.txt").write_text("\n".join(lines) + "\n")
    record = _eval(
        [tmp_path / "vox.npy", "--protocol", "trials", tmp_path / "first30.txt", "--far", "0.1"], tmp_path / "e"
    )
    row = {k: i for i, k in enumerate(keys)}
    scores = np.array([_cos(x[row[a]], x[row[b]]) for _, a, b in trials])
    _check_metrics(record, scores, np.array([t == "1" for t, _, _ in trials]), [0.1])


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--whole-utterances", "--chunk-seconds", "1"], "--whole-utterances excludes"),
        (["--chunk-seconds", "0.2", "--chunk-hop", "0.3"], "must not exceed chunk_seconds"),
        (["--chunk-seconds", "-1"], "chunk_seconds must be a positive"),
        (["--data", "nowhere"], "nor an existing audio folder"),
    ],
)
def test_bad_embed_options_are_clean_errors(run_dir, tmp_path, capsys, extra, match):
    assert main(["embed", str(run_dir), "--out", str(tmp_path / "e.npy"), *extra]) == 2
    assert match in capsys.readouterr().err
