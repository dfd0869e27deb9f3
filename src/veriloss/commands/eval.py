"""``veriloss eval``: verification metrics, ROC/DET plots and score histograms from score files or embeddings.

* ``veriloss eval scores --scores FILE [--scores FILE ...] (--trials LIST | --labels LABELS.npy)``: each score file
  is a ``.npy`` array aligned with the trials (or labels), a text file with one score per line in trial order, or a
  text file of ``enroll test score`` lines matched to the trial list by key. One table row and one curve per file.
* ``veriloss eval embeddings FILE --protocol all-pairs | pairs FILE | trials FILE | ijb DIR``: FILE is ``.npy``
  (N×d, with ``<stem>.labels.npy`` / ``<stem>.keys.txt`` beside it as ``veriloss embed`` writes them, or --labels /
  --keys) or ``.pt`` (a dict with "embeddings" and "labels" and/or "keys").

Both write ``metrics.json``, ``metrics.md``, ``roc.png``, ``det.png`` and ``hist.png`` (each atomically) into --out
(default ``eval/<name>``) and print the markdown table. Definitions: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..metrics._scores import as_scores

DEFAULT_FAR = "1e-6,1e-5,1e-4,1e-3,1e-2"
DEFAULT_P_TARGET = "0.01,0.05"
PROTOCOLS = ("all-pairs", "pairs", "trials", "ijb")
SCORE_NORMS = {"z": "z-norm", "t": "t-norm", "s": "s-norm", "as": "as-norm"}
_MAX_NAMED = 5


# --- parser
def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--far", default=DEFAULT_FAR, help=f"comma-separated FARs for TAR@FAR, in (0, 1) [{DEFAULT_FAR}]")
    p.add_argument(
        "--p-target", default=DEFAULT_P_TARGET, help=f"comma-separated P_target values for minDCF [{DEFAULT_P_TARGET}]"
    )
    p.add_argument("--out", type=Path, help="output directory (default eval/<name>)")
    p.add_argument("--title", help="title of the table and plots")
    p.add_argument("--no-plots", action="store_true", help="write metrics.json and metrics.md only")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="subject-level bootstrap intervals from N replicates (identities resampled; 0 = off) [0]",
    )
    p.add_argument("--level", type=float, default=0.95, help="confidence level of the bootstrap intervals [0.95]")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap draws [0]")


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="verification metrics, ROC/DET plots and histograms from scores or embeddings")
    kinds = p.add_subparsers(dest="eval_kind", metavar="KIND")
    p.set_defaults(run=lambda args: p.print_help() or 2)

    s = kinds.add_parser(
        "scores",
        help="score file(s) + trial list or labels → metrics",
        description="Score files: .npy aligned with the trials/labels, one score per line (aligned), or "
        "'enroll test score' lines matched to the trial list by key. Several --scores give one row and one "
        "curve each.",
    )
    s.add_argument("--scores", action="append", required=True, type=Path, help="score file (repeatable)")
    s.add_argument("--name", action="append", help="system name per --scores, in order (default: file stems)")
    truth = s.add_mutually_exclusive_group(required=True)
    truth.add_argument("--trials", type=Path, help="trial list: VoxCeleb 'label enroll test' or Kaldi")
    truth.add_argument("--labels", type=Path, help="labels .npy (1 = target), aligned with bare score arrays")
    s.add_argument("--format", choices=("auto", "voxceleb", "kaldi"), default="auto", help="trial list format")
    _common(s)
    s.set_defaults(run=run_scores)

    e = kinds.add_parser(
        "embeddings",
        help="embeddings + protocol → metrics",
        description="--protocol all-pairs | pairs FILE | trials FILE | ijb DIR (or the file via --protocol-file). "
        "pairs: LFW pairs.txt (10-fold accuracy too) or 'label a b' lists; trials: VoxCeleb/Kaldi lists; ijb: a "
        "folder with *_face_tid_mid.txt, *_template_pair_label.txt and optionally *_name_5pts_score.txt.",
    )
    e.add_argument("embeddings", type=Path, help="embeddings .npy (N×d) or .pt (dict)")
    e.add_argument(
        "--protocol",
        nargs="+",
        required=True,
        metavar=("NAME", "PATH"),
        help="all-pairs, pairs PATH, trials PATH or ijb DIR",
    )
    e.add_argument("--protocol-file", type=Path, help="the pair/trial list or IJB folder (instead of a 2nd value)")
    e.add_argument("--labels", type=Path, help="labels .npy (default <stem>.labels.npy beside FILE)")
    e.add_argument("--keys", type=Path, help="keys .txt, one per row (default <stem>.keys.txt beside FILE)")
    e.add_argument("--name", help="system name (default: the embeddings file stem)")
    e.add_argument("--format", choices=("auto", "voxceleb", "kaldi"), default="auto", help="trial list format")
    e.add_argument("--lfw-ext", default=".jpg", help="image extension of the LFW keys Name/Name_0001.jpg [.jpg]")
    e.add_argument("--flip", action="store_true", help="ijb: add the flipped-image embeddings (needs --flipped)")
    e.add_argument("--flipped", type=Path, help="ijb: embeddings of the flipped images, aligned with FILE")
    e.add_argument("--norm", action="store_true", help="ijb: L2-normalize each image feature before pooling")
    e.add_argument("--detector", action="store_true", help="ijb: weight images by the detector score")
    e.add_argument("--score-norm", choices=tuple(SCORE_NORMS), help="pairs/trials: cohort score normalization")
    e.add_argument("--cohort", type=Path, help="cohort embeddings .npy/.pt for --score-norm")
    e.add_argument("--top-k", type=int, help="adaptive normalization: the k closest cohort scores (as: required)")
    _common(e)
    e.set_defaults(run=run_embeddings)


# --- options
def parse_rates(text: str, option: str) -> list[float]:
    """A comma-separated list of rates, each a number in the open interval (0, 1); errors name the option."""
    items = [t.strip() for t in str(text).split(",")]
    if not any(items):
        raise ValueError(f"{option}: empty list; give comma-separated values in (0, 1), e.g. {DEFAULT_FAR}")
    out = []
    for t in items:
        try:
            v = float(t)
        except ValueError:
            raise ValueError(f"{option}: {t!r} is not a number; give comma-separated values in (0, 1)") from None
        if not (math.isfinite(v) and 0.0 < v < 1.0):
            raise ValueError(f"{option}: {t} is outside the open interval (0, 1)")
        out.append(v)
    return out


def _name_some(items: list[str], what: str) -> str:
    shown = ", ".join(items[:_MAX_NAMED])
    more = f" (and {len(items) - _MAX_NAMED} more)" if len(items) > _MAX_NAMED else ""
    return f"{len(items)} {what}: {shown}{more}"


def _existing(path: Path, option: str, kind: str = "file") -> Path:
    ok = path.is_dir() if kind == "folder" else path.is_file()
    if not ok:
        raise ValueError(f"{option}: {kind} not found: {path}")
    return path


# --- score files
def _load_npy(path: Path, option: str) -> np.ndarray:
    _existing(path, option)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # numpy raises OSError, ValueError, EOFError (empty file), ... for a bad file
        reason = str(err).strip() or type(err).__name__
        raise ValueError(f"{option}: cannot read {path} as a .npy array ({reason})") from None


def read_labels(path: Path, option: str = "--labels") -> np.ndarray:
    """A 1-D .npy array of target labels (1/True = same identity, 0/False = different) as bool."""
    a = _load_npy(path, option)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{option}: {path} must hold a non-empty 1-D array of 0/1 labels, got shape {a.shape}")
    if a.dtype.kind not in "biuf" or not np.isin(a, (0, 1)).all():
        bad = np.flatnonzero(~np.isin(a, (0, 1)))[:_MAX_NAMED] if a.dtype.kind in "biuf" else []
        raise ValueError(
            f"{option}: {path} must hold labels 0 (non-target) or 1 (target); "
            f"first offending entries: {[f'[{i}]={a[i]!r}' for i in bad]}"
        )
    return a.astype(bool)


def _text_lines(path: Path, option: str):
    try:
        with open(path, encoding="utf-8") as f:
            for ln, line in enumerate(f, start=1):
                fields = line.split()
                if fields:
                    yield ln, fields
    except OSError as err:
        raise ValueError(f"{option}: cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{option}: {path} is not a UTF-8 text score file (use .npy for binary scores)") from None


def _float(text: str, path: Path, ln: int) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{path}:{ln}: score {text!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{path}:{ln}: score {text!r} is not finite")
    return v


def read_scores(path: Path, n_expected: int, trials=None, option: str = "--scores") -> np.ndarray:
    """Scores aligned with the ``n_expected`` trials, from a .npy array, a one-score-per-line text file, or
    ``enroll test score`` lines (matched by key to ``trials``; missing, extra and repeated pairs are errors that
    name them). The text layout is decided by the first non-blank line; errors name ``file:line``."""
    _existing(path, option)
    if path.suffix == ".npy":
        a = _load_npy(path, option)
        if a.ndim != 1 or a.dtype.kind not in "biuf":
            raise ValueError(f"{option}: {path} must hold a 1-D array of scores, got shape {a.shape} ({a.dtype})")
        if a.size != n_expected:
            raise ValueError(f"{option}: {path} holds {a.size} scores but there are {n_expected} trials")
        return as_scores(a, f"scores in {path}")
    rows = list(_text_lines(path, option))
    if not rows:
        raise ValueError(f"{option}: {path} is empty")
    width = len(rows[0][1])
    if width not in (1, 3):
        ln, fields = rows[0]
        raise ValueError(
            f"{path}:{ln}: expected one score per line or 'enroll test score', got {len(fields)} fields: "
            f"{' '.join(fields)!r}"
        )
    for ln, fields in rows:
        if len(fields) != width:
            layout = "one score per line" if width == 1 else "'enroll test score'"
            raise ValueError(f"{path}:{ln}: expected {layout} like line {rows[0][0]}, got {' '.join(fields)!r}")
    if width == 1:
        if len(rows) != n_expected:
            raise ValueError(f"{option}: {path} holds {len(rows)} scores but there are {n_expected} trials")
        return np.array([_float(f[0], path, ln) for ln, f in rows], dtype=np.float64)
    if trials is None:
        raise ValueError(f"{option}: {path} has 'enroll test score' lines; matching them needs --trials (not --labels)")
    by_pair: dict[tuple[str, str], tuple[float, int]] = {}
    dups = []
    for ln, (a, b, s) in rows:
        prev = by_pair.setdefault((a, b), (_float(s, path, ln), ln))
        if prev[1] != ln:
            dups.append(f"lines {prev[1]} and {ln} ({a} {b})")
    if dups:
        raise ValueError(f"{path}: " + _name_some(dups, "pair(s) scored twice"))
    wanted = list(zip(trials.enroll, trials.test))
    missing = [f"{a} {b} (line {ln})" for (a, b), ln in zip(wanted, trials.line_numbers) if (a, b) not in by_pair]
    if missing:
        raise ValueError(f"{path}: " + _name_some(missing, f"trial(s) of {trials.source} have no score"))
    known = set(wanted)
    extra = [f"{a} {b} (line {ln})" for (a, b), (_, ln) in by_pair.items() if (a, b) not in known]
    if extra:
        raise ValueError(f"{path}: " + _name_some(extra, f"scored pair(s) are not trials of {trials.source}"))
    return np.array([by_pair[p][0] for p in wanted], dtype=np.float64)


def _system_names(paths: list[Path], names: list[str] | None) -> list[str]:
    if names is None:
        names = [p.name[: -len(".npy")] if p.suffix == ".npy" else p.stem for p in paths]
    elif len(names) != len(paths):
        raise ValueError(f"--name: given {len(names)} time(s) for {len(paths)} --scores file(s); give one per file")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"system names must differ, {', '.join(dup)} is used twice; pass --name for each --scores")
    return names


def run_scores(args: argparse.Namespace) -> int:
    fars = parse_rates(args.far, "--far")
    ps = parse_rates(args.p_target, "--p-target")
    names = _system_names(args.scores, args.name)
    truth = args.trials if args.trials is not None else args.labels
    with _report_folder(args, names[0] if len(names) == 1 else truth.stem) as out:
        return _run_scores(args, out, fars, ps, names)


def _run_scores(args: argparse.Namespace, out: Path, fars: list[float], ps: list[float], names: list[str]) -> int:
    from ..protocols.trials import read_trials

    trials = None
    if args.trials is not None:
        trials = read_trials(_existing(args.trials, "--trials"), fmt=args.format)
        labels = trials.labels.numpy()
        truth = args.trials
    else:
        labels = read_labels(args.labels)
        truth = args.labels
    _check_both_kinds(labels, str(truth))
    _check_bootstrap(args)
    if args.bootstrap and trials is None:
        raise ValueError("--bootstrap resamples identities, which --labels does not name; use --trials instead")
    systems = []
    for name, path in zip(names, args.scores):
        s = read_scores(path, labels.size, trials)
        boot = _trial_bootstrap(args, s, labels, trials, fars, ps)
        systems.append((name, s[labels], s[~labels], {"scores": str(path)}, boot))
    meta = {"command": "scores", "truth": str(truth), "far": fars, "p_targets": ps}
    return _report(args, out, systems, fars, ps, meta)


def _check_bootstrap(args: argparse.Namespace) -> None:
    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap must be ≥ 0 (0 = no intervals), got {args.bootstrap}")
    if not (0.0 < args.level < 1.0):
        raise ValueError(f"--level must be in the open interval (0, 1), e.g. 0.95, got {args.level}")
    if args.bootstrap_seed < 0:
        raise ValueError(f"--bootstrap-seed must be ≥ 0, got {args.bootstrap_seed}")


def _trial_bootstrap(args, scores: np.ndarray, labels: np.ndarray, trials, fars: list, ps: list):
    """Subject bootstrap of a scored trial list (identity = first path component of each key), or None."""
    if not args.bootstrap:
        return None
    from ..protocols.bootstrap import bootstrap_trials, key_identity

    ea = [key_identity(k) for k in trials.enroll]
    eb = [key_identity(k) for k in trials.test]
    return bootstrap_trials(
        scores, labels, ea, eb, fars, ps, replicates=args.bootstrap, level=args.level, seed=args.bootstrap_seed
    )


def _check_both_kinds(labels: np.ndarray, source: str) -> None:
    n_t = int(labels.sum())
    if n_t == 0 or n_t == labels.size:
        kind = "target" if n_t == 0 else "non-target"
        raise ValueError(f"{source}: no {kind} trials; verification metrics need both kinds")


# --- embeddings
def _load_matrix(path: Path, option: str) -> tuple[torch.Tensor, dict]:
    """(embeddings N×d tensor, the rest of a .pt dict or {})."""
    _existing(path, option)
    extra: dict = {}
    if path.suffix == ".pt":
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many kinds for a bad file
            raise ValueError(f"{option}: cannot read {path} as a torch file ({type(err).__name__}: {err})") from None
        if isinstance(obj, dict):
            if "embeddings" not in obj:
                raise ValueError(f"{option}: {path} is a dict without an 'embeddings' entry (keys: {sorted(obj)})")
            extra = {k: v for k, v in obj.items() if k != "embeddings"}
            obj = obj["embeddings"]
        x = torch.as_tensor(np.asarray(obj)) if not isinstance(obj, torch.Tensor) else obj
    elif path.suffix == ".npy":
        x = torch.from_numpy(np.ascontiguousarray(_load_npy(path, option)))
    else:
        raise ValueError(f"{option}: {path} must be a .npy array or a .pt file")
    if x.dim() != 2 or x.shape[0] == 0 or not x.is_floating_point():
        raise ValueError(
            f"{option}: {path} must hold a non-empty N×d float array, got shape {tuple(x.shape)} ({x.dtype})"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{option}: {path} has {int((~torch.isfinite(x)).sum())} NaN/inf value(s)")
    return x, extra


def _beside(path: Path, suffix: str) -> Path:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + suffix)


def load_embeddings(
    path: Path, labels_path: Path | None = None, keys_path: Path | None = None
) -> tuple[torch.Tensor, torch.Tensor | None, list[str] | None]:
    """(embeddings, labels or None, keys or None) from a .npy (+ ``<stem>.labels.npy`` / ``<stem>.keys.txt``,
    or the explicit files) or a .pt dict; lengths are checked against the number of rows."""
    x, extra = _load_matrix(path, "embeddings")
    n = x.shape[0]
    labels = keys = None
    if labels_path is not None:
        labels = torch.from_numpy(_load_npy(labels_path, "--labels"))
    elif "labels" in extra:
        labels = torch.as_tensor(extra["labels"])
    elif _beside(path, ".labels.npy").is_file():
        labels_path = _beside(path, ".labels.npy")
        labels = torch.from_numpy(_load_npy(labels_path, "labels"))
    if labels is not None:
        if labels.dim() != 1 or labels.shape[0] != n:
            raise ValueError(f"labels {labels_path or path} hold shape {tuple(labels.shape)} for {n} embeddings")
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise ValueError(f"labels {labels_path or path} must be integer identity labels, got {labels.dtype}")
    if keys_path is not None:
        keys = [f[0] for _, f in _key_lines(_existing(keys_path, "--keys"))]
    elif "keys" in extra:
        keys = [str(k) for k in extra["keys"]]
    elif _beside(path, ".keys.txt").is_file():
        keys_path = _beside(path, ".keys.txt")
        keys = [f[0] for _, f in _key_lines(keys_path)]
    if keys is not None and len(keys) != n:
        raise ValueError(f"keys {keys_path or path}: {len(keys)} keys for {n} embeddings (one key per row)")
    return x, labels, keys


def _key_lines(path: Path):
    for ln, fields in _text_lines(path, "--keys"):
        if len(fields) != 1:
            raise ValueError(f"{path}:{ln}: expected one key per line, got {' '.join(fields)!r}")
        yield ln, fields


def _protocol(args: argparse.Namespace) -> tuple[str, Path | None]:
    values = args.protocol
    if len(values) > 2:
        raise ValueError(f"--protocol takes a name and at most one path, got {' '.join(values)!r}")
    name = values[0]
    if name not in PROTOCOLS:
        raise ValueError(f"--protocol: unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    path = Path(values[1]) if len(values) == 2 else args.protocol_file
    if len(values) == 2 and args.protocol_file is not None:
        raise ValueError("give the protocol path either after --protocol or with --protocol-file, not both")
    if name == "all-pairs" and path is not None:
        raise ValueError("--protocol all-pairs takes no file (it scores every pair of the labelled embeddings)")
    if name != "all-pairs" and path is None:
        what = "folder" if name == "ijb" else "file"
        raise ValueError(f"--protocol {name} needs a {what}: --protocol {name} PATH")
    if name != "ijb" and path is not None:
        _existing(path, "--protocol")
    return name, path


def _is_lfw(path: Path) -> bool:
    """LFW pairs.txt starts with a header of one or two integers ('10 300'); a generic list with 'label a b'."""
    for _, fields in _text_lines(path, "--protocol"):
        return len(fields) <= 2 and all(f.isdigit() for f in fields)
    return False


def _trial_scores(args, kind: str, path: Path, x: torch.Tensor, keys: list[str] | None):
    """Scores and labels of a trial or pair list (+ LFW fold accuracy), optionally score-normalized."""
    from ..protocols.pair_lists import lfw_accuracy, read_lfw_pairs, read_pair_list
    from ..protocols.score_norm import normalize_scores
    from ..protocols.trials import lookup_embeddings, read_trials, score_trials

    if kind == "trials":
        trials, lfw = read_trials(path, fmt=args.format), False
    else:
        lfw = _is_lfw(path)
        trials = read_lfw_pairs(path, ext=args.lfw_ext) if lfw else read_pair_list(path)
    if keys is None:
        raise ValueError(
            f"--protocol {kind} matches embeddings by key, but {args.embeddings} has no keys: put "
            f"{_beside(args.embeddings, '.keys.txt').name} beside it, pass --keys, or store 'keys' in the .pt"
        )
    scores = score_trials(trials, x, keys)
    meta: dict = {}
    if args.score_norm:
        cohort, _ = _load_matrix(args.cohort, "--cohort")
        table, row = lookup_embeddings(trials.keys(), x, keys, trials.source)
        ia = torch.tensor([row[k] for k in trials.enroll], dtype=torch.long)
        ib = torch.tensor([row[k] for k in trials.test], dtype=torch.long)
        method = SCORE_NORMS[args.score_norm]
        scores = normalize_scores(scores, table[ia], table[ib], cohort, method=method, top_k=args.top_k)
        meta["score_norm"] = {"method": method, "cohort": str(args.cohort), "top_k": args.top_k}
    labels = trials.labels.numpy()
    s = scores.numpy()
    extra: dict = {}
    if lfw:
        acc = lfw_accuracy(s, labels, trials.folds)
        extra["fold_accuracy"] = {
            "mean": acc.mean,
            "std": acc.std,
            "standard_error": acc.standard_error,
            "accuracies": acc.accuracies.tolist(),
            "thresholds": acc.thresholds.tolist(),
        }
    meta["list_format"] = "lfw" if lfw else ("pairs" if kind == "pairs" else args.format)
    return s, labels, extra, meta, trials


def _ijb_files(folder: Path) -> tuple[Path, Path, Path | None]:
    _existing(folder, "--protocol ijb", kind="folder")
    for base in (folder, folder / "meta"):
        faces = sorted(base.glob("*_face_tid_mid.txt"))
        pairs = sorted(base.glob("*_template_pair_label.txt"))
        det = sorted(base.glob("*_name_5pts_score.txt"))
        if faces or pairs:
            break
    for found, pattern in ((faces, "*_face_tid_mid.txt"), (pairs, "*_template_pair_label.txt")):
        if len(found) != 1:
            listed = ", ".join(p.name for p in found) or "none"
            raise ValueError(f"--protocol ijb: need exactly one {pattern} in {folder} (or its meta/), found {listed}")
    if len(det) > 1:
        raise ValueError(f"--protocol ijb: more than one *_name_5pts_score.txt in {base}: {[p.name for p in det]}")
    return faces[0], pairs[0], (det[0] if det else None)


def _ijb_scores(args, folder: Path, x: torch.Tensor):
    from ..protocols.ijb import ijb_scores, read_ijb_protocol

    faces, pairs, det = _ijb_files(folder)
    if args.detector and det is None:
        raise ValueError(f"--detector needs the detector scores *_name_5pts_score.txt in {faces.parent}")
    if args.flip != (args.flipped is not None):
        raise ValueError("--flip needs --flipped FILE (the flipped-image embeddings), and --flipped needs --flip")
    protocol = read_ijb_protocol(faces, pairs, det if args.detector else None)
    flipped = _load_matrix(args.flipped, "--flipped")[0] if args.flip else None
    if x.shape[0] != protocol.num_images:
        raise ValueError(
            f"{args.embeddings} has {x.shape[0]} rows but {faces} lists {protocol.num_images} images; "
            "the embeddings must follow the face list order"
        )
    scores, labels = ijb_scores(
        protocol, x, flipped, flip=args.flip, normalize_images=args.norm, use_detector_scores=args.detector
    )
    meta = {"faces": str(faces), "pairs": str(pairs), "flip": args.flip, "norm": args.norm, "detector": args.detector}
    return scores.numpy(), labels.numpy(), meta


def run_embeddings(args: argparse.Namespace) -> int:

    fars = parse_rates(args.far, "--far")
    ps = parse_rates(args.p_target, "--p-target")
    kind, ppath = _protocol(args)
    if args.score_norm and kind not in ("pairs", "trials"):
        raise ValueError(f"--score-norm applies to the pairs and trials protocols, not {kind}")
    if args.score_norm and args.cohort is None:
        raise ValueError("--score-norm needs --cohort FILE (impostor cohort embeddings, .npy or .pt)")
    if args.top_k is not None and not args.score_norm:
        raise ValueError("--top-k is for adaptive score normalization; give --score-norm too")
    if kind != "ijb" and (args.flip or args.flipped or args.norm or args.detector):
        raise ValueError("--flip, --flipped, --norm and --detector apply to --protocol ijb only")
    _check_bootstrap(args)
    if args.bootstrap and kind == "ijb":
        raise ValueError("--bootstrap is not available for --protocol ijb (its templates do not name identities)")
    name = args.name or _beside(args.embeddings, "").name
    with _report_folder(args, name) as out:
        return _run_embeddings(args, out, name, kind, ppath, fars, ps)


def _run_embeddings(args, out: Path, name: str, kind: str, ppath: Path | None, fars: list, ps: list) -> int:
    from ..protocols import all_pairs, bootstrap_all_pairs

    x, labels, keys = load_embeddings(args.embeddings, args.labels, args.keys)
    meta: dict = {"command": "embeddings", "embeddings": str(args.embeddings), "protocol": kind, "far": fars}
    meta["p_targets"] = ps
    if ppath is not None:
        meta["protocol_path"] = str(ppath)
    extra: dict = {}
    if kind == "all-pairs":
        if labels is None:
            raise ValueError(
                f"--protocol all-pairs needs identity labels for {args.embeddings}: put "
                f"{_beside(args.embeddings, '.labels.npy').name} beside it, pass --labels, or store 'labels' in "
                "the .pt"
            )
        result = all_pairs(x, labels, far=fars, p_targets=ps)
        genuine, impostor = result.genuine, result.impostor
        boot = None
        if args.bootstrap:
            boot = bootstrap_all_pairs(
                x, labels, fars, ps, replicates=args.bootstrap, level=args.level, seed=args.bootstrap_seed
            )
    else:
        trials = None
        if kind == "ijb":
            s, y, more = _ijb_scores(args, ppath, x)
        else:
            s, y, extra, more, trials = _trial_scores(args, kind, ppath, x, keys)
        meta.update(more)
        _check_both_kinds(y, str(ppath))
        genuine, impostor = s[y], s[~y]
        boot = _trial_bootstrap(args, s, y, trials, fars, ps)
    return _report(args, out, [(name, genuine, impostor, extra, boot)], fars, ps, meta)


# --- output
#: the files a report folder holds; a report removes those it does not write, so a folder never mixes two reports
REPORT_FILES = ("metrics.md", "metrics.json", "roc.png", "det.png", "hist.png")


@contextlib.contextmanager
def _report_folder(args, default_name: str):
    """--out (default ``eval/<name>``), created, proven writable and held by this process for the whole command."""
    from .._io import OutputLock, output_dir

    out = output_dir(args.out if args.out is not None else Path("eval") / default_name)
    with OutputLock(out, "report folder"):
        yield out


def _report(args, out: Path, systems: list, fars: list[float], ps: list[float], meta: dict) -> int:
    from ..report.tables import metrics_markdown, system_metrics, write_metrics

    records = [system_metrics(n, g, i, fars, ps, extra=ex, bootstrap=b) for n, g, i, ex, b in systems]
    if args.bootstrap:
        meta["bootstrap"] = {"replicates": args.bootstrap, "level": args.level, "seed": args.bootstrap_seed}
    md_path, js_path = write_metrics(out, records, title=args.title, meta=meta)
    written = [md_path, js_path]
    if not args.no_plots:
        from ..report.histograms import score_histograms
        from ..report.plots import det_plot, roc_plot

        curves = {n: (g, i) for n, g, i, _, _ in systems}
        bands = {n: b for n, _, _, _, b in systems if b is not None} or None
        written.append(roc_plot(curves, out / "roc.png", far=fars, title=args.title, intervals=bands))
        written.append(det_plot(curves, out / "det.png", far=fars, title=args.title, intervals=bands))
        written.append(score_histograms(curves, out / "hist.png", title=args.title))
    for stale in set(REPORT_FILES) - {p.name for p in written}:
        (out / stale).unlink(missing_ok=True)  # plots of an earlier report would pair with these metrics
    print(metrics_markdown(records, args.title))
    print("wrote " + ", ".join(os.fspath(p) for p in written))
    return 0
