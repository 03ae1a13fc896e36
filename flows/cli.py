"""The `revs` command line: parse arguments, hand them to one command module, turn its outcome into an exit code.

One mechanism for every command (:func:`main`):

- the command's own return value is the exit code (0 done, 1 a refusal or failed check it printed, 3 a failed
  audit, ...);
- a **user error** — bad input or a fixable environment problem (:data:`USER_ERRORS`, or an ``OSError`` naming a
  file) — prints one line, ``revs <command>: error: <what, where, what to do>``, and exits 2;
- any other exception is an **internal error**: its traceback goes to a log file under the workspace
  (``REVS_HOME/logs/``, or the temp directory when the workspace cannot be written), one line says where, and the
  exit code is 1;
- Ctrl-C exits 130.

Raw values known to the process (:data:`tasks.redaction.SENSITIVE`) are redacted from everything printed or logged.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pkgutil
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from flows import commands

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1

#: Exception classes that mean "the user can fix this" (module, class name). Matched only when the module is
#: already imported, so `revs --help` stays instant.
USER_ERRORS: tuple[tuple[str, str], ...] = (
    ("tasks.errors", "UserError"),
    ("flows.params", "ParamsError"),
    ("pii_detect.errors", "PiiDetectError"),
    ("revs_engine.errors", "UnsupportedArchitectureError"),
    ("revs_engine.errors", "ModelLoadError"),
    ("tasks.requests", "RequestConflictError"),
    ("tasks.requests", "RequestNotFoundError"),
    ("tasks.locks", "LockTimeoutError"),
    ("tasks._io", "SchemaMismatchError"),
)

_OS_ADVICE = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions (or choose another location)",
    errno.EPERM: "check its permissions (or choose another location)",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOSPC: "the disk is full; free space or choose another location",
    errno.EISDIR: "it is a directory; give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a directory; check the path",
    errno.EEXIST: "it already exists; remove it or choose another path",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one subcommand per module in :mod:`flows.commands`."""
    parser = argparse.ArgumentParser(
        prog="revs",
        description="Find personal data in a training corpus, probe which of it a language model memorized, "
        "erase it with REVS and audit the result.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"flows.commands.{info.name}").register(sub)
    return parser


def _user_error_types() -> tuple[type[BaseException], ...]:
    found = []
    for module, name in USER_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def _redact(text: str) -> str:
    redaction = sys.modules.get("tasks.redaction")
    return redaction.SENSITIVE.redact(text) if redaction is not None else text


def _one_line(text: str) -> str:
    return " ".join(_redact(text).split())


def user_message(exc: BaseException) -> str | None:
    """Return the one-line message of a user error, or None when ``exc`` is an internal error."""
    if isinstance(exc, _user_error_types()):
        problems = getattr(exc, "problems", None)
        if problems and getattr(exc, "source", None):  # flows.params.ParamsError: one "field: reason" per problem
            return _one_line(f"{exc.source}: " + "; ".join(problems) + ". Fix the file and run again.")
        return _one_line(str(exc))
    if isinstance(exc, OSError) and exc.filename is not None and exc.errno in _OS_ADVICE:
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        return _one_line(f"{where}: {exc.strerror}; {_OS_ADVICE[exc.errno]}.")
    return None


def _log_dir() -> Path:
    home = Path(os.environ.get("REVS_HOME", ".revs")).expanduser()
    for candidate in (home / "logs", Path(tempfile.gettempdir()) / f"revs-logs-{os.getuid()}"):
        try:
            candidate.mkdir(parents=True, exist_ok=True, mode=0o700)
            if os.access(candidate, os.W_OK):
                return candidate.resolve()
        except OSError:
            continue
    raise OSError("no writable directory for the error log")


def write_crash_log(command: str, exc: BaseException) -> Path | None:
    """Write ``exc``'s traceback (raw values redacted) to a new 0600 file; return its path (None if impossible)."""
    text = "".join(traceback.format_exception(exc))
    header = f"revs {command}: internal error at {datetime.now(UTC).isoformat()}\n"
    try:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = _log_dir() / f"{stamp}-{command}-{os.getpid()}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_redact(header + text))
        return path
    except OSError:
        return None


class _NoTraceback:
    """Console filter: one line per record; tracebacks stay in the Prefect logs and the error log."""

    def filter(self, record) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def quiet_prefect_console() -> None:
    """Stop Prefect's console handler from printing tracebacks (a user error would show 100+ lines of them).

    Call it after Prefect is imported, before a flow runs. The Prefect API logs keep the full records.
    """
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in (logging.getLogger(), logging.getLogger("prefect")):
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and \
                    not any(isinstance(f, _NoTraceback) for f in handler.filters):
                handler.addFilter(_NoTraceback())


def _error(command: str, line: str) -> None:
    sys.stderr.write(f"revs {command}: error: {line}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    command = args.command
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every command's failure becomes an exit code
        message = user_message(exc)
        if message is not None:
            _error(command, message)
            return EXIT_USER_ERROR
        log = write_crash_log(command, exc)
        where = f"the traceback is in {log}" if log else "no log file could be written"
        _error(command, f"internal error ({type(exc).__name__}); {where}. Please report it with that file.")
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
