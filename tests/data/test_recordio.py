import io
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from veriloss.data import RecordIO, write_recordio
from veriloss.data.recordio import MAGIC


def images_and_labels(n=9, size=12, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (3, size, size), dtype=np.uint8) for _ in range(n)]
    labels = [i // 3 for i in range(n)]
    return images, labels


def parse_records(data: bytes) -> list[tuple[int, int, bytes]]:
    """Independent reader of the raw layout: (offset, cflag, payload part) for every physical record."""
    out, pos = [], 0
    while pos < len(data):
        magic, lrec = struct.unpack_from("<II", data, pos)
        assert magic == 0xCED7230A
        length = lrec & ((1 << 29) - 1)
        out.append((pos, lrec >> 29, data[pos + 8 : pos + 8 + length]))
        pos += 8 + (length + 3) // 4 * 4
    return out


def test_round_trip_images_labels_and_insightface_layout(tmp_path):
    images, labels = images_and_labels()
    rec, idx = write_recordio(tmp_path / "train", images, labels)
    assert rec.name == "train.rec" and idx.name == "train.idx"
    ds = RecordIO(rec, image_size=12)
    assert len(ds) == 9 and ds.num_classes == 3 and ds.channels == 3 and ds.image_size == 12
    assert torch.equal(ds.labels, torch.tensor(labels))
    for i in range(9):
        x, y = ds[i]
        assert y == labels[i]
        assert torch.equal(((x + 1) * 127.5).round().to(torch.uint8), torch.from_numpy(images[i]))  # PNG: lossless
    # the layout, read independently: header, 9 images, 3 identity records; idx offsets point at them
    raw = rec.read_bytes()
    records = parse_records(raw)
    assert len(records) == 1 + 9 + 3 and all(cflag == 0 for _, cflag, _ in records)
    idx_lines = [line.split("\t") for line in idx.read_text().splitlines()]
    assert [(int(k), int(o)) for k, o in idx_lines] == [(k, off) for k, (off, _, _) in enumerate(records)]
    flag, label, id1, id2 = struct.unpack_from("<IfQQ", records[0][2])
    assert (flag, label, id1, id2) == (2, 0.0, 0, 0)
    assert np.frombuffer(records[0][2][24:32], "<f4").tolist() == [10.0, 13.0]
    for k in range(1, 10):
        flag, label, id1, _ = struct.unpack_from("<IfQQ", records[k][2])
        assert (flag, label, id1) == (0, float(labels[k - 1]), k)
        png = Image.open(io.BytesIO(records[k][2][24:]))
        assert np.array_equal(np.asarray(png), images[k - 1].transpose(1, 2, 0))
    for c in range(3):
        flag, _, id1, _ = struct.unpack_from("<IfQQ", records[10 + c][2])
        assert flag == 2 and id1 == 10 + c
        assert np.frombuffer(records[10 + c][2][24:32], "<f4").tolist() == [1 + 3 * c, 4 + 3 * c]


def test_unsorted_labels_are_written_in_label_order_and_resize(tmp_path):
    images, _ = images_and_labels(4, size=16)
    write_recordio(tmp_path / "t", images, [2, 0, 2, 0])
    ds = RecordIO(tmp_path / "t.rec", image_size=8)
    assert ds.labels.tolist() == [0, 0, 2, 2] and ds.num_classes == 3
    x, _ = ds[0]
    assert x.shape == (3, 8, 8)
    ref = Image.fromarray(images[1].transpose(1, 2, 0)).resize((8, 8), Image.BILINEAR)
    assert torch.equal(((x + 1) * 127.5).round().to(torch.uint8), torch.from_numpy(np.array(ref).transpose(2, 0, 1)))


def test_payload_containing_the_magic_number_is_split_and_joined(tmp_path):
    magic = struct.pack("<I", MAGIC)
    buf = io.BytesIO()
    Image.fromarray(np.full((6, 6, 3), 200, np.uint8)).save(buf, format="PNG")
    png = buf.getvalue()
    # PNG decoders ignore bytes after IEND, so append aligned magic numbers to force a split record
    pad = (-(24 + len(png))) % 4
    encoded = png + b"\0" * pad + magic + b"ab\0\0" + magic + magic + b"xyz"
    write_recordio(tmp_path / "m", [encoded, np.zeros((6, 6), np.uint8)], [0, 1])
    records = parse_records((tmp_path / "m.rec").read_bytes())
    assert [cflag for _, cflag, _ in records] == [0, 1, 2, 2, 3, 0, 0, 0]
    ds = RecordIO(tmp_path / "m.rec", image_size=6)
    assert ds.labels.tolist() == [0, 1]
    assert torch.allclose(ds[0][0], torch.full((3, 6, 6), 200 / 127.5 - 1))
    assert ds._record(1, int(ds.offsets[0]))[24:] == encoded  # parts joined with the magic number back in place
    assert torch.allclose(ds[1][0], -torch.ones(3, 6, 6))


def test_without_idx_file_and_without_insightface_header(tmp_path):
    images, _ = images_and_labels(5)
    rec, idx = write_recordio(tmp_path / "a", images, [0, 0, 1, 1, 1])
    idx.unlink()
    ds = RecordIO(rec, image_size=12)  # scans the .rec for offsets
    assert ds.labels.tolist() == [0, 0, 1, 1, 1]
    # plain (im2rec-style) file: image records only, label float, no header record
    raw = b""
    offsets = []
    for i, img in enumerate(images[:3]):
        buf = io.BytesIO()
        Image.fromarray(img.transpose(1, 2, 0)).save(buf, format="PNG")
        payload = struct.pack("<IfQQ", 0, float(4 - i) + 0.0, i, 0) + buf.getvalue()
        offsets.append(len(raw))
        raw += struct.pack("<II", MAGIC, len(payload)) + payload + b"\0" * ((-len(payload)) % 4)
    (tmp_path / "p.rec").write_bytes(raw)
    (tmp_path / "p.idx").write_text("".join(f"{i}\t{o}\n" for i, o in enumerate(offsets)))
    plain = RecordIO(tmp_path / "p.rec", image_size=12)
    assert plain.labels.tolist() == [4, 3, 2] and plain.num_classes == 5
    assert torch.equal(((plain[2][0] + 1) * 127.5).round().to(torch.uint8), torch.from_numpy(images[2]))


def test_truncated_rec_gives_a_clear_error(tmp_path):
    images, labels = images_and_labels()
    rec, _ = write_recordio(tmp_path / "train", images, labels)
    data = rec.read_bytes()
    records = parse_records(data)
    cut = records[5][0] + 40  # inside image record 5 (key 5)
    rec.write_bytes(data[:cut])
    with pytest.raises(ValueError, match=r"train\.rec record 5 at byte \d+: .*truncated"):
        RecordIO(rec, image_size=12)


def test_corrupt_image_bytes_and_skip_corrupt(tmp_path):
    images, labels = images_and_labels(6)
    rec, _ = write_recordio(tmp_path / "train", images, labels)
    data = bytearray(rec.read_bytes())
    records = parse_records(bytes(data))
    start = records[2][0] + 8 + 24 + 20  # inside the PNG of key 2 (label 0): break its IHDR
    data[start : start + 30] = b"\xff" * 30
    rec.write_bytes(bytes(data))
    ds = RecordIO(rec, image_size=12)
    assert len(ds) == 6  # headers are fine, so construction succeeds
    with pytest.raises(ValueError, match=r"train\.rec record 2 at byte \d+: cannot decode image"):
        ds[1]
    with pytest.raises(ValueError, match=r"(?s)1 of 6 images cannot be read.*record 2"):
        ds.verify()
    with pytest.warns(UserWarning, match="skipped 1"):
        kept = RecordIO(rec, image_size=12, skip_corrupt=True)
    assert len(kept) == 5 and kept.keys.tolist() == [1, 3, 4, 5, 6]
    assert kept.labels.tolist() == [0, 0, 1, 1, 1] and len(kept.skipped) == 1 and "record 2" in kept.skipped[0]


def test_bad_magic_and_missing_files(tmp_path):
    images, labels = images_and_labels(3)
    rec, idx = write_recordio(tmp_path / "train", images, labels)
    data = bytearray(rec.read_bytes())
    off = parse_records(bytes(data))[2][0]
    data[off : off + 4] = b"\0\0\0\0"
    rec.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"record 2 .*magic"):
        RecordIO(rec)
    with pytest.raises(ValueError, match=r"path_rec .*nothing\.rec.*does not exist"):
        RecordIO(tmp_path / "nothing.rec")
    with pytest.raises(ValueError, match="path_idx"):
        RecordIO(rec, tmp_path / "nothing.idx")
    idx.write_text("0 12\nbroken\n")
    with pytest.raises(ValueError, match="line 2"):
        RecordIO(rec)


def test_dataset_is_picklable_for_worker_processes(tmp_path):
    import pickle

    images, labels = images_and_labels(3)
    rec, _ = write_recordio(tmp_path / "train", images, labels)
    ds = RecordIO(rec, image_size=12)
    first = ds[0][0]
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[0][0], first)
