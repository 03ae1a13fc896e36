"""`revs serve`: run the schedules of ``deploy/prefect.yaml`` from this process against a local Prefect server.

With no ``PREFECT_API_URL`` configured, a Prefect server is started on 127.0.0.1 (database in
``REVS_HOME/prefect``) and stopped on exit. The compliance sweep fires on its cron schedule (``--interval``
replaces it, for trying things out); the deletion-request deployment is served on demand
(``prefect deployment run 'deletion-request/deletion-request' -p request=... -p model=... -p corpus='[...]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _echo(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("parameters are KEY=VALUE (VALUE as JSON, or a plain string)")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def register(subparsers) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser("serve", help="run the deployments' schedules (local Prefect server)")
    parser.add_argument("--prefect-file", type=Path, help="deployments file (default: deploy/prefect.yaml)")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=[], help="serve only these deployments")
    parser.add_argument("--interval", type=float, metavar="SECONDS",
                        help="replace the cron schedules by this interval (testing, demos)")
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="KEY=VALUE",
                        help="override a deployment parameter (VALUE is JSON or a string); repeatable")
    parser.add_argument("--port", type=int, help="port of the local Prefect server (default: a free one)")
    parser.add_argument("--run-for", type=float, metavar="SECONDS", help="stop after this long")
    parser.add_argument("--stop-after-runs", type=int, metavar="N", help="stop after N finished flow runs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; print the flow runs per state; exit 0 (1 when a served run failed)."""
    import contextlib

    from tasks._workspace import configure_prefect
    from tasks.errors import UserError

    for flag, value in (("--interval", args.interval), ("--run-for", args.run_for)):
        if value is not None and not value > 0:
            raise UserError(f"{flag}: must be a positive number of seconds.")
    if args.stop_after_runs is not None and args.stop_after_runs < 1:
        raise UserError("--stop-after-runs: must be >= 1.")
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UserError("--port: must be a TCP port number, 1-65535.")
    configure_prefect()
    import yaml

    from flows import serving

    server = contextlib.nullcontext(os.environ.get("PREFECT_API_URL"))
    if not os.environ.get("PREFECT_API_URL"):
        server = serving.local_server(args.port)
    with server as url:
        _echo(f"Prefect API: {url}")
        prefect_file = args.prefect_file or serving.DEFAULT_PREFECT_FILE
        try:
            deployments = serving.load_deployments(prefect_file, args.only, args.interval, dict(args.param))
        except yaml.YAMLError as exc:
            raise UserError(f"--prefect-file {prefect_file}: not valid YAML ({type(exc).__name__}); fix the "
                            "file.") from None
        except (ValueError, KeyError) as exc:
            raise UserError(f"--prefect-file {prefect_file}: {exc}; fix the file or the --only names.") from None
        counts = serving.serve(deployments, args.run_for, args.stop_after_runs)
    _echo("flow runs: " + (", ".join(f"{state}={n}" for state, n in sorted(counts.items())) or "none"))
    return 1 if counts["Failed"] or counts["Crashed"] else 0
