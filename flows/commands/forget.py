"""`revs forget REQUEST.json --model M --corpus C...`: answer one deletion request (Prefect flow).

Everything is checked before the flow starts — the request (every problem named by field path, no values
echoed), the policy, the corpus paths, the model and the name — so bad input changes nothing. Re-running a request
resumes it where it stopped and never edits twice; running it against another corpus needs ``--rerun`` (a new
attempt; the history is kept). `revs status REQUEST_ID` shows its progress.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.commands._runtime import add_runtime_args, apply_runtime
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
    parser.add_argument("--rerun", action="store_true",
                        help="answer the request again from the start (e.g. against a corrected corpus); its "
                        "history and earlier attempts are kept")
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="read symlinks in corpus directories that lead outside them (default: skip them)")
    add_runtime_args(parser)
    parser.set_defaults(handler=run)


def check_inputs(args: argparse.Namespace):
    """Validate every input of the request before anything runs; return the parsed request.

    Raises:
        flows.params.ParamsError, tasks.errors.UserError, tasks.requests.RequestConflictError: user errors.
    """
    from flows.params import load_request
    from flows.policy import load_policy
    from tasks import corpus, registry
    from tasks.free_text import check_free_text
    from tasks.requests import RequestStore

    request = load_request(args.request)
    load_policy(args.policy)
    check_free_text(request.requester_ref, f"{args.request}: requester_ref", "TICKET-4711")
    if args.name is not None:
        registry.check_model_name(args.name)
    corpus.check_corpus(args.corpus)
    registry.check_model_spec(args.model)
    RequestStore().preflight(request, corpus.corpus_fingerprint(args.corpus), args.rerun)
    return request


def run(args: argparse.Namespace) -> int:
    """Run the request; exit 0 when reported, 3 when the audit failed (bad input: a user error, exit 2)."""
    from tasks._workspace import configure_prefect

    configure_prefect()
    request = check_inputs(args)
    runtime = apply_runtime(args)
    from flows.cli import quiet_prefect_console
    from flows.deletion import deletion_request  # Prefect, torch: imported only once the input is valid
    from flows.steps import AuditFailedError

    quiet_prefect_console()
    try:
        result = deletion_request(args.request, args.model, args.corpus, args.policy, args.name, args.rerun,
                                  follow_symlinks=args.follow_symlinks, **runtime)
    except AuditFailedError as exc:
        _echo(f"revs forget: {exc}", err=True)
        return EXIT_AUDIT_FAILED
    for warning in result.get("warnings", []):
        _echo(f"revs forget: WARNING: request {request.request_id}: {warning}", err=True)
    report_result(result, f"request {request.request_id}")
    return 0
