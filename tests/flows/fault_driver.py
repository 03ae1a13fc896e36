"""The fault suite's child process: run `revs ARGS...` with a SIGKILL armed at one point of the deletion flow.

``python -m tests.flows.fault_driver POINT ARGS...`` kills itself (``kill -9``: no cleanup, no ``finally``) at
POINT, inside the step named:

- ``scan``: the scan wrote its partition's findings; the subject is not located yet;
- ``probe``: the probes table is written; nothing is selected or recorded;
- ``edit``: the edit is staged; ``edited`` is not recorded;
- ``audit``: the audit is written and judged; nothing is registered;
- ``register-files``: the version's files are logged to their registry run; no model version exists yet;
- ``register``: the model version is registered; it is not published to ``models/<name>/v<N>`` nor recorded;
- ``report``: the report is written and signed; ``reported`` is not recorded.

Without POINT (``-``) it just runs the command. The hooks wrap functions from the outside, so the code under test
is unchanged.

``python -m tests.flows.fault_driver --zygote`` imports everything once (Prefect, torch, MLflow, Presidio: ~10 s
of CPU) while still single-threaded, then reads one JSON request per line, ``{"point", "args", "log"}``, forks a
child for it (environment updated with ``env``, output to ``log``) and answers ``{"status": N}`` (the exit code,
or minus the signal). A line holding a list of requests forks them all at once and answers ``{"status": [N, ...]}``
once every child has ended.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _after_write(name: str) -> None:
    from tasks import _io

    real = _io._atomic

    def atomic(path, write):
        out = real(path, write)
        if Path(path).name == name:
            _die()
        return out

    _io._atomic = atomic


def _before_advance(step: str) -> None:
    from tasks.requests import RequestStore

    real = RequestStore.advance

    def advance(self, request_id, done, evidence=None):
        if done == step:
            _die()
        return real(self, request_id, done, evidence)

    RequestStore.advance = advance


def _around_adapter(method: str, before: bool) -> None:
    from tasks._mlflow import MlflowAdapter

    real = getattr(MlflowAdapter, method)

    def wrapped(self, *args, **kwargs):
        if before:
            _die()
        out = real(self, *args, **kwargs)
        _die()
        return out

    setattr(MlflowAdapter, method, wrapped)


POINTS = {
    "scan": lambda: _after_write("scan.part0.parquet"),
    "probe": lambda: _after_write("probes.parquet"),
    "edit": lambda: _before_advance("edited"),
    "audit": lambda: _around_adapter("register_version", before=True),
    "register-files": lambda: _around_adapter("_store_version_files", before=False),
    "register": lambda: _around_adapter("register_version", before=False),
    "report": lambda: _before_advance("reported"),
}


def main(argv: list[str]) -> int:
    """Arm the kill point ``argv[0]`` (``-``: none), then run the `revs` command line ``argv[1:]``."""
    point, args = argv[0], argv[1:]
    if point != "-":
        POINTS[point]()
    from flows.cli import main as revs

    return revs(args)


def zygote() -> int:
    """Serve fork requests from stdin (see the module docstring); return 0 at end of input."""
    import json
    import threading

    import flows.cli  # noqa: F401 - everything a run needs, imported once before forking
    import flows.commands.forget  # noqa: F401
    import flows.deletion  # noqa: F401
    from tasks.free_text import _scanner

    _scanner()
    if threading.active_count() != 1:
        raise RuntimeError("the zygote must not run threads before it forks")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        jobs = json.loads(line)
        pids = [_fork(job) for job in (jobs if isinstance(jobs, list) else [jobs])]
        codes = []
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            codes.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
        print(json.dumps({"status": codes if isinstance(jobs, list) else codes[0]}), flush=True)
    return 0


def _fork(job: dict) -> int:
    pid = os.fork()
    if pid:
        return pid
    fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(job.get("env") or {})
    code = 1
    try:
        code = main([job["point"], *job["args"]])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(zygote() if sys.argv[1:] == ["--zygote"] else main(sys.argv[1:]))
