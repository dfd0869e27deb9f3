"""Test-time audio embedding: chunking, length-grouped batching and chunk averaging (against one-at-a-time brute
force), speaker folders laid out as VoxCeleb (keys = the real trial keys), and the audio-folder / audio-list
datasets of build_dataset."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from veriloss import models
from veriloss.data import build_dataset
from veriloss.data.audio import (
    AudioDataset,
    SyntheticSpeakers,
    chunk_waveform,
    embedding_chunks,
    from_folder,
)
from veriloss.inference import embed
from veriloss.protocols.trials import lookup_embeddings, read_trials

from ..voxceleb_data import VOX

sf = pytest.importorskip("soundfile")

TINY_ECAPA = dict(
    channels=16, mfa_channels=24, attention_channels=8, se_channels=8, scale=2, embedding_dim=8, n_mels=20
)


def _starts(t: int, chunk: int, hop: int) -> list[int]:
    """Chunk starts written out: 0, hop, … while the window fits, then a window ending at t if one is missing."""
    if t <= chunk:
        return [0]
    starts, s = [], 0
    while s + chunk <= t:
        starts.append(s)
        s += hop
    if starts[-1] + chunk != t:
        starts.append(t - chunk)
    return starts


# ------------------------------------------------------------------------------------------------------- chunking


def test_chunk_waveform_windows_cover_the_utterance():
    wave = torch.arange(23, dtype=torch.float32)[None]
    assert chunk_waveform(wave, 8, 5)[:, 0, 0].tolist() == [0, 5, 10, 15]  # 15 + 8 = 23: no tail window
    assert chunk_waveform(wave, 8, 4)[:, 0, 0].tolist() == [0, 4, 8, 12, 15]  # tail window ends at 23
    assert chunk_waveform(wave, 23, 1).shape == (1, 1, 23)
    assert torch.equal(chunk_waveform(wave, 30, 10), wave[None])  # shorter than a chunk: whole, not padded
    for t in (5, 9, 16, 17, 40):
        x = torch.randn(1, t)
        for chunk in (1, 4, 8, 16):
            for hop in sorted({1, min(3, chunk), chunk}):
                got = chunk_waveform(x, chunk, hop)
                want = [x[:, s : s + chunk] for s in _starts(t, chunk, hop)] if t > chunk else [x]
                assert got.shape == (len(want), 1, min(t, chunk))
                assert all(torch.equal(g, w) for g, w in zip(got, want))
                covered = torch.zeros(t, dtype=torch.bool)
                for s in _starts(t, chunk, hop):
                    covered[s : s + chunk] = True
                assert covered.all()
    for bad in ((0, 1), (4, 0), (4.0, 2), (True, 2)):
        with pytest.raises(ValueError, match="positive number of samples"):
            chunk_waveform(wave, *bad)
    with pytest.raises(ValueError, match="must not exceed chunk"):
        chunk_waveform(wave, 4, 5)
    with pytest.raises(ValueError, match=r"\(1, T\)"):
        chunk_waveform(wave[0], 4, 2)


def test_embedding_chunks_options():
    assert embedding_chunks(16000, None) is None
    assert embedding_chunks(16000, 0.2) == (3200, 1600)  # half-overlapping by default
    assert embedding_chunks(16000, 0.3, 0.1) == (4800, 1600)
    with pytest.raises(ValueError, match="must not exceed chunk_seconds"):
        embedding_chunks(16000, 0.2, 0.3)
    with pytest.raises(ValueError, match="needs chunk_seconds"):
        embedding_chunks(16000, None, 0.1)
    with pytest.raises(ValueError, match="chunk_seconds must be a positive"):
        embedding_chunks(16000, -1.0)
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        embedding_chunks(0, 0.2)


# ------------------------------------------------------------------------------------------------------- embedding


@pytest.fixture(scope="module")
def utterances(tmp_path_factory):
    """Nine wav files of lengths with repeats (so equal-length groups form) and one shorter than a 0.3 s chunk."""
    root = tmp_path_factory.mktemp("utts")
    voices = SyntheticSpeakers(3, 3, seconds=1.0, seed=3)
    lengths = [16000, 9000, 16000, 4000, 9000, 12345, 16000, 6400, 9000]
    items = []
    for i, n in enumerate(lengths):
        path = root / f"u{i}.wav"
        sf.write(path, voices.waveform(i)[:n], 16000, subtype="FLOAT")
        items.append((str(path), int(voices.labels[i])))
    return AudioDataset(items, crop_seconds=None), lengths


def _backbone():
    torch.manual_seed(0)
    net = models.create("ecapa-tdnn", **TINY_ECAPA)
    with torch.no_grad():  # non-trivial running statistics, so eval mode differs from training mode
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net.train()


def _alone(net, wave: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net(wave[None]).double().numpy()[0]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(np.sum(v * v))


def test_whole_utterances_grouped_by_length_equal_one_at_a_time(utterances):
    ds, _ = utterances
    net = _backbone()
    batches: list[tuple[int, int]] = []
    net.register_forward_pre_hook(lambda _m, inp: batches.append(tuple(inp[0].shape[::2])))
    got = embed(net, ds, batch_size=4)
    assert net.training  # restored
    # windows of 4 items, one pass per distinct length inside a window
    assert batches == [(2, 16000), (1, 9000), (1, 4000), (1, 9000), (1, 12345), (1, 16000), (1, 6400), (1, 9000)]
    batches.clear()
    net.eval()
    want = np.stack([_alone(net, ds[i][0]) for i in range(len(ds))])
    assert got.shape == (9, 8) and got.dtype == torch.float32
    np.testing.assert_allclose(got.double().numpy(), want, rtol=0, atol=2e-5)
    assert not np.allclose(np.linalg.norm(want, axis=1), 1.0)  # whole utterances are not normalized
    sub = embed(net, ds, indices=[5, 0, 2], batch_size=16)
    np.testing.assert_allclose(sub.double().numpy(), want[[5, 0, 2]], rtol=0, atol=2e-5)


def test_chunked_embeddings_equal_brute_force_average(utterances):
    ds, lengths = utterances
    net = _backbone()
    batches: list[tuple[int, int]] = []
    net.register_forward_pre_hook(lambda _m, inp: batches.append(tuple(inp[0].shape[::2])))
    got = embed(net, ds, batch_size=5, chunks=embedding_chunks(16000, 0.3, 0.125))  # 4800 samples every 2000
    batches_seen = list(batches)
    net.eval()
    want = []
    for i, n in enumerate(lengths):
        wave = ds[i][0]
        if n < 4800:  # shorter than a chunk: whole, normalized
            want.append(_unit(_alone(net, wave)))
            continue
        chunks = [_unit(_alone(net, wave[:, s : s + 4800])) for s in _starts(n, 4800, 2000)]
        want.append(_unit(np.mean(chunks, axis=0)))
    np.testing.assert_allclose(got.double().numpy(), np.stack(want), rtol=0, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got.double().numpy(), axis=1), 1.0, atol=1e-6)
    # the chunks of a window's utterances share one length, so they go through together, ≤ batch_size at a time:
    # window 1 (lengths 16000, 9000, 16000, 4000, 9000) has 7 + 4 + 7 + 4 = 22 chunks, and the 4000-sample one
    # whole; window 2 (12345, 16000, 6400, 9000) has 5 + 7 + 2 + 4 = 18 chunks
    assert [len(_starts(n, 4800, 2000)) for n in lengths] == [7, 4, 7, 1, 4, 5, 7, 2, 4]
    assert batches_seen == [(5, 4800)] * 4 + [(2, 4800), (1, 4000)] + [(5, 4800)] * 3 + [(3, 4800)]


# ------------------------------------------------------------------------------------------------------- folders


def _touch(root: Path, keys) -> None:
    for k in keys:
        (root / k).parent.mkdir(parents=True, exist_ok=True)
        (root / k).touch()


def test_from_folder_keys_labels_and_errors(tmp_path):
    sr = 16000
    keys = ["id2/vB/00001.wav", "id1/vA/00002.flac", "id1/vA/00001.wav", "id1/vC/sub/00001.WAV", "id3/x.ogg"]
    for i, k in enumerate(keys):
        (tmp_path / k).parent.mkdir(parents=True, exist_ok=True)
        fmt = {"flac": "FLAC", "wav": "WAV", "ogg": "OGG"}[k.rsplit(".", 1)[1].lower()]
        sf.write(tmp_path / k, np.full(2000 + 100 * i, 0.01 * (i + 1), np.float32), sr, format=fmt)
    _touch(tmp_path, ["id1/vA/notes.txt", "id1/.hidden/00009.wav", "id2/vB/._00001.wav"])
    ds = from_folder(tmp_path, crop_seconds=None)
    assert ds.utterances == sorted(keys) and ds.speakers == ["id1", "id2", "id3"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 2]
    assert [len(ds[i][0][0]) for i in range(len(ds))] == [2200, 2100, 2300, 2000, 2400]
    sub = from_folder(tmp_path, speakers=["id2", "id3"], crop_seconds=None)
    assert sub.utterances == ["id2/vB/00001.wav", "id3/x.ogg"] and sub.labels.tolist() == [0, 1]
    assert from_folder(tmp_path, extensions=(".flac",), crop_seconds=None).utterances == ["id1/vA/00002.flac"]
    (tmp_path / "loose.wav").touch()
    with pytest.raises(ValueError, match=r"1 file\(s\) lie directly in it.*loose\.wav"):
        from_folder(tmp_path)
    with pytest.raises(ValueError, match="holds no audio files"):
        from_folder(tmp_path / "id1" / "vA", extensions=(".opus",))
    with pytest.raises(ValueError, match="does not exist"):
        from_folder(tmp_path / "nowhere")


@pytest.mark.skipif(not (VOX / "veri_test.txt").is_file(), reason="VoxCeleb1 trial lists not available")
@pytest.mark.parametrize("name", ["veri_test.txt", "veri_test_cleaned.txt"])
def test_voxceleb_layout_keys_are_the_trial_keys(name, tmp_path):
    """A folder laid out as VoxCeleb1's wav/ (empty placeholder files: listing decodes nothing) yields exactly the
    4,715 (4,708) keys of the real list, and every trial finds its two rows."""
    trials = read_trials(VOX / name)
    wanted = trials.keys()
    _touch(tmp_path, wanted)
    ds = from_folder(tmp_path, crop_seconds=None)
    assert ds.utterances == sorted(wanted) and len(ds) == (4715 if name == "veri_test.txt" else 4708)
    assert len(ds.speakers) == 40 and all(s.startswith("id10") for s in ds.speakers)
    assert [ds.speakers[y] for y in ds.labels.tolist()] == [k.split("/")[0] for k in ds.utterances]
    x = torch.randn(len(ds), 4, dtype=torch.float64)
    table, row = lookup_embeddings(wanted, x, ds.utterances, trials.source)
    position = {k: i for i, k in enumerate(ds.utterances)}
    for k in (trials.enroll[0], trials.test[0], trials.enroll[-1], trials.test[-1]):
        assert torch.equal(table[row[k]], x[position[k]])


# ------------------------------------------------------------------------------------------------ build_dataset


def _write_speakers(root: Path, n_speakers: int, per: int, seed: int) -> list[tuple[str, str, str]]:
    """(utt, speaker, relative file) rows of generated utterances written as wav under ``root``."""
    voices = SyntheticSpeakers(n_speakers, per, seconds=0.5, seed=seed)
    rows = []
    for i in range(len(voices)):
        spk, j = divmod(i, per)
        rel = f"spk{seed}{spk}/v/{j:05d}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, voices.waveform(i), 16000, subtype="PCM_16")
        rows.append((rel, f"spk{seed}{spk}", rel))
    return rows


def test_build_audio_folder_and_lists(tmp_path):
    train_rows = _write_speakers(tmp_path / "train", 3, 2, seed=1)
    test_rows = _write_speakers(tmp_path / "test", 2, 2, seed=2)
    with open(tmp_path / "train.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["utt", "speaker", "file", "text"])
        w.writerows([(u, s, file, "hello") for u, s, file in train_rows])
    kaldi = tmp_path / "kaldi_test"
    kaldi.mkdir()
    (kaldi / "wav.scp").write_text("".join(f"{u} ../test/{file}\n" for u, _, file in test_rows))
    (kaldi / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in test_rows))
    common = {"crop_seconds": 0.25, "chunk_seconds": 0.2, "chunk_hop": 0.05, "augment": True}
    folder = {"name": "audio-folder", "train_root": str(tmp_path / "train"), "test_root": str(tmp_path / "test")}
    listed = {"name": "audio-list", "train_list": str(tmp_path / "train.tsv"), "test_list": str(kaldi)}
    for cfg in (folder, listed):
        tr, te = build_dataset({**cfg, **common}, "train"), build_dataset({**cfg, **common}, "test")
        assert (tr.num_classes, len(tr), te.num_classes, len(te)) == (3, 6, 2, 4)
        assert tr.utterances == [u for u, _, _ in train_rows] and te.utterances == [u for u, _, _ in test_rows]
        assert (tr.crop_samples, te.crop_samples) == (4000, None)
        assert tr.speed is not None and tr.noise is not None and te.speed is None and te.noise is None
        assert torch.equal(te[1][0], AudioDataset([(tmp_path / "test" / test_rows[1][2], 0)], crop_seconds=None)[0][0])
        plain = build_dataset(cfg, "test")
        assert plain.crop_samples is None
        assert build_dataset(cfg, "train").crop_samples == 32000  # default 2 s crops
    # audio_root: manifest files relative to another folder (or a zip)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train.tsv").write_text((tmp_path / "train.tsv").read_text())
    moved = {**listed, "train_list": str(tmp_path / "lists" / "train.tsv"), "audio_root": str(tmp_path / "train")}
    assert build_dataset(moved, "train").sources[0] == str(tmp_path / "train" / train_rows[0][2])
    with pytest.raises(ValueError, match=r"neither a \.zip archive nor a folder"):
        build_dataset({**moved, "audio_root": str(tmp_path / "nope")}, "train")
    with pytest.raises(ValueError, match=r"data\.test_root is required"):
        build_dataset({"name": "audio-folder", "train_root": str(tmp_path / "train")}, "test")
    with pytest.raises(ValueError, match=r"data\.train_list = .*does not exist"):
        build_dataset({**listed, "train_list": str(tmp_path / "missing.tsv")}, "train")
    with pytest.raises(ValueError, match="unknown data key"):
        build_dataset({**folder, "seed": 1}, "train")
    with pytest.raises(ValueError, match="must not exceed chunk_seconds"):
        build_dataset({**folder, "chunk_seconds": 0.1, "chunk_hop": 0.2}, "test")
    with pytest.raises(ValueError, match=r"data\.chunk_seconds must be a positive"):
        build_dataset({**folder, "chunk_seconds": 0}, "test")
    syn = {"name": "synthetic-audio", "train_speakers": 2, "test_speakers": 2, "utterances_per_speaker": 1}
    assert build_dataset({**syn, "chunk_seconds": 0.5}, "test").sample_rate == 16000  # accepted; the evaluation
    with pytest.raises(ValueError, match="chunk_seconds must be a positive"):  # reads it from the config
        build_dataset({**syn, "chunk_seconds": -0.5}, "test")
