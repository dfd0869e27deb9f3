"""Corrupt samples: one error type naming the sample, an up-front check that reads no pixels/audio, skip_corrupt."""

import io
import pickle
import re
import struct
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from veriloss.data import (
    CorruptSampleError,
    ImageFolder,
    Omniglot,
    RecordIO,
    SyntheticIdentities,
    SyntheticSpeakers,
    build_dataset,
    verify_dataset,
    write_recordio,
)
from veriloss.data.audio import dataset as audio_dataset  # the modules where the decoders are looked up
from veriloss.data.audio import decode as audio_decode
from veriloss.data.audio import from_folder, from_manifest

sf = pytest.importorskip("soundfile")


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _member_data_offset(raw: bytes, info: zipfile.ZipInfo) -> int:
    """Where a member's (compressed) data starts: after its local header (30 bytes, name, extra field)."""
    name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
    return info.header_offset + 30 + name_len + extra_len


def _no_decoding(monkeypatch, *targets):
    def boom(*args, **kwargs):
        raise AssertionError("the up-front check decoded a sample")

    for target in targets:
        monkeypatch.setattr(*target, boom)


# ------------------------------------------------------------------------------------------------ Omniglot zips


def _omniglot_zip(path, compression=zipfile.ZIP_DEFLATED):
    """2 alphabets × 2 characters × 3 drawings (12×12 PNGs, strokes dark); returns the member names in item order."""
    rng = np.random.default_rng(0)
    names = []
    with zipfile.ZipFile(path, "w", compression) as z:
        for alphabet in ("Alpha", "Beta"):
            for char in ("character01", "character02"):
                for k in range(3):
                    name = f"images_background/{alphabet}/{char}/{k:04d}_{k:02d}.png"
                    arr = np.where(rng.random((12, 12)) < 0.3, 0, 255).astype(np.uint8)
                    z.writestr(name, _png(arr))
                    names.append(name)
    return names


def test_omniglot_corrupt_deflate_member_is_named_and_skip_corrupt_drops_it(tmp_path):
    names = _omniglot_zip(tmp_path / "clean.zip")
    raw = bytearray((tmp_path / "clean.zip").read_bytes())
    bad = names[4]  # Alpha/character02, drawing 1
    start = _member_data_offset(bytes(raw), zipfile.ZipFile(tmp_path / "clean.zip").getinfo(bad))
    raw[start] = 0xFF  # deflate block type 3 (reserved): zlib.error "invalid block type"
    raw[start + 5 : start + 9] = b"\x00\xff\x00\xff"
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(raw))
    with pytest.raises(CorruptSampleError, match=re.escape(repr(bad))) as info:
        Omniglot(corrupt, image_size=6)
    err = info.value
    assert err.member == bad and err.path == str(corrupt.resolve()) and len(err.bad) == 1
    assert "corrupt.zip" in str(err) and "corrupt compressed data" in str(err)

    clean = Omniglot(tmp_path / "clean.zip", image_size=6)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        kept = Omniglot(corrupt, image_size=6, skip_corrupt=True)
    assert len(kept) == 11 and kept.num_classes == 4 and len(kept.skipped) == 1 and bad in kept.skipped[0]
    others = [i for i in range(12) if i != 4]
    assert kept.labels.tolist() == clean.labels[others].tolist()
    assert all(torch.equal(kept[j][0], clean[i][0]) for j, i in enumerate(others))
    assert verify_dataset(kept) == []
    # build_dataset passes skip_corrupt through; with rotations the character keeps 4 identities
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "images_background.zip").write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="skipped 1"):
        train = build_dataset({"name": "omniglot", "root": str(tmp_path / "root"), "skip_corrupt": True}, "train")
    assert len(train) == 44 and train.num_classes == 16 and torch.bincount(train.labels).tolist()[4:8] == [2] * 4


def test_omniglot_crc_mismatch_and_broken_local_header(tmp_path):
    names = _omniglot_zip(tmp_path / "stored.zip", zipfile.ZIP_STORED)
    raw = bytes((tmp_path / "stored.zip").read_bytes())
    infos = {i.filename: i for i in zipfile.ZipFile(tmp_path / "stored.zip").infolist()}
    crc = bytearray(raw)
    crc[_member_data_offset(raw, infos[names[7]]) + 40] ^= 0x01  # a stored byte: only the CRC-32 notices
    (tmp_path / "crc.zip").write_bytes(bytes(crc))
    with pytest.raises(CorruptSampleError, match=r"(?s)crc\.zip.*Bad CRC-32") as info:
        Omniglot(tmp_path / "crc.zip", image_size=6)
    assert info.value.member == names[7]
    header = bytearray(raw)
    header[infos[names[2]].header_offset : infos[names[2]].header_offset + 4] = b"XXXX"
    (tmp_path / "header.zip").write_bytes(bytes(header))
    with pytest.raises(CorruptSampleError, match=r"corrupt zip entry \(Bad magic number") as info:
        Omniglot(tmp_path / "header.zip", image_size=6)
    assert info.value.member == names[2]


# ------------------------------------------------------------------------------------------------ image folders


def _image_folder(root):
    rng = np.random.default_rng(1)
    for ident, ext in (("a", "png"), ("b", "jpg")):
        (root / ident).mkdir(parents=True)
        for j in range(3):
            arr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            (root / ident / f"img{j}.{ext}").write_bytes(_png(arr) if ext == "png" else _jpeg(arr))


def test_image_folder_truncated_png_jpeg_and_empty_file(tmp_path, monkeypatch):
    _image_folder(tmp_path)
    png, jpg, empty = tmp_path / "a" / "img1.png", tmp_path / "b" / "img0.jpg", tmp_path / "b" / "img2.jpg"
    png.write_bytes(png.read_bytes()[: len(png.read_bytes()) // 2])  # header intact, pixels cut off
    jpg.write_bytes(jpg.read_bytes()[:-40])
    empty.write_bytes(b"")
    ds = ImageFolder(tmp_path, image_size=8)
    assert len(ds) == 6 and [p.name for p in ds.paths] == [f"img{j}.{ext}" for ext in ("png", "jpg") for j in range(3)]
    for i, path in ((1, png), (3, jpg), (5, empty)):
        with pytest.raises(CorruptSampleError, match=re.escape(f"cannot decode image {path}")) as info:
            ds[i]
        assert info.value.path == str(path) and info.value.index == i and f"(item {i})" in str(info.value)
    with pytest.raises(CorruptSampleError, match="empty file"):
        ds[5]

    _no_decoding(monkeypatch, (ImageFolder, "_decode"))
    with pytest.raises(CorruptSampleError, match=r"3 of 6 images cannot be read") as info:
        verify_dataset(ds)
    bad = info.value.bad
    assert [e.path for e in bad] == [str(png), str(jpg), str(empty)] and [e.index for e in bad] == [1, 3, 5]
    assert "truncated PNG" in str(bad[0]) and "truncated JPEG" in str(bad[1]) and "empty file" in str(bad[2])
    monkeypatch.undo()

    with pytest.warns(UserWarning, match="skipped 3 unreadable"):
        kept = ImageFolder(tmp_path, image_size=8, skip_corrupt=True)
    assert [p.name for p in kept.paths] == ["img0.png", "img2.png", "img1.jpg"]
    assert kept.labels.tolist() == [0, 0, 1] and kept.num_classes == 2 and len(kept.skipped) == 3
    assert all(str(p) in "".join(kept.skipped) for p in (png, jpg, empty))
    assert verify_dataset(kept) == [] and kept[2][0].shape == (3, 8, 8)


# ------------------------------------------------------------------------------------------------ RecordIO


def test_recordio_broken_records(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 256, (12, 12, 3), dtype=np.uint8) for _ in range(6)]
    images = [_jpeg(a) for a in arrays]
    images[2] = images[2][:-30]  # record framing fine, the JPEG inside truncated
    rec, _ = write_recordio(tmp_path / "train", images, [0, 0, 0, 1, 1, 1])
    ds = RecordIO(rec, image_size=12)
    assert len(ds) == 6
    with pytest.raises(CorruptSampleError, match=r"train\.rec record 3 at byte \d+: cannot decode image") as info:
        ds[2]
    assert (info.value.path, info.value.key, info.value.index) == (str(rec), 3, 2)

    _no_decoding(monkeypatch, (RecordIO, "_decode"))
    with pytest.raises(CorruptSampleError, match=r"(?s)1 of 6 images.*train\.rec record 3 .*truncated JPEG") as info:
        verify_dataset(ds)
    assert info.value.key == 3 and info.value.index == 2
    monkeypatch.undo()

    with pytest.warns(UserWarning, match="skipped 1"):
        kept = RecordIO(rec, image_size=12, skip_corrupt=True)
    assert kept.keys.tolist() == [1, 2, 4, 5, 6] and kept.labels.tolist() == [0, 0, 1, 1, 1]
    assert len(kept.skipped) == 1 and "record 3" in kept.skipped[0]

    # a record whose framing is broken (magic number overwritten): named at construction, dropped with skip_corrupt
    data = bytearray(rec.read_bytes())
    off = int(RecordIO(rec, image_size=12).offsets[4])  # key 5
    data[off : off + 4] = b"\0\0\0\0"
    rec.write_bytes(bytes(data))
    with pytest.raises(CorruptSampleError, match=r"record 5 .*magic") as info:
        RecordIO(rec, image_size=12)
    assert info.value.key == 5 and info.value.path == str(rec)
    with pytest.warns(UserWarning, match="skipped"):
        kept = RecordIO(rec, image_size=12, skip_corrupt=True)
    assert kept.keys.tolist() == [1, 2, 4, 6] and len(kept.skipped) == 2


# ------------------------------------------------------------------------------------------------ audio


def _tone(seconds, sr=16000, freq=220.0):
    t = np.arange(round(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_audio_empty_truncated_and_short_files(tmp_path, monkeypatch):
    root = tmp_path / "wav"
    for spk in ("s1", "s2"):
        (root / spk).mkdir(parents=True)
    sf.write(root / "s1" / "a.wav", _tone(0.5), 16000, subtype="PCM_16")
    (root / "s1" / "b_empty.wav").write_bytes(b"")
    sf.write(root / "s1" / "c.flac", _tone(0.5), 16000)
    sf.write(root / "s2" / "a_trunc.wav", _tone(0.5), 16000, subtype="PCM_16")
    sf.write(root / "s2" / "b_trunc.flac", _tone(2.0), 16000)
    sf.write(root / "s2" / "c_short.wav", _tone(0.02), 16000)
    for name in ("a_trunc.wav", "b_trunc.flac"):
        path = root / "s2" / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    ds = from_folder(root, crop_seconds=None)
    keys = ["s1/a.wav", "s1/b_empty.wav", "s1/c.flac", "s2/a_trunc.wav", "s2/b_trunc.flac", "s2/c_short.wav"]
    assert ds.utterances == keys
    for i, what in ((1, "is empty"), (3, "is truncated: its header declares"), (4, "cannot decode"), (5, "too short")):
        with pytest.raises(CorruptSampleError, match=what) as info:
            ds[i]
        err = info.value
        assert err.path == str(root / keys[i]) and err.index == i and err.key == keys[i]
        assert str(root / keys[i]) in str(err) and f"utterance {keys[i]!r}" in str(err)

    _no_decoding(monkeypatch, (audio_dataset, "load_audio"), (audio_decode, "load_audio"), (audio_decode, "read_audio"))
    with pytest.raises(CorruptSampleError, match="4 of 6 utterances cannot be read") as info:
        verify_dataset(ds)
    assert [e.key for e in info.value.bad] == [keys[i] for i in (1, 3, 4, 5)]
    assert "truncated" in str(info.value.bad[2])  # the FLAC: its last frames do not decode
    monkeypatch.undo()

    cfg = {"name": "audio-folder", "train_root": str(root), "test_root": str(root), "skip_corrupt": True}
    with pytest.warns(UserWarning, match="skipped 4 unreadable utterances"):
        kept = build_dataset(cfg, "test")
    assert kept.utterances == ["s1/a.wav", "s1/c.flac"] and kept.labels.tolist() == [0, 0] and kept.num_classes == 2
    assert len(kept.skipped) == 4 and verify_dataset(kept, decode=True) == []
    assert kept[1][0].shape == (1, 8000)


def test_audio_corrupt_zip_member_of_a_manifest(tmp_path, monkeypatch):
    ogg = {}
    for utt in ("u1", "u2", "u3"):
        buf = io.BytesIO()
        sf.write(buf, _tone(0.5, freq=200 + 100 * len(ogg)), 16000, format="OGG", subtype="OPUS")
        ogg[utt] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "audio.zip", "w", zipfile.ZIP_STORED) as z:
        for utt, data in ogg.items():
            z.writestr(f"opus/{utt}.ogg", data)
    raw = bytearray((tmp_path / "audio.zip").read_bytes())
    info = zipfile.ZipFile(tmp_path / "audio.zip").getinfo("opus/u2.ogg")
    raw[_member_data_offset(bytes(raw), info) + 200] ^= 0x55
    (tmp_path / "audio.zip").write_bytes(bytes(raw))
    (tmp_path / "m.tsv").write_text(
        "utt\tspeaker\tfile\n" + "".join(f"{u}\tspk{u[-1]}\topus/{u}.ogg\n" for u in ogg), encoding="utf-8"
    )
    ds = from_manifest(tmp_path / "m.tsv", tmp_path / "audio.zip", crop_seconds=None)
    assert ds[0][0].shape == (1, 8000)
    with pytest.raises(CorruptSampleError, match=r"(?s)'opus/u2\.ogg' in '.*audio\.zip': corrupt zip entry.*CRC") as e:
        ds[1]
    assert (e.value.path, e.value.member, e.value.key) == (str(tmp_path / "audio.zip"), "opus/u2.ogg", "u2")
    _no_decoding(monkeypatch, (audio_dataset, "load_audio"))
    with pytest.raises(CorruptSampleError, match="utterance 'u2'"):
        verify_dataset(ds)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="skipped 1"):
        kept = from_manifest(tmp_path / "m.tsv", tmp_path / "audio.zip", crop_seconds=None, skip_corrupt=True)
    assert kept.utterances == ["u1", "u3"] and kept.labels.tolist() == [0, 2] and kept.num_classes == 3


# ------------------------------------------------------------------------------------------------ the error type


def test_generated_datasets_need_no_check_and_the_error_pickles():
    assert verify_dataset(SyntheticIdentities(2, 2, image_size=8)) == []
    assert verify_dataset(SyntheticSpeakers(2, 2, seconds=0.1)) == []
    err = CorruptSampleError("x is bad", "/d/x.zip", member="m.png", index=3, key="u")
    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, ValueError) and str(clone) == "x is bad"
    assert (clone.path, clone.member, clone.index, clone.key) == ("/d/x.zip", "m.png", 3, "u")
    assert CorruptSampleError("just a message").path is None  # how torch's DataLoader re-raises a worker's error
