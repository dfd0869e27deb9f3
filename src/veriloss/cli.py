"""The ``veriloss`` command: one subcommand per module in :mod:`veriloss.commands`."""

from __future__ import annotations

import argparse
import sys

from .commands import bench, demo, embed, eval, export, losses, train

COMMANDS = (losses, train, embed, eval, export, demo, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veriloss",
        description="Losses, exact low-FAR evaluation and training for biometric verification (face and speaker).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ValueError as err:  # bad input: a clear message, not a traceback
        print(f"veriloss {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
