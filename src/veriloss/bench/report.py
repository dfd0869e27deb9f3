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
* DET: the lowest finished seed of each variant that has ``scores.npz``;
* split: every number is on the split the runs evaluate (``validate.split``: test, or validation: identities held
  out of training); the report says which;
* comparison (``baseline`` given): every variant against the baseline from the runs' ``bootstrap.npz``
  (:mod:`.compare`): per-seed differences, a paired interval over seeds and subjects, a verdict per metric; runs
  without the file are listed as lacking it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..report._atomic import write_text
from ..report.tables import _far_label
from .bootstrap import BOOTSTRAP_NAME, BOOTSTRAP_SETTINGS, load_bootstrap
from .compare import compare_runs
from .runner import BENCH_NAME, RunSpec, Variant, read_finished
from .scores import SCORES_NAME, load_scores

__all__ = [
    "REPORT_FARS",
    "collect",
    "comparison_metrics",
    "evaluated_split",
    "report_markdown",
    "run_record",
    "stat",
    "write_report",
]

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
        "bootstrap": (spec.dir / BOOTSTRAP_NAME).exists(),
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


def evaluated_split(config: Mapping) -> dict:
    """``{"split": "test"|"validation", "holdout": {key: n}}``: the split a config's evaluations score and what the
    data section holds out of training (``data.validation_*`` keys set above 0)."""
    held = {k: v for k, v in config.get("data", {}).items() if k.startswith("validation_") and v}
    return {"split": str(config.get("validate", {}).get("split", "test")), "holdout": held}


def comparison_metrics(far: Sequence[float]) -> list[str]:
    """The metrics a comparison reports: TAR@FAR at each FAR, EER, minDCF at each bootstrap p_target."""
    return (
        [f"tar@far={float(f):g}" for f in far] + ["eer"] + [f"min_dcf@p={p:g}" for p in BOOTSTRAP_SETTINGS["p_targets"]]
    )


def _comparison(variants: Sequence[Variant], specs: Sequence[RunSpec], far: Sequence[float], baseline: str) -> dict:
    """The comparison section from the finished runs' ``bootstrap.npz`` files (:func:`compare_runs`)."""
    metrics = comparison_metrics(far)
    runs: dict[str, dict] = {v.name: {} for v in variants}
    lacking: list[str] = []
    for spec in specs:
        if read_finished(spec.dir) is None:
            continue
        path = spec.dir / BOOTSTRAP_NAME
        try:
            run = load_bootstrap(path)
            for m in metrics:
                run.index(m)
        except (ValueError, KeyError) as err:
            why = "no bootstrap.npz" if not path.exists() else str(err).strip("'\"")
            lacking.append(f"{spec.variant} seed {spec.seed}: {why}")
            continue
        runs[spec.variant][spec.seed] = run
    doc = compare_runs(runs, baseline, metrics, float(BOOTSTRAP_SETTINGS["level"]))
    doc["lacking"] = lacking
    doc["replicates"] = int(BOOTSTRAP_SETTINGS["replicates"])
    doc["bootstrap_seed"] = int(BOOTSTRAP_SETTINGS["seed"])
    for entry in doc["entries"]:  # JSON keys are strings
        for cell in entry["metrics"].values():
            cell["per_seed"] = {str(k): v for k, v in cell["per_seed"].items()}
    return doc


def collect(
    variants: Sequence[Variant],
    specs: Sequence[RunSpec],
    far: Sequence[float] = REPORT_FARS,
    meta: Mapping[str, object] | None = None,
    baseline: str | None = None,
) -> dict:
    """The report document: ``{"meta", "variants": [{name, columns, loss, sampler, runs, summary, det_seed}]}``,
    plus ``"comparison"`` (:func:`veriloss.bench.compare.compare_runs` and the runs lacking replicates) when a
    ``baseline`` variant is named. ``meta["split"]`` names the evaluated split (test or validation)."""
    far = [float(f) for f in far]
    if baseline is not None and baseline not in [v.name for v in variants]:
        raise ValueError(
            f"--baseline {baseline!r} is not a variant of this bench; variants: {', '.join(v.name for v in variants)}"
        )
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
    splits = [evaluated_split(v.config) for v in variants]
    split = {
        "split": sorted({s["split"] for s in splits}),
        "holdout": next((s["holdout"] for s in splits), {}),
    }
    doc = {
        "meta": {
            **dict(meta or {}),
            "far": far,
            "std": "sample (n - 1)",
            "split": split["split"][0] if len(split["split"]) == 1 else split["split"],
            "holdout": split["holdout"],
        },
        "variants": out,
    }
    if baseline is not None:
        doc["comparison"] = _comparison(variants, specs, far, baseline)
    return doc


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
    split = meta.get("split", "test")
    if split == "validation":
        held = ", ".join(f"data.{k} = {v}" for k, v in (meta.get("holdout") or {}).items()) or "data.validation_*"
        lines.append(
            f"- evaluated on: the **validation split** (identities held out of training: {held}); the test split "
            "was not read"
        )
    elif split != "test":
        lines.append(f"- evaluated on: mixed splits {split} (variants differ in validate.split)")
    if n_imp:
        name = "validation" if split == "validation" else "test"
        lines.append(
            f"- {name}: all pairs of the {name} split: {_range(n_gen)} genuine, {_range(n_imp)} impostor pairs"
        )
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

    if "comparison" in doc:
        lines += _comparison_markdown(doc["comparison"], keys, variants)
    if "selection" in doc:
        lines += _selection_markdown(doc["selection"], far)

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


def _metric_label(metric: str) -> str:
    if metric.startswith("tar@far="):
        return f"TAR@FAR={_far_label(float(metric.split('=', 1)[1]))}"
    if metric == "eer":
        return "EER"
    return "minDCF (p=" + metric.split("=", 1)[1] + ")"


def _diff_cell(cell: Mapping, scale: float) -> str:
    if cell["difference"] is None:
        return "not measurable" if cell["per_seed"] else "—"
    text = f"{scale * cell['difference']:+.2f}"
    if cell["low"] is not None:
        text += f" [{scale * cell['low']:+.2f}, {scale * cell['high']:+.2f}]"
    else:
        text += f" (no interval: defined in {100 * cell.get('defined', 0.0):.0f}% of replicates)"
    return f"{text} {cell['verdict']}"


def _comparison_markdown(comp: Mapping, keys: Sequence[str], variants: Sequence[Mapping]) -> list[str]:
    base = comp["baseline"]
    metrics = comp["metrics"]
    lines = [f"## Against the baseline: {base}", ""]
    scale = {m: (1.0 if m.startswith("min_dcf") else 100.0) for m in metrics}
    head = ["variant", "paired seeds", *(_metric_label(m) + (" %" if scale[m] == 100.0 else "") for m in metrics)]
    rows = []
    for e in comp["entries"]:
        rows.append(
            [
                e["name"],
                ",".join(map(str, e["seeds"])) or "—",
                *(_diff_cell(e["metrics"][m], scale[m]) for m in metrics),
            ]
        )
    lines += _table(head, rows, 2)
    level = 100 * comp["level"]
    lines += [
        "",
        f"Variant − {base}: the mean over the paired seeds of the per-seed differences, then its {level:g}% interval "
        f"over seeds and subjects (each of {comp['replicates']} replicates draws the seeds with replacement and "
        "resamples the identities with the same multiplicities for both systems: common random numbers, bootstrap "
        f"seed {comp['bootstrap_seed']}). TAR and EER in percentage points. Verdict: ahead / behind when the interval "
        "excludes 0 on the better / worse side (TAR higher, EER and minDCF lower are better), level when it contains "
        "0. No interval where the metric is undefined in over 10% of the replicates (TAR@FAR=f needs f·N_r ≥ 1 "
        "resampled impostor pairs).",
        "",
        "Per-seed differences:",
        "",
    ]
    head = ["variant", "seed", *(_metric_label(m) + (" %" if scale[m] == 100.0 else "") for m in metrics)]
    rows = []
    for e in comp["entries"]:
        for seed in e["seeds"]:
            cells = []
            for m in metrics:
                d = e["metrics"][m]["per_seed"].get(str(seed))
                cells.append("—" if d is None else f"{scale[m] * d:+.2f}" if scale[m] == 100.0 else f"{d:+.4f}")
            rows.append([e["name"], seed, *cells])
    lines += _table(head, rows, 2)
    lines.append("")
    unpaired = [
        f"{e['name']} seed(s) {','.join(map(str, e['unpaired_seeds']))}" for e in comp["entries"] if e["unpaired_seeds"]
    ]
    if unpaired:
        lines += ["Seeds without a partner (finished for only one of the two): " + "; ".join(unpaired) + ".", ""]
    if comp["lacking"]:
        lines += [
            "Runs without usable bootstrap replicates (finished before bench wrote bootstrap.npz, which "
            "`--baseline` makes from the checkpoint; or drawn at other FARs): " + "; ".join(comp["lacking"]) + ".",
            "",
        ]
    return lines


def _selection_markdown(sel: Mapping, far: Sequence[float]) -> list[str]:
    lines = ["## Selection", ""]
    lines.append(f"- selected on: the **{sel['split']} split** (--select-on {sel['select_on']})")
    if sel["split"] == "test":
        lines.append("- warning: the selection read the test split; a test score of the chosen point is optimistic")
    chosen = sel.get("chosen")
    if chosen is None:
        lines += ["- chosen: none yet (no finished run with a value)", ""]
        return lines
    value = f"{100 * chosen['value']:.2f}%"
    lines.append(f"- chosen by {chosen['metric']} (mean over seeds {chosen['seeds']}): **{chosen['name']}** ({value})")
    lines.append("")
    if sel.get("test"):
        lines += ["The chosen point on the test split (its checkpoints, scored after the selection):", ""]
        head = ["seed", "EER %", *(f"TAR@FAR={_far_label(f)} %" for f in far)]
        rows = []
        for rec in sel["test"]:
            by_far = {float(t["far"]): t for t in rec["tar_at_far"]}
            tars = [f"{100 * by_far[f]['tar']:.2f}" if f in by_far and by_far[f]["measurable"] else "—" for f in far]
            rows.append([rec["seed"], f"{100 * rec['eer']:.2f}", *tars])
        lines += _table(head, rows, 1)
        lines.append("")
    return lines


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
