"""IJB-B / IJB-C 1:1 template verification from the official meta files.

Meta files (as distributed with insightface's IJB evaluation, ``IJB_release/IJB{B,C}/meta``):
  * ``ijbc_face_tid_mid.txt``: one line per face image, ``img_name template_id media_id`` (``1.jpg 1 69544``);
  * ``ijbc_template_pair_label.txt``: one line per template pair, ``template_id_1 template_id_2 label`` (1
    = mated);
  * optional ``ijbc_name_5pts_score.txt``: ``img_name x1 y1 … x5 y5 score``, the last column the detector
    (faceness) score of the image, in the same order as the face list.

Pipeline (Whitelam et al., IJB-B, CVPRW 2017; Maze et al., IJB-C, ICB 2018; as in insightface's
``eval_ijbc.py``): image feature (optionally + the feature of the flipped image) → optionally L2-normalized
→ optionally × detector score → mean over the images of each media (video or still) within a template → sum
over the media of the template → L2-normalize → cosine (dot product) over the template pairs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from veriloss._checks import check_embeddings, check_finite_tensor, check_int
from veriloss.functional.normalize import l2_norm, l2_normalize, pow2_scale
from veriloss.protocols._text import read_lines

__all__ = [
    "IJBProtocol",
    "ijb_scores",
    "read_detector_scores",
    "read_face_tid_mid",
    "read_ijb_protocol",
    "read_template_pairs",
    "template_features",
]

_MAX_NAMED = 5


def _lines(path: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, fields) of every non-blank line of ``path`` (UTF-8, optional byte-order mark);
    unreadable files and bytes that are not UTF-8 raise ValueError naming the file and line."""
    for ln, line in enumerate(read_lines(path, "IJB meta file"), start=1):
        fields = line.split()
        if fields:
            yield ln, fields


def _number(text: str, conv: Callable[[str], int | float], what: str, path: str, ln: int) -> int | float:
    try:
        return conv(text)
    except ValueError:
        kind = "an integer" if conv is int else "a number"
        raise ValueError(f"{path}:{ln}: {what} {text!r} is not {kind}") from None


def read_face_tid_mid(path: str | os.PathLike) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Read ``*_face_tid_mid.txt``: returns (image names, template ids, media ids), one entry per line."""
    path = os.fspath(path)
    names: list[str] = []
    tids: list[int] = []
    mids: list[int] = []
    for ln, fields in _lines(path):
        if len(fields) != 3:
            raise ValueError(
                f"{path}:{ln}: expected 3 fields 'img_name template_id media_id', got {len(fields)}: "
                f"{' '.join(fields)!r}"
            )
        names.append(fields[0])
        tids.append(_number(fields[1], int, "template id", path, ln))
        mids.append(_number(fields[2], int, "media id", path, ln))
    if not names:
        raise ValueError(f"{path}: the face list is empty")
    return names, torch.tensor(tids, dtype=torch.long), torch.tensor(mids, dtype=torch.long)


def read_template_pairs(
    path: str | os.PathLike, allow_duplicates: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read ``*_template_pair_label.txt``: returns (template 1, template 2, bool labels), in file order.

    Errors name ``path:line``: wrong field count, non-integer ids, a label other than 0/1, and (unless
    ``allow_duplicates``) the same ordered template pair on two lines. A well-formed file (IJB-C: 15.7M lines)
    is read by numpy's C parser; the line-by-line parser runs only to locate a problem.
    """
    path = os.fspath(path)
    try:
        arr = np.loadtxt(path, dtype=np.int64, ndmin=2, comments=None, encoding="utf-8-sig")
        ok = arr.shape[0] > 0 and arr.shape[1] == 3 and bool(np.isin(arr[:, 2], (0, 1)).all())
    except OSError as e:
        raise ValueError(f"cannot read IJB meta file {path!r}: {e.strerror or e}") from e
    except ValueError:
        ok = False
    if not ok:
        arr = _parse_pairs_slowly(path)
    if not allow_duplicates:
        _check_duplicate_pairs(arr[:, 0], arr[:, 1], path)
    t = torch.from_numpy(arr)
    return t[:, 0].clone(), t[:, 1].clone(), t[:, 2].bool()


def _parse_pairs_slowly(path: str) -> np.ndarray:
    rows: list[tuple[int, int, int]] = []
    for ln, fields in _lines(path):
        if len(fields) != 3:
            raise ValueError(
                f"{path}:{ln}: expected 3 fields 'template_id_1 template_id_2 label', got {len(fields)}: "
                f"{' '.join(fields)!r}"
            )
        a = _number(fields[0], int, "template id", path, ln)
        b = _number(fields[1], int, "template id", path, ln)
        if fields[2] not in ("0", "1"):
            raise ValueError(f"{path}:{ln}: label must be 1 (mated) or 0 (non-mated), got {fields[2]!r}")
        rows.append((a, b, int(fields[2])))
    if not rows:
        raise ValueError(f"{path}: the template pair list is empty")
    return np.asarray(rows, dtype=np.int64)


def _lines_of_rows(path: str, rows: Iterable[int]) -> dict[int, int]:
    """1-based file line of the given 0-based rows (rows count non-blank lines only)."""
    wanted = set(int(r) for r in rows)
    found: dict[int, int] = {}
    for row, (ln, _) in enumerate(_lines(path)):
        if row in wanted:
            found[row] = ln
            if len(found) == len(wanted):
                break
    return found


def _check_duplicate_pairs(a: np.ndarray, b: np.ndarray, path: str) -> None:
    pairs = np.stack([a, b], axis=1)
    lo, hi = pairs.min(), pairs.max()
    if lo >= 0 and hi < 2**31:  # one int64 key per pair: a sort instead of a row-wise unique
        key = a * (int(hi) + 1) + b
        order = np.argsort(key, kind="stable")
        same = np.flatnonzero(key[order][1:] == key[order][:-1])
        if same.size == 0:
            return
    _, first, inverse = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    dup = np.flatnonzero(first[inverse] != np.arange(len(a)))
    if dup.size:
        shown_rows = dup[:_MAX_NAMED]
        lines = _lines_of_rows(path, [*shown_rows.tolist(), *first[inverse[shown_rows]].tolist()])
        shown = ", ".join(
            f"lines {lines[int(first[inverse[i]])]} and {lines[int(i)]} ({a[i]} {b[i]})" for i in shown_rows
        )
        more = f" (and {dup.size - _MAX_NAMED} more)" if dup.size > _MAX_NAMED else ""
        raise ValueError(
            f"{path}: {dup.size} duplicated template pair(s), the same pair listed twice: {shown}{more}; "
            "remove the repeated lines or pass allow_duplicates=True"
        )


def read_detector_scores(path: str | os.PathLike, names: list[str] | None = None) -> torch.Tensor:
    """Read detector scores from ``*_name_5pts_score.txt`` (last column of each line), as float32 (n,).

    When ``names`` (the face list) is given, the file must list the same images in the same order; the first
    mismatch is reported with its line.
    """
    path = os.fspath(path)
    scores: list[float] = []
    for ln, fields in _lines(path):
        if len(fields) < 2:
            raise ValueError(f"{path}:{ln}: expected 'img_name … detector_score', got {' '.join(fields)!r}")
        if names is not None:
            i = len(scores)
            if i >= len(names):
                raise ValueError(f"{path}:{ln}: more lines than the {len(names)} images of the face list")
            if fields[0] != names[i]:
                raise ValueError(
                    f"{path}:{ln}: image {fields[0]!r} does not match face list entry {i + 1} "
                    f"({names[i]!r}); "
                    "the detector-score file must list the faces in the face-list order"
                )
        scores.append(_number(fields[-1], float, "detector score", path, ln))
    if names is not None and len(scores) != len(names):
        raise ValueError(f"{path}: {len(scores)} detector scores for {len(names)} images in the face list")
    if not scores:
        raise ValueError(f"{path}: the detector-score file is empty")
    out = torch.tensor(scores, dtype=torch.float32)
    check_finite_tensor(out, f"detector scores in {path}")
    return out


@dataclass(frozen=True)
class IJBProtocol:
    """An IJB 1:1 protocol: the face list (image → template, media) and the template pairs.

    ``detector_scores`` is None unless a detector-score file was read.
    """

    image_names: list[str]
    templates: torch.Tensor
    medias: torch.Tensor
    pair_t1: torch.Tensor
    pair_t2: torch.Tensor
    labels: torch.Tensor
    detector_scores: torch.Tensor | None = None
    faces_source: str = "<faces>"
    pairs_source: str = "<pairs>"

    @property
    def num_images(self) -> int:
        return len(self.image_names)

    @property
    def num_pairs(self) -> int:
        return int(self.pair_t1.shape[0])


def read_ijb_protocol(
    face_tid_mid: str | os.PathLike,
    template_pair_label: str | os.PathLike,
    detector_scores: str | os.PathLike | None = None,
    allow_duplicates: bool = False,
) -> IJBProtocol:
    """Read the IJB-B/C 1:1 meta files (``*_face_tid_mid.txt``, ``*_template_pair_label.txt`` and optionally
    ``*_name_5pts_score.txt``) into an :class:`IJBProtocol`. Template ids in the pair list that no face
    belongs to are reported (first few, count, and the line of each)."""
    names, tids, mids = read_face_tid_mid(face_tid_mid)
    t1, t2, labels = read_template_pairs(template_pair_label, allow_duplicates)
    pairs_path = os.fspath(template_pair_label)
    known = torch.unique(tids)
    for side in (t1, t2):
        unknown = np.flatnonzero(~torch.isin(side, known).numpy())
        if unknown.size:
            lines = _lines_of_rows(pairs_path, unknown[:_MAX_NAMED].tolist())
            shown = ", ".join(f"{int(side[i])} (line {lines[int(i)]})" for i in unknown[:_MAX_NAMED])
            more = f" (and {unknown.size - _MAX_NAMED} more)" if unknown.size > _MAX_NAMED else ""
            raise ValueError(
                f"{pairs_path}: {unknown.size} pair(s) use template ids that no image of "
                f"{os.fspath(face_tid_mid)} belongs to: {shown}{more}"
            )
    det = read_detector_scores(detector_scores, names) if detector_scores is not None else None
    return IJBProtocol(names, tids, mids, t1, t2, labels, det, os.fspath(face_tid_mid), os.fspath(template_pair_label))


def template_features(
    embeddings: torch.Tensor,
    templates: torch.Tensor,
    medias: torch.Tensor,
    flipped: torch.Tensor | None = None,
    *,
    flip: bool = False,
    normalize_images: bool = False,
    detector_scores: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool image embeddings into L2-normalized template features.

    x_i = f_i (+ f_i^flip if ``flip``); x_i ← x_i/‖x_i‖ if ``normalize_images``; x_i ← q_i·x_i if
    ``detector_scores``; m_{t,u} = mean of x_i over the images of media u in template t; T_t = Σ_u m_{t,u};
    returns (sorted template ids, T_t/‖T_t‖). Mapping to the flags of insightface's ``eval_ijbc.py``:
    ``use_flip_test`` (adds the two features) ≡ ``flip=True``; ``use_norm_score=True`` (keeps the feature
    norm as a quality weight) ≡ ``normalize_images=False``; ``use_detector_score`` ≡ passing
    ``detector_scores``. Computes in the embeddings' dtype (float32 or float64). The pooling is linear, so the
    embeddings (and the detector scores) are first scaled by one exact power of two each, bringing their max-abs
    below ½: no sum can overflow, and the template features (hence the scores) of ``c·embeddings`` equal those of
    ``embeddings`` for any finite input.
    """
    check_embeddings(embeddings, "embeddings")
    n, d = embeddings.shape
    for t, name in ((templates, "templates"), (medias, "medias")):
        if not isinstance(t, torch.Tensor) or t.shape != (n,) or t.is_floating_point():
            raise ValueError(f"{name} must be an integer tensor of shape ({n},) aligned with the embeddings")
    x = embeddings if embeddings.dtype in (torch.float32, torch.float64) else embeddings.float()
    if flip:
        if flipped is None:
            raise ValueError("flip=True needs the flipped-image embeddings (flipped=...)")
        check_embeddings(flipped, "flipped", dim=d)
        if flipped.shape[0] != n:
            raise ValueError(f"flipped must have {n} rows like embeddings, got {flipped.shape[0]}")
        both = pow2_scale(torch.stack([x, flipped.to(x.dtype)]), dim=None, offset=1)[0]  # one scale for both
        x = both[0] + both[1]
    else:
        x = pow2_scale(x, dim=None, offset=1)[0]
    if normalize_images:
        zero = (l2_norm(x, dim=1) == 0).nonzero().flatten()
        if zero.numel():
            raise ValueError(f"{zero.numel()} image feature(s) are all-zero, e.g. rows {zero[:_MAX_NAMED].tolist()}")
        x = l2_normalize(x, dim=1)
    if detector_scores is not None:
        q = torch.as_tensor(detector_scores)
        if q.shape != (n,):
            raise ValueError(f"detector_scores must have shape ({n},), got {tuple(q.shape)}")
        check_finite_tensor(q, "detector_scores")
        x = x * pow2_scale(q.to(x.dtype), dim=None)[0].unsqueeze(1)
    groups, g = torch.unique(torch.stack([templates, medias], dim=1), dim=0, return_inverse=True)
    counts = torch.bincount(g, minlength=groups.shape[0]).to(x.dtype)
    media = torch.zeros(groups.shape[0], d, dtype=x.dtype).index_add_(0, g, x) / counts.unsqueeze(1)
    tids, tg = torch.unique(groups[:, 0], return_inverse=True)
    feats = torch.zeros(tids.shape[0], d, dtype=x.dtype).index_add_(0, tg, media)
    zero = (l2_norm(feats, dim=1) == 0).nonzero().flatten()
    if zero.numel():
        raise ValueError(
            f"{zero.numel()} template(s) pool to an all-zero feature (cosine undefined), e.g. template ids "
            f"{tids[zero[:_MAX_NAMED]].tolist()}; check their detector scores and embeddings"
        )
    return tids, l2_normalize(feats, dim=1)


def ijb_scores(
    protocol: IJBProtocol,
    embeddings: torch.Tensor,
    flipped: torch.Tensor | None = None,
    *,
    flip: bool = False,
    normalize_images: bool = False,
    use_detector_scores: bool = False,
    batch_size: int = 1 << 20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine scores of the IJB template pairs: returns (scores (P,), bool labels (P,)) in pair-file order.

    ``embeddings`` (and ``flipped``) are aligned with ``protocol.image_names``. The switches are explicit
    and off by default; see :func:`template_features` for the pooling and the mapping to insightface's
    flags. Pairs are scored ``batch_size`` at a time.
    """
    batch_size = check_int(batch_size, "batch_size", 1, what="a positive integer")
    embeddings = torch.as_tensor(embeddings)
    if embeddings.dim() != 2 or embeddings.shape[0] != protocol.num_images:
        raise ValueError(
            f"embeddings must have one row per image of {protocol.faces_source} "
            f"({protocol.num_images}), got shape {tuple(embeddings.shape)}"
        )
    if use_detector_scores and protocol.detector_scores is None:
        raise ValueError("use_detector_scores=True but the protocol has no detector scores (read_ijb_protocol(...))")
    tids, feats = template_features(
        embeddings,
        protocol.templates,
        protocol.medias,
        torch.as_tensor(flipped) if flipped is not None else None,
        flip=flip,
        normalize_images=normalize_images,
        detector_scores=protocol.detector_scores if use_detector_scores else None,
    )
    i1 = torch.searchsorted(tids, protocol.pair_t1).clamp_(max=tids.shape[0] - 1)
    i2 = torch.searchsorted(tids, protocol.pair_t2).clamp_(max=tids.shape[0] - 1)
    for idx, side in ((i1, protocol.pair_t1), (i2, protocol.pair_t2)):
        unknown = (tids[idx] != side).nonzero().flatten()
        if unknown.numel():
            raise ValueError(
                f"{protocol.pairs_source}: {unknown.numel()} pair(s) use template ids with no image, e.g. "
                f"{side[unknown[:_MAX_NAMED]].tolist()}"
            )
    scores = torch.empty(protocol.num_pairs, dtype=feats.dtype)
    for start in range(0, protocol.num_pairs, batch_size):
        sl = slice(start, start + batch_size)
        scores[sl] = (feats[i1[sl]] * feats[i2[sl]]).sum(dim=1)
    return scores, protocol.labels.clone()
