"""`revs ui`: start the MLflow UI on this workspace's tracking store and print its URL.

Runs ``mlflow ui --backend-store-uri sqlite:///<abs>/mlflow.db --default-artifact-root <abs>/mlartifacts
--host 127.0.0.1 --port PORT`` (local only; it takes ~10 s to answer). Ctrl-C stops it (SIGTERM to the main
process stops its workers).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path


def build_command(root: Path, port: int = 5000, host: str = "127.0.0.1") -> list[str]:
    """Return the `mlflow ui` command line for the workspace at ``root``."""
    root = Path(root).resolve()
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--default-artifact-root", str(root / "mlartifacts"), "--host", host, "--port", str(port)]


def register(subparsers) -> None:
    """Add the `ui` subcommand."""
    parser = subparsers.add_parser("ui", help="start the MLflow UI for this workspace")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--print-command", action="store_true", help="print the command line and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Start the UI and wait for it; return its exit code."""
    from tasks._workspace import workspace_root
    from tasks.errors import UserError

    if not 1 <= args.port <= 65535:
        raise UserError("--port: must be a TCP port number, 1-65535.")
    cmd = build_command(workspace_root(), args.port)
    if args.print_command:
        sys.stdout.write(" ".join(cmd) + "\n")
        return 0
    sys.stdout.write(f"MLflow UI: http://127.0.0.1:{args.port}  (Ctrl-C to stop)\n")
    sys.stdout.flush()
    proc = subprocess.Popen(cmd)  # noqa: S603 - fixed argv, no shell
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        return 130
