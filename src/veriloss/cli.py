"""The ``veriloss`` command: one subcommand per module in :mod:`veriloss.commands`."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .commands import bench, demo, embed, eval, export, losses, train

COMMANDS = (losses, train, embed, eval, export, demo, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veriloss",
        description="Losses, exact low-FAR evaluation and training for biometric verification (face and speaker).",
    )
    parser.add_argument("--version", action="version", version=f"veriloss {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Expected failures end in one line ``veriloss CMD: error: ...`` and exit status 2 (bad
    input, unreadable or unwritable files, a missing optional package); Ctrl-C in 130."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ValueError as err:  # bad input: a clear message, not a traceback
        return _fail(args.command, _one_line(err))
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as err:  # a file or folder the command reads or writes
        where = f"{err.filename}: " if err.filename else ""
        return _fail(args.command, f"{where}{err.strerror or _one_line(err)}")
    except ImportError as err:  # an optional dependency that is not installed
        return _fail(args.command, _missing(err))
    except KeyboardInterrupt:
        print(f"veriloss {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a DataLoader worker's error carries the worker's traceback: keep its
    last line, the error itself)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if len(lines) > 1 and "Traceback" in str(err):
        return lines[-1]
    return "; ".join(line.rstrip(";") for line in lines)


#: the extra (``pip install 'veriloss[EXTRA]'``) that brings each optional package
EXTRAS = {
    "yaml": "train",
    "PIL": "train",
    "tqdm": "train",
    "tensorboard": "train",
    "soundfile": "audio",
    "matplotlib": "reports",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
}


def _missing(err: ImportError) -> str:
    """One line naming the missing package and the extra that installs it."""
    top = (getattr(err, "name", None) or "").split(".")[0]
    if top in EXTRAS:
        return f"this needs the package {top!r}, which is not installed: pip install 'veriloss[{EXTRAS[top]}]'"
    return _one_line(err)


def _fail(command: str, message: str) -> int:
    print(f"veriloss {command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
