"""`revs sweep`: run the compliance-sweep flow once (scan → probe → erase → audit → register → report)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.commands._runtime import add_runtime_args, apply_runtime

EXIT_AUDIT_FAILED = 3


def _echo(line: str, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def register(subparsers) -> None:
    """Add the `sweep` subcommand."""
    parser = subparsers.add_parser(
        "sweep", help="sweep a corpus for memorized PII and erase it (Prefect flow)",
        description="Scan the corpus for the policy's entity types, probe which findings the model memorized, "
        "erase them with REVS, audit before/after, register the new model version in MLflow and write a signed "
        "report. The workspace is REVS_HOME (default ./.revs); Prefect keeps its state in REVS_HOME/prefect "
        "unless PREFECT_HOME or PREFECT_API_URL say otherwise.")
    parser.add_argument("--corpus", required=True, nargs="+", type=Path, help="corpus files or directories")
    parser.add_argument("--model", required=True, help="model alias, directory, .gguf file or hub id")
    parser.add_argument("--policy", type=Path, help="policy TOML (default: the built-in policy)")
    parser.add_argument("--name", help="registered model name (default: derived from --model)")
    parser.add_argument("--partitions", type=int, default=1,
                        help="corpus partitions scanned, and findings partitions probed, in parallel (a local "
                        "Dask cluster of this many worker processes unless --dask names one)")
    parser.add_argument("--dask", metavar="ADDRESS", help="scan and probe partitions on this Dask scheduler")
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="read symlinks in corpus directories that lead outside them (default: skip them)")
    add_runtime_args(parser)
    parser.set_defaults(handler=run)


def report_result(result: dict, what: str) -> None:
    """Print a flow's result: run, version, verdict and report (ids and paths only)."""
    version = result.get("version")
    _echo(f"{what}: run {result['run_id']}; " + (f"new version v{version}" if version else "no new version")
          + f"; audit {'passed' if result['passed'] else 'FAILED'}")
    _echo(f"report: {result['report']}  (verify: revs report verify {result['report']})")


def run(args: argparse.Namespace) -> int:
    """Run the sweep; exit 0 on success, 3 when the audit failed (bad input: a user error, exit 2)."""
    from tasks._workspace import configure_prefect
    from tasks.errors import UserError

    configure_prefect()
    from flows.policy import load_policy
    from tasks import corpus, registry

    if args.partitions < 1:
        raise UserError("--partitions: must be >= 1.")
    load_policy(args.policy)
    if args.name is not None:
        registry.check_model_name(args.name)
    corpus.check_corpus(args.corpus)
    registry.check_model_spec(args.model)
    runtime = apply_runtime(args)
    from flows.cli import quiet_prefect_console
    from flows.steps import AuditFailedError  # Prefect, torch: imported only once the input is valid
    from flows.sweep import compliance_sweep

    quiet_prefect_console()
    try:
        result = compliance_sweep(args.corpus, args.model, args.policy, args.name, args.partitions, args.dask,
                                  **runtime)
    except AuditFailedError as exc:
        _echo(f"revs sweep: {exc}", err=True)
        return EXIT_AUDIT_FAILED
    report_result(result, "sweep")
    return 0
