"""`revs retire MODEL --versions 1,2 --reason TEXT`: delete model versions that still contain erased data.

Deletes each version's registry entry and files (and its workspace copy, ``REVS_HOME/models/<model>/v<N>``), runs
`mlflow gc` on the workspace store, and writes a retirement record (``.revs/retirements/*.json`` plus a run in the
``revs-retirements`` experiment). ``--list`` shows the
lineage first. The production version cannot be retired.
"""

from __future__ import annotations

import argparse
import sys


def _echo(line: str, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def _versions(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("versions are comma-separated integers, e.g. 1,2") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give at least one version >= 1")
    return values


def register(subparsers) -> None:
    """Add the `retire` subcommand."""
    parser = subparsers.add_parser("retire", help="delete model versions that still contain erased data")
    parser.add_argument("model", help="registered model name")
    parser.add_argument("--versions", type=_versions, help="comma-separated versions to delete, e.g. 1,2")
    parser.add_argument("--reason", help="why (ids only, e.g. 'contains data erased by REQ-2026-0001')")
    parser.add_argument("--list", action="store_true", help="print the model's versions and tags")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """List or retire; return 0 on success, 1 on a refused retirement; bad input raises a user error (exit 2)."""
    from tasks._workspace import check_name
    from tasks.errors import UserError

    check_name(args.model, "MODEL")  # before MLflow sees it: the same rule as every command's --name
    if not args.list and (args.versions is None or not args.reason):
        raise UserError("--versions and --reason are required to retire (or give --list to see the versions).")
    if args.reason:
        from tasks.free_text import check_free_text

        check_free_text(args.reason, "--reason", "contains data erased by REQ-2026-0001")
    from tasks._mlflow import MlflowAdapter, RegistryError

    adapter = MlflowAdapter()
    if args.list:
        for row in adapter.lineage(args.model):
            tags = " ".join(f"{k}={v}" for k, v in sorted(row["tags"].items()) if v)
            _echo(f"v{row['version']}\t{','.join(row['aliases']) or '-'}\t{tags}")
        if args.versions is None:
            return 0
    if args.versions is None or not args.reason:
        raise UserError("--versions and --reason are required to retire.")
    try:
        record = adapter.retire(args.model, args.versions, args.reason)
    except RegistryError as exc:
        _echo(f"revs retire: refused: {exc}", err=True)
        return 1
    _remove_workspace_copies(args.model, args.versions)
    _echo(f"retired {args.model} versions {','.join(map(str, args.versions))}; record: {record}")
    return 0


def _remove_workspace_copies(model: str, versions: list[int]) -> None:
    """Delete the retired versions' materialized weights under ``REVS_HOME/models/<model>/v<N>``."""
    import shutil

    from tasks._workspace import inside_workspace, workspace_root

    for version in versions:
        path = inside_workspace(workspace_root() / "models" / model / f"v{int(version)}")
        if path.is_dir():
            shutil.rmtree(path)
            _echo(f"deleted workspace copy {path}")
