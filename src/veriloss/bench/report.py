"""The bench report: per-variant mean ± std over seeds, impostor counts, α-head statistics, one DET plot, wall times.

Everything is read back from the run folders (``metrics.json``, ``bench.json``, ``history.jsonl``, ``scores.npz``),
so a report can be rebuilt at any time and always describes what is on disk. Written into the bench folder:
``report.md``, ``report.json`` (the same numbers plus every run's values) and ``det.png``.

Choices:

* spread: the sample standard deviation (n − 1 in the denominator) over the finished seeds; none for one seed;
* a TAR@FAR is averaged over the seeds where it is measurable (f·N ≥ 1); with one test set N is the same for all;
* impostor counts: N (impostor pairs) and, per FAR, the impostors the threshold admits (≤ ⌊f·N⌋), as ranges when
  seeds differ;
* α statistics (heads that report them: alpha, qmargin, a3m, a3m-i): the mean support size and p_y = 0 fraction
  over training (the trainer's ``train_*_mean``), and p_y = 0 over the first and the last epoch from
  ``history.jsonl`` (rows of a resumed session replace those of the session before, by step);
* wall time: the sum over a run's sessions of trainer construction, training and final evaluation, in this
  bench (steps replayed after a resume from the last checkpoint count twice);
* DET: the lowest finished seed of each variant that has ``scores.npz``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..report._atomic import write_text
from ..report.tables import _far_label
from .runner import BENCH_NAME, RunSpec, Variant, read_finished
from .scores import SCORES_NAME, load_scores

__all__ = ["REPORT_FARS", "collect", "report_markdown", "run_record", "stat", "write_report"]

#: the FARs of the bench tables
REPORT_FARS = (1e-3, 1e-4, 1e-5, 1e-6)


def stat(values: Sequence[float]) -> dict:
    """``{"mean", "std", "n", "values"}``: mean and sample standard deviation (n − 1); std is None for n < 2 and
    mean is None for no values."""
    v = [float(x) for x in values]
    mean = float(np.mean(v)) if v else None
    std = float(np.std(v, ddof=1)) if len(v) >= 2 else None
    return {"mean": mean, "std": std, "n": len(v), "values": v}


def _history_epochs(run_dir: Path) -> dict[str, float]:
    """p_y = 0 and support size over the first and last epoch of training (from ``history.jsonl``)."""
    rows: dict[int, dict] = {}
    try:
        lines = (run_dir / "history.jsonl").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "loss" in row and "step" in row:
            rows[int(row["step"])] = row  # a later session's row for the same step replaces the earlier one
    out: dict[str, float] = {}
    for key in ("py_zero", "support_size"):
        have = [r for r in rows.values() if key in r]
        if not have:
            continue
        first, last = min(r["epoch"] for r in have), max(r["epoch"] for r in have)
        out[f"{key}_first_epoch"] = float(np.mean([r[key] for r in have if r["epoch"] == first]))
        out[f"{key}_last_epoch"] = float(np.mean([r[key] for r in have if r["epoch"] == last]))
    return out


def run_record(spec: RunSpec, far: Sequence[float] = REPORT_FARS) -> dict:
    """One run as the report sees it: status, metrics at ``far`` (when finished), α statistics, wall time."""
    from ..checkpoint import CHECKPOINT_NAME

    book = {}
    try:
        book = json.loads((spec.dir / BENCH_NAME).read_text())
    except (OSError, ValueError):
        pass
    sessions = book.get("sessions", [])
    doc = read_finished(spec.dir)
    if doc is not None:
        status = "finished"
    elif sessions and sessions[-1].get("status") == "failed":
        status = "failed"
    elif (spec.dir / CHECKPOINT_NAME).exists():
        status = "partial"
    else:
        status = "not started"
    rec: dict = {
        "seed": spec.seed,
        "dir": str(spec.dir),
        "status": status,
        "wall_seconds": float(sum(s.get("seconds", 0.0) for s in sessions)),
        "sessions": len(sessions),
        "threads": sorted({s["threads"] for s in sessions if "threads" in s}),
        "scores": (spec.dir / SCORES_NAME).exists(),
    }
    if doc is None:
        return rec
    m = doc["systems"][0]
    by_far = {float(t["far"]): t for t in m["tar_at_far"]}
    rec.update(
        steps=m.get("steps"),
        precision=m.get("precision"),  # absent from runs of versions before it was recorded
        n_embeddings=m.get("n_embeddings"),
        n_genuine=m["n_genuine"],
        n_impostor=m["n_impostor"],
        eer=m["eer"],
        auc=m.get("auc"),
        tar_at_far=[
            {
                "far": f,
                "available": f in by_far,
                "measurable": bool(by_far[f]["measurable"]) if f in by_far else False,
                "tar": by_far[f]["tar"] if f in by_far else None,
                "impostors_admitted": by_far[f]["impostors_admitted"] if f in by_far else None,
            }
            for f in far
        ],
    )
    alpha = {k: m[f"train_{k}_mean"] for k in ("support_size", "py_zero") if f"train_{k}_mean" in m}
    if alpha:
        rec["alpha"] = {**{f"{k}_mean": v for k, v in alpha.items()}, **_history_epochs(spec.dir)}
    return rec


def _unique(values: Sequence) -> list:
    return sorted({v for v in values if v is not None})


def collect(
    variants: Sequence[Variant],
    specs: Sequence[RunSpec],
    far: Sequence[float] = REPORT_FARS,
    meta: Mapping[str, object] | None = None,
) -> dict:
    """The report document: ``{"meta", "variants": [{name, columns, loss, sampler, runs, summary, det_seed}]}``."""
    far = [float(f) for f in far]
    out = []
    for v in variants:
        runs = [run_record(s, far) for s in specs if s.variant == v.name]
        done = [r for r in runs if r["status"] == "finished"]
        tars = []
        for i, f in enumerate(far):
            cells = [r["tar_at_far"][i] for r in done]
            tars.append(
                {
                    "far": f,
                    **stat([c["tar"] for c in cells if c["measurable"]]),
                    "measurable": bool(cells) and all(c["measurable"] for c in cells),
                    "impostors_admitted": _unique([c["impostors_admitted"] for c in cells]),
                }
            )
        summary: dict = {
            "finished": len(done),
            "planned": len(runs),
            "eer": stat([r["eer"] for r in done]),
            "tar_at_far": tars,
            "n_genuine": _unique([r["n_genuine"] for r in done]),
            "n_impostor": _unique([r["n_impostor"] for r in done]),
            "wall_seconds": stat([r["wall_seconds"] for r in done]),
        }
        with_alpha = [r["alpha"] for r in done if "alpha" in r]
        if with_alpha:
            keys = dict.fromkeys(k for a in with_alpha for k in a)
            summary["alpha"] = {k: stat([a[k] for a in with_alpha if k in a]) for k in keys}
        det_seed = next((r["seed"] for r in sorted(done, key=lambda r: r["seed"]) if r["scores"]), None)
        out.append(
            {
                "name": v.name,
                "columns": v.columns,
                "loss": v.config["loss"],
                "sampler": v.config["sampler"],
                "runs": runs,
                "summary": summary,
                "det_seed": det_seed,
            }
        )
    return {"meta": {**dict(meta or {}), "far": far, "std": "sample (n - 1)"}, "variants": out}


# --------------------------------------------------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------------------------------------------------
def _pm(s: dict, scale: float = 100.0, digits: int = 2) -> str:
    if s["mean"] is None:
        return "—"
    text = f"{scale * s['mean']:.{digits}f}"
    return text if s["std"] is None else f"{text} ± {scale * s['std']:.{digits}f}"


def _range(values: list) -> str:
    if not values:
        return "—"
    return f"{values[0]:,}" if len(values) == 1 else f"{values[0]:,}–{values[-1]:,}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> list[str]:
    align = "|" + "|".join(["---"] * left + ["---:"] * (len(head) - left)) + "|"
    return [_row(head), align, *(_row(r) for r in rows)]


def report_markdown(doc: Mapping) -> str:
    """The report as markdown: verification table, impostor counts, α statistics, DET plot link, runs."""
    meta, variants = doc["meta"], doc["variants"]
    far = meta["far"]
    keys = list(dict.fromkeys(k for v in variants for k in v["columns"])) or ["name"]

    def cols(v: Mapping) -> list[str]:
        return [v["columns"].get(k, v["name"]) if keys != ["name"] else v["name"] for k in keys]

    lines = [f"# {meta.get('title', 'veriloss bench')}", ""]
    for label, key in (("command", "command"), ("base recipe", "base"), ("overrides", "overrides"),
                       ("skipped (invalid) grid points", "skipped")):  # fmt: skip
        if meta.get(key):
            value = ", ".join(f"`{x}`" for x in meta[key]) if isinstance(meta[key], list) else f"`{meta[key]}`"
            lines.append(f"- {label}: {value}")
    n_imp = _unique([n for v in variants for n in v["summary"]["n_impostor"]])
    n_gen = _unique([n for v in variants for n in v["summary"]["n_genuine"]])
    if n_imp:
        lines.append(f"- test: all pairs of the test split: {_range(n_gen)} genuine, {_range(n_imp)} impostor pairs")
    lines.append("")

    lines += ["## Verification", ""]
    head = [*keys, "seeds", "EER %", *(f"TAR@FAR={_far_label(f)} %" for f in far), "wall min"]
    rows = []
    for v in variants:
        s = v["summary"]
        tar_cells = [
            _pm(t) if t["measurable"] or t["n"] else ("not measurable" if s["finished"] else "—")
            for t in s["tar_at_far"]
        ]
        rows.append(
            [*cols(v), f"{s['finished']}/{s['planned']}", _pm(s["eer"]), *tar_cells, _pm(s["wall_seconds"], 1 / 60, 1)]
        )
    lines += _table(head, rows, len(keys))
    lines += [
        "",
        "Mean ± sample standard deviation (n − 1) over the finished seeds (seeds: finished/planned); one seed: its "
        "value. Wall: minutes per run (trainer start, training and final evaluation).",
        "",
    ]

    lines += ["## Impostor pairs behind each FAR", ""]
    head = [*keys, "genuine", "impostor", *(f"admitted at {_far_label(f)}" for f in far)]
    rows = [
        [
            *cols(v),
            _range(v["summary"]["n_genuine"]),
            _range(v["summary"]["n_impostor"]),
            *(_range(t["impostors_admitted"]) for t in v["summary"]["tar_at_far"]),
        ]
        for v in variants
    ]
    lines += _table(head, rows, len(keys))
    lines += [
        "",
        "TAR@FAR=f thresholds admit at most ⌊f·N⌋ of the N impostor pairs; the TAR rests on that many impostors.",
        "",
    ]

    lines += ["## α heads over training", ""]
    alpha = [v for v in variants if "alpha" in v["summary"]]
    if alpha:
        head = [*keys, "support size", "p_y = 0 %", "p_y = 0 first epoch %", "p_y = 0 last epoch %"]
        rows = []
        for v in alpha:
            a = v["summary"]["alpha"]
            empty = stat([])
            rows.append(
                [
                    *cols(v),
                    _pm(a.get("support_size_mean", empty), 1.0, 1),
                    _pm(a.get("py_zero_mean", empty)),
                    _pm(a.get("py_zero_first_epoch", empty)),
                    _pm(a.get("py_zero_last_epoch", empty)),
                ]
            )
        lines += _table(head, rows, len(keys))
        lines += [
            "",
            "Support size: classes with p_j > 0 per sample; p_y = 0: fraction of samples whose target is outside the "
            "support. Means over the logged training steps (and over the first / last epoch), then over seeds.",
            "",
        ]
    else:
        lines += ["No variant uses an α head (no support statistics).", ""]

    lines += ["## DET", ""]
    plotted = [f"{v['name']} (seed {v['det_seed']})" for v in variants if v["det_seed"] is not None]
    if plotted:
        lines += ["![DET curves of every variant](det.png)", "", "Curves: " + ", ".join(plotted) + ".", ""]
    else:
        lines += ["No finished run with stored scores yet.", ""]

    lines += ["## Runs", ""]
    rows = []
    for v in variants:
        for r in v["runs"]:
            threads = ",".join(str(t) for t in r["threads"]) or "—"
            wall = f"{r['wall_seconds'] / 60:.1f}" if r["sessions"] else "—"
            precision = r.get("precision") or "—"
            rows.append([v["name"], r["seed"], r["status"], r["dir"], r.get("steps", "—"), precision, wall, threads])
    lines += _table(["variant", "seed", "status", "folder", "steps", "precision", "wall min", "threads"], rows, 5)
    return "\n".join(lines) + "\n"


def write_report(out: str | os.PathLike, doc: Mapping, specs: Sequence[RunSpec]) -> list[Path]:
    """Write ``report.md``, ``report.json`` and (when some variant has scores) ``det.png`` into ``out``."""
    from ..report.plots import det_plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        write_text(out / "report.md", report_markdown(doc)),
        write_text(out / "report.json", json.dumps(doc, indent=2, allow_nan=False) + "\n"),
    ]
    dirs = {(s.variant, s.seed): s.dir for s in specs}
    systems = {}
    for v in doc["variants"]:
        if v["det_seed"] is not None:
            systems[f"{v['name']} (seed {v['det_seed']})"] = load_scores(dirs[(v["name"], v["det_seed"])] / SCORES_NAME)
    if systems:
        title = f"{doc['meta'].get('title', 'veriloss bench')}: DET, one seed per variant"
        written.append(det_plot(systems, out / "det.png", far=doc["meta"]["far"], title=title))
    return written
