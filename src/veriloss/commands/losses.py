"""``veriloss losses``: every loss with its parameters, defaults and reference."""

from __future__ import annotations

import argparse
import json
import textwrap

from ..losses import catalogue


def add_parser(sub) -> None:
    p = sub.add_parser("losses", help="list every loss with its parameters, defaults and reference")
    p.add_argument("name", nargs="?", help="show one loss only")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def _format(entry: dict) -> str:
    params = ", ".join(
        f"{k} (required)" if k in entry["required"] else f"{k}={v!r}" for k, v in entry["parameters"].items()
    )
    fixed = ", ".join(f"{k}={v!r}" for k, v in entry["fixed"].items())
    name = entry["name"] + (f" (alias: {', '.join(entry['aliases'])})" if entry["aliases"] else "")
    lines = [name]
    wrap = textwrap.TextWrapper(width=116, initial_indent="    ", subsequent_indent="    ")
    lines += wrap.wrap(entry["summary"])
    lines.append(f"    parameters: {params or '(none)'}" + (f"; fixed by the name: {fixed}" if fixed else ""))
    lines.append("    options:    " + ", ".join(f"{k}={v!r}" for k, v in entry["options"].items()))
    lines.append(f"    reference:  {entry['reference']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    entries = catalogue()
    if args.name:
        key = args.name.lower()
        names = ", ".join(e["name"] for e in entries)
        entries = [e for e in entries if key == e["name"] or key in e["aliases"]]
        if not entries:
            raise ValueError(f"unknown loss {args.name!r}; available: {names}")
    if args.json:
        print(json.dumps(entries, indent=2, default=str))
        return 0
    for family, title in (("head", "Prototype heads"), ("pairwise", "Pair, triplet and centre losses")):
        group = [e for e in entries if e["family"] == family]
        if not group:
            continue
        print(f"{title}: {group[0]['usage'].replace(repr(group[0]['name']), 'name')}\n")
        for e in group:
            print(_format(e) + "\n")
    return 0
