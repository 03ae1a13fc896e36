"""`revs report export|verify`: export a signed audit report, or verify one.

``revs report export --run RUN_DIR | --request ID [--format json|html ...] --out DIR`` reads a run directory
(``.revs/runs/<run_id>/`` holding ``report_data.json`` and ``evidence/``; see :mod:`tasks.reporting`) — with
``--request`` the run is the one recorded in the request's state (``run_id`` in its step evidence).
``revs report verify DIR [--public-key PEM]`` exits 1 and lists the problems when any byte changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _echo(line: str, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def register(subparsers) -> None:
    """Add the `report` subcommand with `export` and `verify`."""
    parser = subparsers.add_parser("report", help="export or verify a signed audit report")
    sub = parser.add_subparsers(dest="report_command", required=True, metavar="ACTION")
    export = sub.add_parser("export", help="export a run's report (JSON/HTML + evidence + manifest + signature)")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, metavar="RUN_DIR", help="run directory (.revs/runs/<run_id>)")
    source.add_argument("--request", metavar="ID", help="deletion request id (uses the run recorded in its state)")
    export.add_argument("--format", action="append", choices=["json", "html"], dest="formats",
                        help="output format; repeat for both (default: json and html)")
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="new, empty output directory")
    verify = sub.add_parser("verify", help="verify an exported report; exit 1 listing every problem")
    verify.add_argument("dir", type=Path, metavar="DIR")
    verify.add_argument("--public-key", type=Path, metavar="PEM",
                        help="pin the signer's Ed25519 public key (default: this workspace's key, if any)")
    parser.set_defaults(handler=run)


def _run_dir_for_request(request_id: str) -> Path:
    from tasks._workspace import workspace_root
    from tasks.requests import RequestStore

    state = RequestStore().status(request_id)
    evidence = [state.evidence.get(step) for step in reversed(state.completed)]
    run_ids = [ev["run_id"] for ev in evidence if isinstance(ev, dict) and isinstance(ev.get("run_id"), str)]
    if not run_ids:
        raise FileNotFoundError(f"request {request_id!r} has no run_id recorded yet (status {state.status})")
    return workspace_root() / "runs" / run_ids[0]


def run(args: argparse.Namespace) -> int:
    """Export or verify; return 0 on success, 1 on failure."""
    from tasks import reporting
    from tasks.requests import RequestNotFoundError

    if args.report_command == "verify":
        key = args.public_key.read_bytes() if args.public_key else None
        result = reporting.verify_report(args.dir, trusted_public_key=key)
        for note in result.notes:
            _echo(f"note: {note}", err=True)
        if not result.ok:
            _echo(f"FAILED: {args.dir}", err=True)
            for problem in result.problems:
                _echo(f"  {problem}", err=True)
            return 1
        _echo(f"OK: {args.dir} (every file matches the signed manifest)")
        return 0
    try:
        run_dir = args.run if args.run is not None else _run_dir_for_request(args.request)
        out = reporting.export_run(run_dir, args.out, args.formats or reporting.FORMATS)
    except (FileNotFoundError, FileExistsError, RequestNotFoundError, reporting.ReportDataError) as exc:
        _echo(f"revs report export: {exc}", err=True)
        return 1
    _echo(f"exported {out}")
    return 0
