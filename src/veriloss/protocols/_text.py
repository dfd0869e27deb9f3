"""Reading the protocols' text files: UTF-8 with an optional byte-order mark, errors that name the file and line."""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["read_lines"]

_BOM = b"\xef\xbb\xbf"


def read_lines(path: str | os.PathLike, what: str) -> Iterator[str]:
    """The lines of ``path`` (a ``what``, e.g. "trial file", for messages) decoded as UTF-8, a leading BOM dropped.

    A file that cannot be opened or read, or a line that is not valid UTF-8, raises a ``ValueError`` that names the
    file (and the 1-based line and the offending byte). Lines keep their ending (``\\n`` or ``\\r\\n``).
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ValueError(f"cannot read {what} {path!r}: {e.strerror or e}") from e
    with f:
        lineno = 0
        try:
            for lineno, raw in enumerate(f, start=1):
                if lineno == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    bad = raw[e.start : e.start + 1].hex()
                    raise ValueError(
                        f"{path}:{lineno}: not valid UTF-8 text (byte 0x{bad} at column {e.start + 1}); the {what}"
                        " must be UTF-8 encoded: re-save it as UTF-8"
                    ) from None
                yield line
        except OSError as e:
            raise ValueError(f"cannot read {what} {path!r} (after line {lineno}): {e.strerror or e}") from e
