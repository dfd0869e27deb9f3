"""``veriloss demo``: the whole pipeline on data the project generates itself, in about three minutes on 2 cores.

Trains a small CNN with the A3M-I loss on synthetic identities (the packaged ``configs/demo.yaml``), evaluates all
pairs of unseen identities (open set), prints the metrics table and writes a report folder: metrics.md/.json, the
ROC/DET plot, training curves, TensorBoard logs and the checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .train import add_resume_arguments, train_and_report

#: a run of seconds for smoke tests and CI (same pipeline, tiny sizes)
QUICK = (
    "data.train_identities=40",
    "data.test_identities=20",
    "data.samples_per_identity=8",
    "model.width=8",
    "model.embedding_dim=32",
    "batch_size=64",
    "epochs=2",
    "schedule.warmup_steps=2",
    "validate.every_epochs=1",
)


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train and evaluate end to end on synthetic identities (about 3 minutes)")
    p.add_argument("--out", type=Path, default=Path("reports/demo"), help="report folder (default reports/demo)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of configs/demo.yaml (repeatable)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="tiny sizes: the same pipeline in seconds")
    add_resume_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_config, recipe_path

    config = load_config(recipe_path("demo"), [*(QUICK if args.quick else ()), *args.overrides])
    data = config["data"]
    banner = (
        f"veriloss demo: {config['loss']['name']} on {data.get('train_identities')} synthetic identities, all-pairs "
        f"test on {data.get('test_identities')} unseen ones"
    )
    if args.force and not args.resume:
        raise ValueError("--force applies to --resume only")
    return train_and_report(config, args.out, args.resume, banner, force=args.force)
