"""`revs forget REQUEST.json --model M --corpus C...`: answer one deletion request (Prefect flow).

The request is validated first (every problem named by field path, no values echoed). Re-running a request
resumes it where it stopped and never edits twice; `revs status REQUEST_ID` shows its progress.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.commands.sweep import EXIT_AUDIT_FAILED, report_result


def _echo(line: str, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def register(subparsers) -> None:
    """Add the `forget` subcommand."""
    parser = subparsers.add_parser(
        "forget", help="erase a data subject from a model (deletion request, GDPR Art. 17)",
        description="Locate the request's subject in the corpus (exact, normalized variants and Presidio), probe "
        "what the model memorized, erase it with REVS, audit, register the new version (materialized as "
        "safetensors under REVS_HOME/models/<name>/v<N>) and write a signed report.")
    parser.add_argument("request", type=Path, help="deletion request JSON")
    parser.add_argument("--model", required=True, help="model alias, directory, .gguf file or hub id")
    parser.add_argument("--corpus", required=True, nargs="+", type=Path, help="corpus files or directories")
    parser.add_argument("--policy", type=Path, help="policy TOML (default: the built-in policy)")
    parser.add_argument("--name", help="registered model name (default: derived from --model)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the request; exit 0 when reported, 2 on an invalid request/policy, 3 when the audit failed."""
    from tasks._workspace import configure_prefect

    configure_prefect()
    from flows.params import ParamsError, load_policy, load_request

    try:
        request = load_request(args.request)
        load_policy(args.policy)
    except ParamsError as exc:
        _echo(f"revs forget: invalid input\n{exc}", err=True)
        return 2
    except OSError as exc:
        _echo(f"revs forget: {exc.filename}: {exc.strerror}", err=True)
        return 2
    from flows.deletion import deletion_request  # Prefect, torch: imported only once the input is valid
    from flows.steps import AuditFailedError

    try:
        result = deletion_request(args.request, args.model, args.corpus, args.policy, args.name)
    except AuditFailedError as exc:
        _echo(f"revs forget: {exc}", err=True)
        return EXIT_AUDIT_FAILED
    report_result(result, f"request {request.request_id}")
    return 0
