"""veriloss._io: outputs probed up front, atomic writes, one writer per folder."""

from __future__ import annotations

import os
import pathlib

import pytest

from veriloss._io import LOCK_NAME, OutputLock, atomic_write, output_dir, output_file, write_text


def test_output_dir_creates_and_refuses_files_and_unwritable_folders(tmp_path, monkeypatch):
    assert output_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"--out: '.*/f' is a file, not a folder"):
        output_dir(tmp_path / "f")
    with pytest.raises(ValueError, match="cannot create the folder"):
        output_dir(tmp_path / "f" / "sub", "--report")

    def refuse(self, data):  # a read-only disk (root ignores permission bits, so the error is simulated)
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(pathlib.Path, "write_bytes", refuse)
    with pytest.raises(ValueError, match=r"cannot write into .*Read-only file system"):
        output_dir(tmp_path / "ro")


def test_output_file(tmp_path):
    assert output_file(tmp_path / "new" / "x.npy") == tmp_path / "new" / "x.npy"
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        output_file(tmp_path / "new", "--onnx")


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path):
    write_text(tmp_path / "t.txt", "old")

    def fail(tmp):
        tmp.write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "t.txt", fail, fsync=True)
    assert (tmp_path / "t.txt").read_text() == "old" and os.listdir(tmp_path) == ["t.txt"]


def test_a_lock_is_exclusive_removed_on_release_and_taken_over_when_stale(tmp_path):
    lock = OutputLock(tmp_path).acquire()
    assert (tmp_path / LOCK_NAME).read_text().split()[0] == str(os.getpid())
    held = rf"output folder .* is in use by another veriloss process \(pid {os.getpid()}\)"
    with pytest.raises(ValueError, match=held):
        OutputLock(tmp_path).acquire()
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()
    (tmp_path / LOCK_NAME).write_text("999999 otherhost 2026-01-01 veriloss eval\n")  # a dead owner's file
    with OutputLock(tmp_path) as again:
        assert again.held
    assert not again.held


def test_locks_of_different_names_in_one_folder_are_independent(tmp_path):
    with OutputLock(tmp_path, name=".a.lock"), OutputLock(tmp_path, name=".b.lock"):
        with pytest.raises(ValueError, match="in use"):
            OutputLock(tmp_path, name=".a.lock").acquire()
