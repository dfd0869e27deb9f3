"""``veriloss bench losses|sweep``: compare losses (a suite) or tune a loss (a grid) with one recipe and seeds.

    veriloss bench losses --suite omniglot [--seeds 3] [--losses arcface,qmargin] [--jobs N] [--set key=value]
    veriloss bench sweep --base omniglot_qmargin --grid loss.params.alpha=1.25,1.5,2 --grid loss.params.s=8,16
        [--set data.validation_alphabets=5] [--select-on auto|validation|test] [--select-by tar@1e-4] [--then-test]
    veriloss bench losses --suite omniglot --baseline cosface     # paired comparison with a baseline entry

Each run trains into ``OUT/<variant>/seed<k>``; a restart skips finished runs and resumes interrupted ones from their
checkpoint. The report (``OUT/report.md``, ``report.json``, ``det.png``) is rewritten at the end of every call,
also after an interruption (with what is finished). ``--jobs N`` trains N runs at once in separate processes with
cores // N torch threads each; the default, cores // 4 (at least 1), gives every training at least 4 threads, past
which a small CNN's intra-op parallelism flattens (see :func:`veriloss.bench.runner.default_jobs`). See
:mod:`veriloss.bench`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .train import add_data_root_argument


def _common(p: argparse.ArgumentParser, seeds: int, what: str, out: str) -> None:
    p.add_argument("--seeds", type=int, default=seeds, help=f"train N seeds of every {what} (default {seeds})")
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds FIRST..FIRST+N-1 (default 0): tune on one seed, compare on others")  # fmt: skip
    p.add_argument("--out", type=Path, default=None, help=f"bench folder: run folders and the report (default {out})")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="trainings in parallel, each in its own process (default: cores // 4, at least 1)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads per training (default: cores // jobs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value in every run, e.g. epochs=15 (repeatable)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state; train nothing")
    p.add_argument(
        "--baseline",
        default=None,
        metavar="NAME",
        help=f"compare every {what} with this one on the same pairs (bootstrap over seeds and subjects; runs "
        "finished without bootstrap.npz get it from their checkpoint)",
    )
    add_data_root_argument(p)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="train several losses or a parameter grid with one recipe and several seeds; report mean ± std",
        description=__doc__.split("\n\n")[0],
    )
    bench = p.add_subparsers(dest="bench_command", metavar="WHAT")
    losses = bench.add_parser(
        "losses",
        help="every loss of a suite with the suite's identical recipe",
        description="Train every loss of a suite (configs/suites/NAME.yaml: a base recipe and one loss block per "
        "entry) with N seeds (0..N-1 unless --first-seed) and report TAR@FAR, EER, α statistics, a DET plot and "
        "wall times.",
    )
    losses.add_argument("--suite", default="omniglot", help="packaged suite name or suite YAML (default omniglot)")
    losses.add_argument("--losses", default=None, help="comma-separated entries of the suite to run (default: all)")
    _common(losses, 3, "loss", "reports/bench/SUITE")
    sweep = bench.add_parser(
        "sweep",
        help="a cartesian grid over config keys (α, s, m, κ, re-initialization point, ...)",
        description="Train every point of a grid over config keys on a base recipe, N seeds each, with the same "
        "report as 'bench losses'. Values are comma-separated YAML values (commas inside [] or {} do not split).",
    )
    sweep.add_argument("--base", required=True, help="base recipe: a YAML file or a packaged name (omniglot_qmargin)")
    sweep.add_argument("--grid", action="append", default=[], required=True, metavar="KEY=V1,V2,...",
                       help="a config key and its values, e.g. loss.params.alpha=1.25,1.5,2 (repeatable)")  # fmt: skip
    sweep.add_argument(
        "--select-on",
        choices=("auto", "validation", "test"),
        default="auto",
        help="the split every run evaluates, hence the one the selection reads: validation (the identities "
        "data.validation_* holds out of training; the test split is never read), test, or auto (default: "
        "validation when the recipe holds identities out, else test)",
    )
    sweep.add_argument(
        "--select-by",
        default="tar@1e-4",
        metavar="METRIC",
        help="how the best grid point is chosen: tar@FAR (a report FAR) or eer (default tar@1e-4)",
    )
    sweep.add_argument(
        "--then-test",
        action="store_true",
        help="after selecting on the validation split, score the chosen point's runs on the test split from their "
        "checkpoints (test_metrics.json in each run folder; a report section)",
    )
    _common(sweep, 1, "grid point", "reports/sweep/BASE")
    p.set_defaults(run=run, bench_parser=p)


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this bench (for the report)."""
    parts = ["veriloss", "bench", args.bench_command]
    if args.bench_command == "losses":
        parts += ["--suite", str(args.suite)] + (["--losses", args.losses] if args.losses else [])
    else:
        parts += ["--base", str(args.base)]
        for g in args.grid:
            parts += ["--grid", g]
        parts += ["--select-on", args.select_on, "--select-by", args.select_by] + (
            ["--then-test"] if args.then_test else []
        )
    parts += ["--seeds", str(args.seeds)] + (["--first-seed", str(args.first_seed)] if args.first_seed else [])
    for o in args.overrides:
        parts += ["--set", o]
    if args.data_root is not None:
        parts += ["--data-root", str(args.data_root)]
    if args.baseline is not None:
        parts += ["--baseline", args.baseline]
    if args.out is not None:
        parts += ["--out", str(args.out)]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    if args.bench_command is None:
        args.bench_parser.print_help()
        return 2
    from ..bench import expand_grid, load_suite, parse_grid, suite_variants
    from ..train.config import load_config, recipe_path

    if args.bench_command == "losses":
        suite = load_suite(args.suite)
        wanted = None if args.losses is None else args.losses.split(",")
        variants = suite_variants(suite, args.overrides, wanted, data_root=args.data_root)
        title = f"veriloss bench losses: suite {suite.name}"
        return _bench(args, variants, title, str(suite.base), Path("reports") / "bench" / suite.name)
    from ..bench import REPORT_FARS
    from ..bench.select import parse_select_by, selection_split, with_selection_split

    grid = parse_grid(args.grid)
    base = recipe_path(args.base)
    select_by = parse_select_by(args.select_by, REPORT_FARS)
    base_config = load_config(base, args.overrides)  # the recipe with --set: what the selection split depends on
    split = selection_split(base_config, args.select_on)
    if args.then_test and split != "validation":
        raise ValueError("--then-test needs a sweep that selects on the validation split (see --select-on)")
    config = with_selection_split(load_config(base), split)
    variants, skipped = expand_grid(config, grid, args.overrides, data_root=args.data_root)
    for name, reason in skipped:
        print(f"bench sweep: skipping grid point {name}: {reason}", file=sys.stderr)
    if split == "test" and args.select_on == "auto":  # --select-on test is a choice: no warning
        print(
            "bench sweep: selecting on the TEST split (the recipe holds no identities out of training; "
            "--set data.validation_alphabets=N / data.validation_speakers=N and --select-on validation tune without "
            "it)",
            file=sys.stderr,
        )
    title = f"veriloss bench sweep: {base.stem} over {', '.join(k for k, _ in grid)}"
    selection = {"split": split, "select_on": args.select_on, "select_by": args.select_by, "key": select_by}
    return _bench(args, variants, title, str(base), Path("reports") / "sweep" / base.stem, skipped, selection)


def _bench(
    args: argparse.Namespace,
    variants: list,
    title: str,
    base: str,
    default_out: Path,
    skipped: list = (),
    selection: dict | None = None,
) -> int:
    from .._io import OutputLock, output_dir
    from ..bench import REPORT_FARS, available_cores, collect, default_jobs, plan_runs, run_all, run_state
    from ..bench.report import write_report
    from ..bench.select import selection_section

    out = args.out or default_out
    specs = plan_runs(variants, args.seeds, out, args.first_seed)
    cores = available_cores()
    jobs = default_jobs(cores) if args.jobs is None else args.jobs
    if jobs < 1:
        raise ValueError(f"--jobs must be ≥ 1, got {jobs}")
    threads = max(1, cores // jobs) if args.threads is None else args.threads
    if threads < 1:
        raise ValueError(f"--threads must be ≥ 1, got {threads}")
    if args.dry_run:
        for spec in specs:
            print(f"{spec.variant}\tseed {spec.seed}\t{run_state(spec)}\t{spec.dir}")
        print(f"{len(specs)} runs; {jobs} job(s) × {threads} thread(s) on {cores} cores", file=sys.stderr)
        return 0
    if args.baseline is not None and args.baseline not in [v.name for v in variants]:
        raise ValueError(
            f"--baseline {args.baseline!r} is not a variant of this bench; variants: "
            + ", ".join(v.name for v in variants)
        )
    with OutputLock(output_dir(out), "bench folder"):  # a second bench on this folder is refused
        status = run_all(specs, jobs, threads, REPORT_FARS, bootstrap=args.baseline is not None)
        meta = {"title": title, "command": _command(args), "base": base, "overrides": list(args.overrides)}
        meta.update(seeds=args.seeds, first_seed=args.first_seed, jobs=jobs, threads=threads, cores=cores)
        if skipped:
            meta["skipped"] = [f"{name}: {reason}" for name, reason in skipped]
        doc = collect(variants, specs, REPORT_FARS, meta, baseline=args.baseline)
        if selection is not None:
            doc["selection"] = selection_section(doc, specs, selection, args.then_test, REPORT_FARS)
        write_report(out, doc, specs)
    md = (out / "report.md").read_text()
    print(md.split("\n## Impostor pairs")[0].rstrip())  # the verification table; the rest is in the files
    print(f"report: {out}/ (report.md, report.json, det.png)", file=sys.stderr)
    if selection is not None and doc["selection"].get("chosen"):
        chosen = doc["selection"]["chosen"]
        print(
            f"chosen on the {doc['selection']['split']} split by {chosen['metric']}: {chosen['name']}", file=sys.stderr
        )
    if any(s == "interrupted" for s in status.values()):
        return 130
    return 1 if any(s == "failed" for s in status.values()) else 0
