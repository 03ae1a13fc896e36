"""The `revs` command line: parse arguments, hand them to one command module, return its exit code."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from flows import commands


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one subcommand per module in :mod:`flows.commands`."""
    parser = argparse.ArgumentParser(
        prog="revs",
        description="Find personal data in a training corpus, probe which of it a language model memorized, "
        "erase it with REVS and audit the result.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"flows.commands.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
