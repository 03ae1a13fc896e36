"""`revs status REQUEST_ID`: print a deletion request's state and its history of transitions."""

from __future__ import annotations

import argparse
import json
import sys


def _echo(line: str) -> None:
    sys.stdout.write(line + "\n")


def register(subparsers) -> None:
    """Add the `status` subcommand."""
    parser = subparsers.add_parser("status", help="show a deletion request's progress and history",
                                   description="Show a deletion request's state (received → located → probed → "
                                   "edited → audited → reported | failed) and every transition.")
    parser.add_argument("request_id", nargs="?", help="the request id (omit to list every request)")
    parser.add_argument("--json", action="store_true", help="print the state as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the state; exit 1 when the request is unknown, 2 when it failed."""
    from tasks.requests import RequestNotFoundError, RequestStore

    store = RequestStore()
    if args.request_id is None:
        for request_id in store.list_requests():
            _echo(f"{request_id}\t{store.status(request_id).status}")
        return 0
    try:
        state = store.status(args.request_id)
    except (RequestNotFoundError, ValueError) as exc:
        sys.stderr.write(f"revs status: {exc}\n")
        return 1
    if args.json:
        _echo(json.dumps(json.loads(store.state_path(state.request_id).read_text()), indent=2))
        return 2 if state.status == "failed" else 0
    _echo(f"request   {state.request_id}")
    _echo(f"status    {state.status}")
    _echo(f"next step {state.next_step or '-'}")
    _echo(f"basis     {state.legal_basis}   ref {state.requester_ref}")
    _echo(f"subject   {state.subject['name_masked']}; identifiers: "
          + ", ".join(f"{i['type']} {i['masked_preview']}" for i in state.subject["identifiers"]))
    _echo("history")
    for event in state.history:
        line = f"  {event['at']}  {event.get('from') or '-':>9} -> {event['to']:<9} ({event['event']})"
        if event.get("reason"):
            line += f": {event['reason']}"
        _echo(line)
    return 2 if state.status == "failed" else 0
