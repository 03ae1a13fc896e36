"""Serve the deployments of ``deploy/prefect.yaml`` from this process (what `revs serve` runs).

Offers :func:`load_deployments` (the YAML's deployments → ``RunnerDeployment`` objects: same names, parameters and
cron schedules, optionally an interval instead and parameter overrides), :func:`local_server` (a Prefect server on
127.0.0.1 in the workspace's Prefect home, when no ``PREFECT_API_URL`` is configured), :func:`serve` (run the
schedules until a deadline or a number of finished runs) and :func:`run_counts`.

Schedules need a real Prefect server; the temporary server a plain flow call starts does not run them.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PREFECT_FILE = Path(__file__).resolve().parents[1] / "deploy" / "prefect.yaml"
SERVER_START_TIMEOUT_S = 120.0


def _flow_for(entrypoint: str):
    path, _, attr = entrypoint.partition(":")
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), attr)


def load_deployments(prefect_file: Path = DEFAULT_PREFECT_FILE, only: Sequence[str] = (),
                     interval: float | None = None, overrides: Mapping[str, Any] | None = None) -> list:
    """Build a ``RunnerDeployment`` per deployment of ``prefect_file`` (``only``: those names).

    Args:
        prefect_file: The deployments file.
        only: Deployment names to serve (default: all).
        interval: Replace every deployment's schedules by one interval schedule of this many seconds (testing,
            demos); deployments without schedules stay on demand.
        overrides: Parameter values that replace the file's, for the deployments whose flow accepts them.
    """
    from prefect.deployments.runner import EntrypointType

    spec = yaml.safe_load(Path(prefect_file).read_text(encoding="utf-8"))
    known = [d["name"] for d in spec.get("deployments", [])]
    missing = sorted(set(only) - set(known))
    if missing:
        raise ValueError(f"{prefect_file}: no deployment named {', '.join(missing)}; it has {', '.join(known)}")
    out = []
    for dep in spec.get("deployments", []):
        if only and dep["name"] not in only:
            continue
        flow = _flow_for(dep["entrypoint"])
        accepted = set(flow.parameters.properties)
        params = {**(dep.get("parameters") or {}),
                  **{k: v for k, v in (overrides or {}).items() if k in accepted}}
        crons = [s["cron"] for s in dep.get("schedules") or [] if s.get("cron") and s.get("active", True)]
        schedule = {"interval": interval} if interval and crons else {"cron": crons} if crons else {}
        out.append(flow.to_deployment(name=dep["name"], description=dep.get("description"),
                                      tags=dep.get("tags"), parameters=params,
                                      concurrency_limit=dep.get("concurrency_limit"),
                                      entrypoint_type=EntrypointType.MODULE_PATH, **schedule))
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 - loopback URL
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def local_server(port: int | None = None) -> Iterator[str]:
    """Start ``prefect server start`` on 127.0.0.1 (its database in ``PREFECT_HOME``); yield its API URL.

    The caller must not have imported :mod:`prefect` yet, or must re-read settings: ``PREFECT_API_URL`` is
    exported into this process's environment for the duration of the block.
    """
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    prefect_cli = Path(sys.executable).with_name("prefect")
    cmd = [str(prefect_cli), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = open(Path(os.environ.get("PREFECT_HOME", ".")) / "server.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prefect server did not start on {url}; see {log.name}")
            time.sleep(0.5)
        os.environ["PREFECT_API_URL"] = url
        yield url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_counts(deployment_ids: Sequence[Any]) -> Counter:
    """Return ``Counter({state name: flow runs})`` over the given deployments."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    deployments = DeploymentFilter(id=DeploymentFilterId(any_=list(deployment_ids)))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=deployments, sort=FlowRunSort.ID_DESC, limit=200)
    return Counter(r.state.name for r in runs if r.state is not None)


def interruptible() -> None:
    """Make SIGINT raise KeyboardInterrupt in this process again (main thread only).

    A process started as a background job of a non-interactive shell (``revs serve ... &`` in a script, ``make``
    run in the background) inherits SIGINT as *ignored*, and Python then leaves it ignored: neither Ctrl-C nor
    :func:`serve`'s own stop (``run_for``, ``stop_after_runs``, which interrupt the process) would end it.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def serve(deployments: Sequence[Any], run_for: float | None = None, stop_after_runs: int | None = None,
          limit: int = 1) -> Counter:
    """Serve the deployments until Ctrl-C, ``run_for`` seconds, or ``stop_after_runs`` finished runs.

    ``limit`` flow runs execute at a time (default 1: every flow edits the same workspace and model registry;
    the model lock would serialize them anyway).

    Returns:
        The flow runs of the served deployments per state name.
    """
    from prefect import serve as prefect_serve

    ids: list[Any] = []
    stop = threading.Event()

    def interrupt() -> None:
        os.kill(os.getpid(), signal.SIGINT)  # serve() shuts down cleanly on KeyboardInterrupt

    def watch() -> None:
        deadline = time.monotonic() + run_for if run_for else None
        while not stop.wait(2.0):
            if deadline is not None and time.monotonic() > deadline:
                return interrupt()
            if stop_after_runs and ids:
                try:
                    counts = run_counts(ids)
                except Exception:  # noqa: BLE001 - a flaky read must not stop the deadline check
                    logging.getLogger(__name__).exception("could not read the flow runs; retrying")
                    continue
                if counts["Completed"] + counts["Failed"] + counts["Crashed"] >= stop_after_runs:
                    return interrupt()
        return None

    interruptible()
    for dep in deployments:  # register first: the watcher needs the ids
        ids.append(dep.apply())
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        prefect_serve(*deployments, print_starting_message=True, limit=limit)
    finally:
        stop.set()
    return run_counts(ids)
