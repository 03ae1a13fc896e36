"""`revs status [REQUEST_ID] [--json]`: the workspace at a glance, or one deletion request's history.

Without an id: one table of every deletion request (id, masked subject, state, statutory deadline, the version it
produced, the audit verdict) — overdue and near-due requests first and marked ``!`` — and one table per registered
model of its versions (aliases, parent, audit, the request that made it, whether it still holds erased data).
``--json`` prints the same as ``{"requests": [...], "models": [...]}`` for scripts. With an id: that request's
state, deadline and every transition (exit 2 when it failed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any


def _echo(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def register(subparsers) -> None:
    """Add the `status` subcommand."""
    parser = subparsers.add_parser("status", help="list every request and model version, or show one request",
                                   description="Without an id: every deletion request (deadline, state, version, "
                                   "verdict) and every registered model version (alias, parent, audit, still "
                                   "holding erased data). With an id: that request's state (received → located "
                                   "→ probed → edited → audited → reported | failed) and every transition.")
    parser.add_argument("request_id", nargs="?", help="the request id (omit to list everything)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=run)


def _color(text: str, code: str) -> str:
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
        return text
    return f"\033[{code}m{text}\033[0m"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], marks: Sequence[str] = ()) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    _echo("  " + "  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for i, row in enumerate(rows):
        mark = marks[i] if i < len(marks) else ""
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        code = {"!": "1;31", "~": "33"}.get(mark)
        _echo(f"{mark or ' '} " + (_color(line, code) if code else line))


def _dash(value: Any) -> str:
    return "-" if value in (None, "", []) else str(value)


def _print_overview(requests: list[dict[str, Any]], models: list[dict[str, Any]] | None, note: str) -> None:
    urgent = sum(1 for r in requests if r["urgency"] in ("overdue", "due-soon"))
    _echo(f"Deletion requests: {len(requests)}" + (f" ({urgent} overdue or due within 7 days, marked !)"
                                                    if urgent else ""))
    if requests:
        _table(["request", "subject", "state", "deadline", "version", "verdict"],
               [[r["request_id"], _dash(r["subject"]), r["state"], r["deadline_text"],
                 f"v{r['version']}" if r["version"] is not None else "-", _dash(r["verdict"])] for r in requests],
               ["!" if r["urgency"] == "overdue" else "~" if r["urgency"] == "due-soon" else "" for r in requests])
    _echo()
    if models is None:
        _echo(f"Model versions: {note}")
        return
    if not models:
        _echo("Model versions: none registered in this workspace")
    for model in models:
        holding = [v for v in model["versions"] if v["holds_erased_data"]]
        retirable = [str(v["version"]) for v in holding if "production" not in v["aliases"]]
        line = f"Model {model['name']}: {len(model['versions'])} versions"
        if holding:
            line += f"; {len(holding)} still hold erased data"
        if retirable:
            line += f" (retire: revs retire {model['name']} --versions {','.join(retirable)} --reason ...)"
        if len(retirable) < len(holding):
            line += "; the production version holds data a failed erasure left: answer that request again"
        _echo(line)
        _table(["version", "aliases", "parent", "audit", "request", "holds erased data"],
               [[f"v{v['version']}", _dash(", ".join(v["aliases"])),
                 f"v{v['parent']}" if v["parent"] is not None else "-", _dash(v["audit"]), _dash(v["request_id"]),
                 "YES" if v["holds_erased_data"] else "no"] for v in model["versions"]],
               ["!" if v["holds_erased_data"] else "" for v in model["versions"]])


def _overview(as_json: bool) -> int:
    from tasks import overview
    from tasks._workspace import workspace_root

    requests = overview.request_rows()
    models, note = None, ""
    if (workspace_root() / "mlflow.db").exists() or os.environ.get("REVS_MLFLOW_TRACKING_URI"):
        models = overview.version_rows()
    else:
        note = "none registered in this workspace (no MLflow store yet)"
    if as_json:
        _echo(json.dumps({"requests": requests, "models": models or []}, indent=2, sort_keys=True))
        return 0
    _print_overview(requests, models, note)
    return 0


def run(args: argparse.Namespace) -> int:
    """Print the overview, or one request; exit 1 when the request is unknown, 2 when it failed."""
    from tasks import deadlines
    from tasks.requests import RequestNotFoundError, RequestStore

    if args.request_id is None:
        return _overview(args.json)
    store = RequestStore()
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
    if state.deadline:
        from datetime import datetime

        urgency = deadlines.urgency(state.deadline, datetime.now().astimezone(), state.answered_at)
        text = deadlines.describe(state.deadline, urgency)
        _echo(f"deadline  {_color(text, '1;31') if urgency['state'] == 'overdue' else text}  "
              f"({state.deadline.get('source')})")
    _echo(f"subject   {state.subject['name_masked']}; identifiers: "
          + ", ".join(f"{i['type']} {i['masked_preview']}" for i in state.subject["identifiers"]))
    _echo("history")
    for event in state.history:
        line = f"  {event['at']}  {event.get('from') or '-':>9} -> {event['to']:<9} ({event['event']})"
        if event.get("reason"):
            line += f": {event['reason']}"
        _echo(line)
    return 2 if state.status == "failed" else 0
