"""``veriloss train CONFIG [--set key=value ...]``: train from a YAML recipe, checkpointing into an output folder."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: the environment variable that gives --data-root its default
DATA_ROOT_VARIABLE = "VERILOSS_DATA"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a YAML config",
        description="Train from a YAML config (see configs/). Under torchrun every process joins torch.distributed.",
    )
    p.add_argument("config", type=Path, help="YAML recipe, or the name of a packaged one (e.g. omniglot_arcface)")
    example = "--set data.root=../shared/data/omniglot"
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config value, e.g. {example} (repeatable)")  # fmt: skip
    p.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<config name>)")
    add_data_root_argument(p)
    add_resume_arguments(p)
    p.set_defaults(run=run)


def add_data_root_argument(p: argparse.ArgumentParser) -> None:
    """--data-root (default $VERILOSS_DATA): where the recipe's relative data paths start."""
    p.add_argument(
        "--data-root",
        type=Path,
        default=os.environ.get(DATA_ROOT_VARIABLE) or None,
        help=f"folder the recipe's relative data paths start from, e.g. the packaged recipes' omniglot/ and "
        f"speechocean762/ (default ${DATA_ROOT_VARIABLE}; unset: the current folder)",
    )


def add_resume_arguments(p: argparse.ArgumentParser) -> None:
    """--resume and --force (train and demo)."""
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    p.add_argument(
        "--force",
        action="store_true",
        help="with --resume: continue even though the config differs from the checkpoint's in keys that shape "
        "training (refused otherwise; the change is recorded in the run)",
    )


def format_metrics(record: dict) -> str:
    """The markdown table of a finished run's system record."""
    from ..report.tables import metrics_markdown

    return metrics_markdown([record])


def run(args: argparse.Namespace) -> int:
    from ..train import distributed as D
    from ..train.config import load_config, recipe_path

    config = load_config(recipe_path(args.config), args.overrides, data_root=args.data_root)
    D.init_from_env("auto")
    if args.force and not args.resume:
        raise ValueError("--force applies to --resume only")
    status = train_and_report(config, args.out or Path("runs") / args.config.stem, args.resume, force=args.force)
    D.shutdown()  # the trainer (and its DDP reducer) is gone: the group's last reference goes without the GIL
    return status


def train_and_report(config: dict, out: Path, resume: bool, banner: str | None = None, force: bool = False) -> int:
    """Train (or resume) into ``out``, print the final metrics table; exit status 130 when interrupted."""
    from ..train import Trainer
    from ..train import distributed as D

    trainer = Trainer.from_config(config, out, resume=resume, force=force)
    if D.rank() == 0:
        banner = banner or (
            f"training {config['loss']['name']} on {config['data']['name']} "
            f"({trainer.train_set.num_classes} identities, {len(trainer.train_set)} samples)"
        )
        print(f"{banner}: {trainer.total_steps} steps of {trainer.batch_size} → {out}", file=sys.stderr)
    metrics = trainer.fit()
    if metrics.get("status") == "interrupted":
        return 130
    if D.rank() == 0 and "eer" in metrics:
        print(format_metrics(metrics))
        files = "metrics.md, metrics.json, roc.png, det.png, hist.png, curves.png, tb/"
        print(f"report: {out}/ ({files})", file=sys.stderr)
    return 0
