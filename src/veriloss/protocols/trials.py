"""Trial lists (VoxCeleb ``label enroll test``, Kaldi ``enroll test target|nontarget``) and cosine scoring.

A trial list is an ordered list of (enroll, test, label) triples read from a text file. The same container
holds LFW-style pair lists (see :mod:`veriloss.protocols.pair_lists`), which add a fold id per pair.
Scoring turns the list plus a key → embedding mapping into one cosine score per trial, in list order;
metrics are computed elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from veriloss._checks import check_embeddings, check_int
from veriloss.functional.normalize import l2_norm, l2_normalize
from veriloss.protocols._text import read_lines

__all__ = [
    "TrialList",
    "check_duplicates",
    "lookup_embeddings",
    "parse_trials",
    "read_trials",
    "score_trials",
]

_FORMATS = ("auto", "voxceleb", "kaldi")
_KALDI_LABELS = {"target": True, "nontarget": False}
_VOX_LABELS = {"1": True, "0": False}
_MAX_NAMED = 5  # how many offending keys / lines an error message names before summarising with a count


@dataclass(frozen=True)
class TrialList:
    """An ordered list of verification trials.

    Attributes:
        enroll: first key of each trial (enrollment utterance / left image).
        test: second key of each trial.
        labels: bool tensor (N,), True for a target (same identity) trial.
        line_numbers: 1-based line of each trial in ``source``.
        source: file name (or a description) the trials came from; used in error messages.
        folds: optional int64 tensor (N,) of fold ids (LFW ``pairs.txt``), else None.
    """

    enroll: list[str]
    test: list[str]
    labels: torch.Tensor
    line_numbers: list[int]
    source: str = "<trials>"
    folds: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.enroll)

    @property
    def num_target(self) -> int:
        return int(self.labels.sum())

    @property
    def num_nontarget(self) -> int:
        return len(self) - self.num_target

    def keys(self) -> list[str]:
        """Distinct keys (enroll and test side together), in order of first appearance."""
        return list(dict.fromkeys(k for pair in zip(self.enroll, self.test) for k in pair))


def _name_some(items: Sequence[str], what: str) -> str:
    shown = ", ".join(items[:_MAX_NAMED])
    more = f" (and {len(items) - _MAX_NAMED} more)" if len(items) > _MAX_NAMED else ""
    return f"{len(items)} {what}: {shown}{more}"


def _split_lines(lines: Iterable[str]) -> Iterable[tuple[int, list[str]]]:
    """Yield (1-based line number, whitespace-split fields) for every non-blank line."""
    for lineno, line in enumerate(lines, start=1):
        fields = line.split()
        if fields:
            yield lineno, fields


def _detect_format(fields: list[str], source: str, lineno: int) -> str:
    vox = len(fields) == 3 and fields[0] in _VOX_LABELS
    kaldi = len(fields) == 3 and fields[2] in _KALDI_LABELS
    if vox and kaldi:
        raise ValueError(
            f"{source}:{lineno}: cannot tell the trial format from {' '.join(fields)!r} (it reads as both "
            "VoxCeleb 'label enroll test' and Kaldi 'enroll test target|nontarget'); pass fmt='voxceleb' or "
            "fmt='kaldi'"
        )
    if vox:
        return "voxceleb"
    if kaldi:
        return "kaldi"
    raise ValueError(
        f"{source}:{lineno}: not a trial line: {' '.join(fields)!r}; expected VoxCeleb 'label enroll test' "
        "(label 1 or 0) or Kaldi 'enroll test target|nontarget'"
    )


def check_duplicates(enroll: Sequence[str], test: Sequence[str], line_numbers: Sequence[int], source: str) -> None:
    """Raise if the same ordered (enroll, test) pair occurs on more than one line, naming the lines.

    The reversed pair (test, enroll) is not a duplicate: the official VoxCeleb1-O list holds 338 such pairs.
    """
    first: dict[tuple[str, str], int] = {}
    dups: list[str] = []
    for a, b, ln in zip(enroll, test, line_numbers):
        prev = first.setdefault((a, b), ln)
        if prev != ln:
            dups.append(f"lines {prev} and {ln} ({a} {b})")
    if dups:
        raise ValueError(
            f"{source}: duplicated trial(s), the same pair listed twice: "
            + _name_some(dups, "duplicate(s)")
            + "; remove the repeated lines or pass allow_duplicates=True"
        )


def parse_trials(
    lines: Iterable[str], fmt: str = "auto", source: str = "<trials>", allow_duplicates: bool = False
) -> TrialList:
    """Parse a trial list from text lines.

    Formats (whitespace separated, blank lines ignored):
      * ``voxceleb``: ``label enroll test`` with label ``1`` (target) or ``0`` (non-target), as in VoxCeleb1's
        ``veri_test.txt``; the same layout is the generic ``label a b`` pair list.
      * ``kaldi``: ``enroll test target|nontarget``, as in Kaldi's ``trials`` files.
      * ``auto``: decided from the first non-blank line; every other line must then be in that format.

    Errors name the file and line: a wrong number of fields, an unknown label, a line in the other format,
    an empty list, or (unless ``allow_duplicates``) the same ordered pair on two lines.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {_FORMATS}, got {fmt!r}")
    enroll: list[str] = []
    test: list[str] = []
    labels: list[bool] = []
    line_numbers: list[int] = []
    for lineno, fields in _split_lines(lines):
        if fmt == "auto":
            fmt = _detect_format(fields, source, lineno)
        if len(fields) != 3:
            want = "'label enroll test'" if fmt == "voxceleb" else "'enroll test target|nontarget'"
            raise ValueError(
                f"{source}:{lineno}: expected 3 fields {want} ({fmt} format), got {len(fields)}: {' '.join(fields)!r}"
            )
        if fmt == "voxceleb":
            label, a, b = fields
            table = _VOX_LABELS
        else:
            a, b, label = fields
            table = _KALDI_LABELS
        if label not in table:
            raise ValueError(
                f"{source}:{lineno}: label {label!r} is not one of {sorted(table)} ({fmt} format): {' '.join(fields)!r}"
            )
        enroll.append(a)
        test.append(b)
        labels.append(table[label])
        line_numbers.append(lineno)
    if not enroll:
        raise ValueError(f"{source}: the trial list is empty (no non-blank lines)")
    if not allow_duplicates:
        check_duplicates(enroll, test, line_numbers, source)
    return TrialList(enroll, test, torch.tensor(labels, dtype=torch.bool), line_numbers, source)


def read_trials(path: str | os.PathLike, fmt: str = "auto", allow_duplicates: bool = False) -> TrialList:
    """Read a VoxCeleb or Kaldi trial file (see :func:`parse_trials`); errors name ``path:line``. UTF-8, with or
    without a byte-order mark; other bytes raise a ``ValueError`` naming the line."""
    path = os.fspath(path)
    return parse_trials(read_lines(path, "trial file"), fmt=fmt, source=path, allow_duplicates=allow_duplicates)


EmbeddingSource = Mapping[str, "torch.Tensor | np.ndarray"] | torch.Tensor | np.ndarray


def lookup_embeddings(
    wanted: Sequence[str],
    embeddings: EmbeddingSource,
    keys: Sequence[str] | None = None,
    source: str = "<trials>",
) -> tuple[torch.Tensor, dict[str, int]]:
    """Gather the rows for ``wanted`` keys into one matrix.

    ``embeddings`` is either a mapping key → 1-D vector, or a (n, d) tensor/array with ``keys`` (n names,
    row order). Returns (matrix with one row per distinct wanted key, key → row). Keys that are missing are
    reported by name (the first few and the count); so are duplicated names in ``keys``.
    """
    distinct = list(dict.fromkeys(wanted))
    if isinstance(embeddings, Mapping):
        if keys is not None:
            raise ValueError("keys must be None when embeddings is a mapping (the mapping already names each row)")
        missing = [k for k in distinct if k not in embeddings]
        if missing:
            raise ValueError(f"{source}: " + _name_some(missing, "key(s) are missing from the embeddings"))
        rows = [torch.as_tensor(embeddings[k]) for k in distinct]
        bad = [k for k, r in zip(distinct, rows) if r.dim() != 1]
        if bad:
            raise ValueError(_name_some(bad, "embedding(s) are not 1-D vectors"))
        if len({r.shape[0] for r in rows}) > 1:
            raise ValueError(f"embeddings have different sizes: {sorted({r.shape[0] for r in rows})}")
        matrix = torch.stack(rows)
    else:
        matrix = torch.as_tensor(embeddings)
        if keys is None:
            raise ValueError("keys (one name per row) is required when embeddings is a matrix")
        if matrix.dim() != 2 or matrix.shape[0] != len(keys):
            raise ValueError(
                f"embeddings must have shape (len(keys), dim) = ({len(keys)}, dim), got {tuple(matrix.shape)}"
            )
        index: dict[str, int] = {}
        dup = []
        for i, k in enumerate(keys):
            if index.setdefault(k, i) != i:
                dup.append(k)
        if dup:
            raise ValueError(_name_some(list(dict.fromkeys(dup)), "key(s) appear more than once in keys"))
        missing = [k for k in distinct if k not in index]
        if missing:
            raise ValueError(f"{source}: " + _name_some(missing, "key(s) are missing from the embeddings"))
        matrix = matrix[torch.tensor([index[k] for k in distinct], dtype=torch.long)]
    check_embeddings(matrix, "embeddings")
    return matrix, {k: i for i, k in enumerate(distinct)}


def _unit_rows(x: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
    """Rows scaled to unit norm (overflow-safe, :func:`~veriloss.functional.l2_normalize`); all-zero rows raise."""
    zero = (l2_norm(x, dim=1) == 0).nonzero().flatten().tolist()
    if zero:
        raise ValueError(_name_some([str(names[i]) for i in zero], "embedding(s) are all-zero (cosine undefined)"))
    return l2_normalize(x, dim=1)


def score_trials(
    trials: TrialList,
    embeddings: EmbeddingSource,
    keys: Sequence[str] | None = None,
    batch_size: int = 65536,
) -> torch.Tensor:
    """Cosine score of every trial, in list order: ``s_i = <e_a, e_b> / (||e_a|| ||e_b||)``.

    ``embeddings`` is a mapping key → vector, or a (n, d) matrix with ``keys`` naming its rows. Every key
    of the list must be present; missing ones are reported by name. Each distinct embedding is normalized
    once, then trials are scored ``batch_size`` at a time (memory O(batch_size · d)). Returns a float
    tensor (N,): float64 for float64 embeddings, float32 otherwise. Scale-invariant for any finite embeddings.
    """
    batch_size = check_int(batch_size, "batch_size", 1, what="a positive integer")
    table, row = lookup_embeddings(trials.keys(), embeddings, keys, trials.source)
    if table.dtype not in (torch.float32, torch.float64):
        table = table.float()
    unit = _unit_rows(table, list(row))
    ia = torch.tensor([row[k] for k in trials.enroll], dtype=torch.long)
    ib = torch.tensor([row[k] for k in trials.test], dtype=torch.long)
    out = torch.empty(len(trials), dtype=unit.dtype)
    for start in range(0, len(trials), batch_size):
        sl = slice(start, start + batch_size)
        out[sl] = (unit[ia[sl]] * unit[ib[sl]]).sum(dim=1)
    return out
