"""Pair lists: LFW ``pairs.txt`` (10-fold accuracy) and generic ``label a b`` lists.

LFW View 2 (Huang et al., *Labeled Faces in the Wild*, UMass TR 07-49, 2007): ``pairs.txt`` starts with a
header ``folds n`` (``10 300``), then for each fold ``n`` matched lines ``name i j`` followed by ``n``
mismatched lines ``name1 i name2 j``; image ``i`` of ``name`` is the file ``name/name_000i.jpg``. Accuracy
is measured per fold with the threshold chosen on the other folds, and reported as mean ± std over the folds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from veriloss.protocols._text import read_lines
from veriloss.protocols.trials import TrialList, check_duplicates, parse_trials

__all__ = [
    "LFWAccuracy",
    "best_accuracy_threshold",
    "lfw_accuracy",
    "lfw_image_key",
    "parse_lfw_pairs",
    "parse_pair_list",
    "read_lfw_pairs",
    "read_pair_list",
]


def lfw_image_key(name: str, index: int, ext: str = ".jpg") -> str:
    """Relative path of image ``index`` of ``name`` in LFW: ``Name/Name_0001.jpg`` (index zero-padded to
    4)."""
    return f"{name}/{name}_{index:04d}{ext}"


def _image_index(text: str, source: str, lineno: int) -> int:
    try:
        idx = int(text)
    except ValueError:
        raise ValueError(f"{source}:{lineno}: image number {text!r} is not an integer") from None
    if idx < 1:
        raise ValueError(f"{source}:{lineno}: image number must be ≥ 1, got {idx}")
    return idx


def parse_lfw_pairs(
    lines: Iterable[str], source: str = "<pairs.txt>", ext: str = ".jpg", allow_duplicates: bool = False
) -> TrialList:
    """Parse LFW ``pairs.txt`` into a :class:`TrialList` with fold ids (0 … folds−1) and image keys.

    The header is ``folds n`` (``10 300`` for View 2) or a single ``n`` (``pairsDevTrain.txt``, one fold).
    Each fold has ``n`` matched lines (3 fields) then ``n`` mismatched lines (4 fields). Errors name
    ``source:line`` for a bad header, a line with the wrong number of fields for its section, a bad image
    number, too few or too many lines, and (unless ``allow_duplicates``) a pair that occurs twice.
    """
    numbered = ((ln, line.split()) for ln, line in enumerate(lines, start=1))
    numbered = ((ln, f) for ln, f in numbered if f)
    try:
        head_ln, head = next(numbered)
    except StopIteration:
        raise ValueError(f"{source}: the pair list is empty") from None
    try:
        sizes = [int(v) for v in head]
    except ValueError:
        sizes = []
    if len(sizes) == 1:
        sizes = [1, sizes[0]]
    if len(sizes) != 2 or min(sizes) < 1:
        raise ValueError(
            f"{source}:{head_ln}: expected the header 'folds pairs_per_class' (e.g. '10 300'), got {' '.join(head)!r}"
        )
    n_folds, per_class = sizes
    enroll: list[str] = []
    test: list[str] = []
    labels: list[bool] = []
    folds: list[int] = []
    line_numbers: list[int] = []
    total = 2 * n_folds * per_class
    last_ln = head_ln
    for ln, fields in numbered:
        k = len(enroll)
        if k == total:
            raise ValueError(
                f"{source}:{ln}: extra line after the {total} pairs announced by the header "
                f"({n_folds} folds × 2 × {per_class})"
            )
        fold, within = divmod(k, 2 * per_class)
        matched = within < per_class
        want = 3 if matched else 4
        if len(fields) != want:
            kind = "matched 'name i j'" if matched else "mismatched 'name1 i name2 j'"
            raise ValueError(
                f"{source}:{ln}: expected a {kind} line ({want} fields; "
                f"pair {within + 1} of fold {fold + 1}), "
                f"got {len(fields)} fields: {' '.join(fields)!r}"
            )
        if matched:
            name, i, j = fields
            a = lfw_image_key(name, _image_index(i, source, ln), ext)
            b = lfw_image_key(name, _image_index(j, source, ln), ext)
        else:
            n1, i, n2, j = fields
            a = lfw_image_key(n1, _image_index(i, source, ln), ext)
            b = lfw_image_key(n2, _image_index(j, source, ln), ext)
        enroll.append(a)
        test.append(b)
        labels.append(matched)
        folds.append(fold)
        line_numbers.append(ln)
        last_ln = ln
    if len(enroll) != total:
        raise ValueError(
            f"{source}:{last_ln}: the file ends after {len(enroll)} pairs, but the header announces {total} "
            f"({n_folds} folds × 2 × {per_class})"
        )
    if not allow_duplicates:
        check_duplicates(enroll, test, line_numbers, source)
    return TrialList(
        enroll,
        test,
        torch.tensor(labels, dtype=torch.bool),
        line_numbers,
        source,
        folds=torch.tensor(folds, dtype=torch.long),
    )


def read_lfw_pairs(path: str | os.PathLike, ext: str = ".jpg", allow_duplicates: bool = False) -> TrialList:
    """Read LFW ``pairs.txt`` (see :func:`parse_lfw_pairs`); UTF-8 with or without a byte-order mark."""
    path = os.fspath(path)
    return parse_lfw_pairs(read_lines(path, "pair file"), source=path, ext=ext, allow_duplicates=allow_duplicates)


def parse_pair_list(lines: Iterable[str], source: str = "<pairs>", allow_duplicates: bool = False) -> TrialList:
    """Parse a generic ``label a b`` pair list (label 1 = same identity, 0 = different)."""
    return parse_trials(lines, fmt="voxceleb", source=source, allow_duplicates=allow_duplicates)


def read_pair_list(path: str | os.PathLike, allow_duplicates: bool = False) -> TrialList:
    """Read a generic ``label a b`` pair list file (see :func:`parse_pair_list`); UTF-8, optional byte-order mark."""
    path = os.fspath(path)
    return parse_pair_list(read_lines(path, "pair file"), source=path, allow_duplicates=allow_duplicates)


def _as_numpy(x: torch.Tensor | np.ndarray, name: str, dtype: type) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    return arr.astype(dtype)


def best_accuracy_threshold(
    scores: torch.Tensor | np.ndarray, issame: torch.Tensor | np.ndarray
) -> tuple[float, float]:
    """Exact accuracy-maximizing threshold on (scores, issame); returns (threshold, accuracy).

    A pair is accepted when ``score ≥ threshold``. Every split of the sorted distinct scores is tried (plus
    accept-all and reject-all), so the result is the exact maximum, not a grid approximation. Choices:
    ties in accuracy go to the strictest split (the highest threshold, as insightface's first arg-max over
    ascending distance thresholds does); the threshold returned is the midpoint between the lowest accepted
    and the highest rejected training score (−inf when all are accepted, +inf when none are).
    """
    s = _as_numpy(scores, "scores", np.float64)
    y = _as_numpy(issame, "issame", bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and issame must have the same length, got {s.shape[0]} and {y.shape[0]}")
    if not np.isfinite(s).all():
        raise ValueError("scores contains non-finite values (NaN or inf)")
    gen = np.sort(s[y])
    imp = np.sort(s[~y])
    cand = np.append(np.unique(s), np.inf)  # accept s ≥ cand[k]; the last one rejects everything
    tp = gen.size - np.searchsorted(gen, cand, side="left")
    tn = np.searchsorted(imp, cand, side="left")
    acc = (tp + tn) / s.size
    k = acc.size - 1 - int(np.argmax(acc[::-1]))  # last maximum = highest threshold
    if k == 0:
        thr = -np.inf
    elif np.isinf(cand[k]):
        thr = np.inf
    else:
        lo, hi = cand[k - 1], cand[k]
        thr = lo + (hi - lo) / 2
        if thr <= lo:  # adjacent doubles: keep lo rejected
            thr = hi
    return float(thr), float(acc[k])


@dataclass(frozen=True)
class LFWAccuracy:
    """Result of :func:`lfw_accuracy`.

    ``mean`` and ``std`` (population std over folds, ddof=0, as insightface and facenet report) of the
    per-fold accuracies; ``standard_error`` is the LFW README's S_E = σ̂/√k with the sample std σ̂ (ddof=1).
    ``accuracies``, ``thresholds`` and ``fold_ids`` are per held-out fold, in increasing fold id.
    """

    mean: float
    std: float
    standard_error: float
    accuracies: np.ndarray
    thresholds: np.ndarray
    fold_ids: np.ndarray


def lfw_accuracy(
    scores: torch.Tensor | np.ndarray, issame: torch.Tensor | np.ndarray, folds: torch.Tensor | np.ndarray
) -> LFWAccuracy:
    """k-fold verification accuracy (LFW protocol).

    For each fold f: choose t_f = :func:`best_accuracy_threshold` on the pairs of all other folds, then
    acc_f = (#{same, s ≥ t_f} + #{different, s < t_f}) / |fold f| on fold f. Reports mean ± std of acc_f.
    Higher scores mean more similar. Needs at least two folds.
    """
    s = _as_numpy(scores, "scores", np.float64)
    y = _as_numpy(issame, "issame", bool)
    f = _as_numpy(folds, "folds", np.int64)
    if not (s.shape == y.shape == f.shape):
        raise ValueError(
            f"scores, issame and folds must have the same length, got {s.shape[0]}, {y.shape[0]}, {f.shape[0]}"
        )
    fold_ids = np.unique(f)
    if fold_ids.size < 2:
        raise ValueError(f"folds must hold at least 2 distinct fold ids, got {fold_ids.tolist()}")
    accs = np.empty(fold_ids.size)
    thrs = np.empty(fold_ids.size)
    for n, fid in enumerate(fold_ids):
        held = f == fid
        thr, _ = best_accuracy_threshold(s[~held], y[~held])
        accs[n] = np.mean((s[held] >= thr) == y[held])
        thrs[n] = thr
    return LFWAccuracy(
        mean=float(accs.mean()),
        std=float(accs.std()),
        standard_error=float(accs.std(ddof=1) / np.sqrt(accs.size)),
        accuracies=accs,
        thresholds=thrs,
        fold_ids=fold_ids,
    )
