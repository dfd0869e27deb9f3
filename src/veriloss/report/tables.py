"""Metrics tables: one record per system (docs/evaluation.md §Metrics), rendered as markdown and JSON.

A *system record* is a plain, JSON-ready dict built by :func:`system_metrics`::

    {"name", "n_genuine", "n_impostor", "eer", "eer_threshold", "auc",
     "min_dcf": [{"p_target", "min_dcf", "threshold", "p_miss", "p_fa", "c_miss", "c_fa", "normalized"}, ...],
     "tar_at_far": [{"far", "measurable", "tar", "threshold", "k", "impostors_admitted", "far_achieved",
                     "genuine_accepted", "impostors_needed"}, ...],
     ...extra keys (e.g. "fold_accuracy": {"mean", "std", "standard_error", "accuracies"})}

With a subject bootstrap (:mod:`veriloss.metrics.bootstrap`) the record also holds ``"bootstrap": {"replicates",
"level", "seed", "n_identities"}`` and a ``"ci": {"low", "high", "impostors", "undefined"}`` beside each value:
``"eer_ci"`` at the top level and ``"ci"`` in each min_dcf and tar_at_far entry ("impostors": the impostor pairs
the point estimate's threshold rests on; "undefined": replicates without a value). The markdown shows the interval
in brackets after each value.

Rates are fractions (the markdown shows %). Choices: a threshold of ±inf ("reject everything") and every value of
a not-measurable TAR@FAR (f·N < 1) are ``null`` in JSON, so the file is strict JSON; "impostors_needed" = ⌈1/f⌉
says how many impostor scores would make it measurable.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..metrics import auc, eer, min_dcf, tar_at_far
from ..metrics._scores import as_scores, check_fars
from ..metrics.summary import ImpostorSummary
from ._atomic import write_text

__all__ = [
    "DEFAULT_FARS",
    "DEFAULT_P_TARGETS",
    "metrics_json",
    "metrics_markdown",
    "system_metrics",
    "write_metrics",
]

DEFAULT_FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
DEFAULT_P_TARGETS = (0.01, 0.05)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def system_metrics(
    name: str,
    genuine: object,
    impostor: object,
    far: Sequence[float] = DEFAULT_FARS,
    p_targets: Sequence[float] = DEFAULT_P_TARGETS,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    extra: Mapping[str, object] | None = None,
    bootstrap: object | None = None,
) -> dict:
    """Every verification metric of one system as a JSON-ready record (layout in the module docstring).

    TAR@FAR (exact definition, with the impostors admitted), EER (interpolated) with its threshold, normalized
    minDCF for each ``p_targets`` and AUC, computed by :mod:`veriloss.metrics`. ``impostor`` is a score array or an
    :class:`~veriloss.metrics.ImpostorSummary` (built for these FARs and p_targets, as the all-pairs protocol does).
    ``extra`` entries are copied into the record (they must be JSON-serializable). ``bootstrap``, a
    :class:`~veriloss.metrics.BootstrapResult` of the same FARs and p_targets, adds the intervals.
    """
    fars, _ = check_fars(list(far))
    g = as_scores(genuine, "genuine")
    imp = impostor if isinstance(impostor, ImpostorSummary) else as_scores(impostor, "impostor")
    e = eer(g, imp)
    record: dict = {
        "name": str(name),
        "n_genuine": int(g.size),
        "n_impostor": int(e.n_impostor),
        "eer": e.eer,
        "eer_threshold": _finite(e.threshold),
        "auc": float(auc(g, imp)),
        "min_dcf": [],
        "tar_at_far": [],
    }
    for p in p_targets:
        m = min_dcf(g, imp, p_target=p, c_miss=c_miss, c_fa=c_fa)
        record["min_dcf"].append(
            {
                "p_target": m.p_target,
                "min_dcf": m.min_dcf,
                "threshold": _finite(m.threshold),
                "p_miss": m.p_miss,
                "p_fa": m.p_fa,
                "c_miss": m.c_miss,
                "c_fa": m.c_fa,
                "normalized": m.normalized,
            }
        )
    for t in tar_at_far(g, imp, fars):
        record["tar_at_far"].append(
            {
                "far": t.far_target,
                "measurable": t.measurable,
                "tar": t.tar,
                "threshold": _finite(t.threshold),
                "k": t.k,
                "impostors_admitted": t.impostors_admitted,
                "far_achieved": t.far,
                "genuine_accepted": t.genuine_accepted,
                "impostors_needed": math.ceil(1 / t.far_target),
            }
        )
    if bootstrap is not None:
        _add_intervals(record, bootstrap)
    if extra:
        record.update(extra)
    return record


def _ci(m) -> dict:
    return {"low": _finite(m.low), "high": _finite(m.high), "impostors": m.impostors, "undefined": m.undefined}


def _add_intervals(record: dict, boot) -> None:
    from ..metrics.bootstrap import BootstrapResult, _dcf_key, _tar_key

    if not isinstance(boot, BootstrapResult):
        raise ValueError(f"bootstrap must be a BootstrapResult (veriloss.metrics.bootstrap), got {type(boot).__name__}")
    record["bootstrap"] = {
        "replicates": boot.replicates,
        "level": boot.level,
        "seed": boot.seed,
        "n_identities": int(boot.identities.size),
    }
    record["eer_ci"] = _ci(boot.eer)
    for m in record["min_dcf"]:
        if _dcf_key(m["p_target"]) in boot.metrics:
            m["ci"] = _ci(boot.metrics[_dcf_key(m["p_target"])])
    for t in record["tar_at_far"]:
        if _tar_key(t["far"]) in boot.metrics:
            t["ci"] = _ci(boot.metrics[_tar_key(t["far"])])


def _records(systems: Mapping | Sequence[Mapping]) -> list[Mapping]:
    rows = [systems] if isinstance(systems, Mapping) else list(systems)
    if not rows:
        raise ValueError("systems is empty: pass at least one system record (system_metrics(...))")
    for r in rows:
        if not isinstance(r, Mapping) or "name" not in r or "tar_at_far" not in r:
            raise ValueError("each system must be a record made by system_metrics(...)")
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _far_label(f: float) -> str:
    """FARs below 1e-3 in short exponent form (1e-4, 2.5e-5), the others as decimals (0.001, 0.01)."""
    if f >= 1e-3:
        return f"{f:g}"
    mantissa, exponent = f"{f:.6e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _interval(ci: Mapping | None, scale: float, digits: int) -> str:
    """`` [low, high]`` of a bootstrap interval ("" without one; "n/a" for an undefined end)."""
    if not ci:
        return ""
    ends = ["n/a" if v is None else f"{scale * v:.{digits}f}" for v in (ci["low"], ci["high"])]
    return f" [{ends[0]}, {ends[1]}]"


def _tar_cell(t: Mapping) -> str:
    if not t["measurable"]:
        return "not measurable"
    return f"{100 * t['tar']:.2f}{_interval(t.get('ci'), 100, 2)} ({t['impostors_admitted']:,})"


def metrics_markdown(systems: Mapping | Sequence[Mapping], title: str | None = None) -> str:
    """A markdown table with one row per system: counts, EER %, minDCF per p_target, AUC, TAR@FAR % per FAR.

    Each TAR@FAR cell is ``TAR% (impostors admitted)``; "not measurable" where f·N < 1. FAR and p_target columns
    are the union over the systems in first-seen order (a cell is empty where a system lacks that value). A
    ``fold_accuracy`` entry (LFW protocol) adds a "k-fold acc %" column with mean ± std.
    """
    rows = _records(systems)
    fars = list(dict.fromkeys(t["far"] for r in rows for t in r["tar_at_far"]))
    ps = list(dict.fromkeys(m["p_target"] for r in rows for m in r.get("min_dcf", [])))
    folds = {len(r["fold_accuracy"]["accuracies"]) for r in rows if r.get("fold_accuracy")}
    cols = ["system", "genuine", "impostor", "EER %", *(f"minDCF p={p:g}" for p in ps), "AUC"]
    cols += [f"TAR@FAR={_far_label(f)} %" for f in fars]
    if folds:
        cols.append(f"{'/'.join(str(k) for k in sorted(folds))}-fold acc %")
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
    for r in rows:
        dcf = {m["p_target"]: f"{m['min_dcf']:.4f}{_interval(m.get('ci'), 1, 4)}" for m in r.get("min_dcf", [])}
        tar = {t["far"]: t for t in r["tar_at_far"]}
        cells = [
            _cell(r["name"]),
            f"{r['n_genuine']:,}",
            f"{r['n_impostor']:,}",
            f"{100 * r['eer']:.3f}{_interval(r.get('eer_ci'), 100, 3)}",
            *(dcf.get(p, "") for p in ps),
            f"{r['auc']:.6f}",
            *(_tar_cell(tar[f]) if f in tar else "" for f in fars),
        ]
        if folds:
            fa = r.get("fold_accuracy")
            cells.append(f"{100 * fa['mean']:.2f} ± {100 * fa['std']:.2f}" if fa else "")
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        "TAR@FAR cells: TAR in % and, in parentheses, the impostors the threshold admits (at most ⌊FAR·N⌋ of N "
        "impostor scores); *not measurable*: FAR·N < 1."
    )
    boots = [r["bootstrap"] for r in rows if r.get("bootstrap")]
    if boots:
        b = boots[0]
        note += (
            f" Brackets: {100 * b['level']:g}% subject-bootstrap intervals ({b['replicates']:,} replicates over "
            f"{b['n_identities']:,} identities, seed {b['seed']}; identities resampled, docs/evaluation.md)."
        )
    head = f"## {title}\n\n" if title else ""
    return head + "\n".join(lines) + "\n\n" + note + "\n"


def _strict(x: object) -> object:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Mapping):
        return {str(k): _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    return x


def metrics_json(systems: Mapping | Sequence[Mapping], meta: Mapping[str, object] | None = None) -> str:
    """``{"meta": {...}, "systems": [record, ...]}`` as strict JSON (non-finite numbers become null)."""
    doc = {"meta": dict(meta or {}), "systems": [dict(r) for r in _records(systems)]}
    return json.dumps(_strict(doc), indent=2, allow_nan=False) + "\n"


def write_metrics(
    out_dir: str | os.PathLike,
    systems: Mapping | Sequence[Mapping],
    title: str | None = None,
    meta: Mapping[str, object] | None = None,
) -> tuple[Path, Path]:
    """Write ``metrics.md`` and ``metrics.json`` into ``out_dir`` (created if needed), each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = write_text(out / "metrics.md", metrics_markdown(systems, title))
    js = write_text(out / "metrics.json", metrics_json(systems, meta))
    return md, js
