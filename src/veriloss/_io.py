"""File output shared by every writer: atomic writes, output paths checked up front, one writer per output folder.

* :func:`atomic_write` / :func:`write_text`: write a temporary file beside the target, then rename it over the
  target, so a reader sees the old file or the complete new one.
* :func:`output_dir` / :func:`output_file`: create and probe an output location before any long computation, so a
  path that is a file, unwritable or on a read-only disk fails at once with one line naming it.
* :class:`OutputLock`: an output folder is owned by one process at a time. The lock is ``fcntl.flock`` on
  ``<folder>/.veriloss.lock``, which also holds the owner's pid, host and command for the message a second writer
  gets; the kernel releases it when its owner exits or dies, so a stale lock of a dead process is simply taken over.
  The owner removes the file when done.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["LOCK_NAME", "OutputLock", "atomic_write", "output_dir", "output_file", "write_text"]

LOCK_NAME = ".veriloss.lock"


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], fsync: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path`` (same suffix), then rename it over ``path``; with
    ``fsync`` the data reaches the disk before the rename. A failed write leaves no temporary behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _why(err: OSError) -> str:
    return err.strerror or type(err).__name__


def output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create the folder ``path`` (and its parents) and prove it writable by writing and removing a probe file.

    Raises ``ValueError`` naming ``option`` and the path when it is a file, cannot be created or is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option}: {str(path)!r} is a file, not a folder; choose another output folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{option}: cannot create the folder {str(path)!r}: {_why(err)}") from None
    probe = path / f".veriloss-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"{option}: cannot write into {str(path)!r}: {_why(err)}") from None
    return path


def output_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check that the file ``path`` can be written: not a folder, its folder created and writable."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option}: {str(path)!r} is a folder; give a file name")
    output_dir(path.parent if str(path.parent) else Path("."), option)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{option}: {str(path)!r} exists and is not writable")
    return path


class OutputLock:
    """Hold ``folder`` for this process (a context manager); a second holder gets a ``ValueError`` naming the owner.

    ``name``: the lock file, for outputs that share a folder (``veriloss embed``'s files of one name).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d, OutputLock(d):
    ...     OutputLock(d).acquire()
    Traceback (most recent call last):
    ...
    ValueError: ... is in use by another veriloss process (pid ...); wait for it to end or choose another output ...
    """

    def __init__(self, folder: str | os.PathLike, what: str = "output folder", name: str = LOCK_NAME):
        self.folder = Path(folder)
        self.path = self.folder / name
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                pid = owner.split()[0] if owner.split() else "?"
                raise ValueError(
                    f"{self.what} {str(self.folder)!r} is in use by another veriloss process (pid {pid}); "
                    f"wait for it to end or choose another output [lock: {self.path}: {owner}]"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:  # the owner before us may have removed the file between our open and our lock: lock the new one
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {stamp} {command}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file (still holding the lock, so no one can take a file on its way out), then unlock."""
        if self._fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            finally:
                os.close(self._fd)  # closing the descriptor releases the flock
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
