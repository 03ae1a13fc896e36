"""Raw personal values known to this process, and what keeps them out of everything written.

Offers :data:`SENSITIVE` (a registry of raw values, filled when a deletion request begins and from request files
named in ``REVS_SENSITIVE_SOURCES``, also in worker processes; once filled it redacts every log record as it is
created), :func:`redact_failures` (a task-body decorator: an exception leaves the task with raw values replaced by
``[REDACTED]``), :class:`RedactedError` and :class:`SensitiveValueError` (evidence that would have written a raw
value).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

_REDACTED = "[REDACTED]"


class SensitiveValueError(ValueError):
    """Evidence would have written a raw personal value to disk."""


class _SensitiveValues:
    """Raw values known to this process; used to refuse or redact them before anything is written.

    Values come from :meth:`register` (the request object) and from request files named with
    :meth:`register_source`. Those files are also listed in the environment (:data:`SOURCES_ENV`), so a worker
    process started later (a local Dask worker, a spawned scan worker) loads the same values on first use: the
    registry is per request, not per process. Once a value is known, every log record this process creates is
    redacted (a logging record factory), whichever handler — console, Prefect API, file — writes it.
    """

    MIN_LEN = 4  # shorter values (initials) would redact ordinary words
    SOURCES_ENV = "REVS_SENSITIVE_SOURCES"

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.RLock()
        self._sources: set[str] = set()
        self._env_loaded = False

    def register(self, values: Iterator[str] | Sequence[str]) -> None:
        """Remember raw values (their case-folded and digits-only forms too) for the rest of this process."""
        with self._lock:
            for value in values:
                value = value.strip()
                if len(value) >= self.MIN_LEN:
                    self._values |= {value, value.casefold()}
                digits = re.sub(r"\D", "", value)
                if len(digits) >= 7:
                    self._values.add(digits)
            if self._values:
                _install_log_redaction()

    def register_source(self, path: str | Path) -> None:
        """Register the values of a request file, and name the file for worker processes started from now on."""
        source = str(Path(path).expanduser().resolve())
        with self._lock:
            self.register(_values_in_request_file(source))
            self._sources.add(source)
            known = set(filter(None, os.environ.get(self.SOURCES_ENV, "").split(os.pathsep)))
            os.environ[self.SOURCES_ENV] = os.pathsep.join(sorted(known | {source}))

    def _values_now(self) -> set[str]:
        if not self._env_loaded:
            with self._lock:
                if not self._env_loaded:
                    self._env_loaded = True
                    for source in filter(None, os.environ.get(self.SOURCES_ENV, "").split(os.pathsep)):
                        if source not in self._sources:
                            self._sources.add(source)
                            self.register(_values_in_request_file(source))
        return self._values

    def find(self, text: str) -> bool:
        """Return True when ``text`` contains a registered value."""
        values = self._values_now()
        folded = text.casefold()
        return any(v in text or v in folded for v in values)

    def redact(self, text: str) -> str:
        """Return ``text`` with every registered value replaced by ``[REDACTED]``."""
        for value in sorted(self._values_now(), key=len, reverse=True):
            text = re.sub(re.escape(value), _REDACTED, text, flags=re.IGNORECASE)
        return text

    def redact_exception(self, exc: BaseException) -> BaseException:
        """Redact ``exc`` (its arguments, notes and chained causes) in place, so it can be re-raised safely.

        Returns ``exc`` itself, or — when its text still shows a value (an exception that formats itself from
        other attributes) — a :class:`RedactedError` carrying the redacted text.
        """
        seen: set[int] = set()
        node: BaseException | None = exc
        while node is not None and id(node) not in seen:
            seen.add(id(node))
            node.args = tuple(self.redact(a) if isinstance(a, str) else a for a in node.args)
            if getattr(node, "__notes__", None):
                node.__notes__ = [self.redact(str(n)) for n in node.__notes__]
            for chained in (node.__cause__, node.__context__):
                if chained is not None and self.find(_describe(chained)):
                    node.__cause__, node.__context__, node.__suppress_context__ = None, None, True
            node = node.__cause__ or node.__context__
        if self.find(_describe(exc)):
            return RedactedError(f"{type(exc).__name__}: {self.redact(_describe(exc))}")
        return exc

    def clear(self) -> None:
        """Forget every registered value and source (also for worker processes started from now on)."""
        with self._lock:
            self._values.clear()
            self._sources.clear()
            self._env_loaded = True
            os.environ.pop(self.SOURCES_ENV, None)


class RedactedError(RuntimeError):
    """An exception whose text held a raw personal value, re-raised with that value replaced by ``[REDACTED]``."""


def redact_failures(fn):
    """Decorate a task body so that an exception leaves it redacted (:meth:`_SensitiveValues.redact_exception`).

    Put it under ``@task``: Prefect turns a task's exception into the task run's state message (stored by the
    Prefect server) and may persist it, before any flow code could redact it.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            safe = _redacted(exc)
            if safe is exc:
                raise
            raise safe from None

    return wrapper


def _redacted(exc: BaseException) -> BaseException:
    # module-level on purpose: a task shipped to a Dask worker pickles its wrapper by value, and the wrapper must
    # reach the registry by reference (its lock cannot be pickled)
    return SENSITIVE.redact_exception(exc)


def _describe(exc: BaseException) -> str:
    try:
        return f"{exc!s} {exc!r}"
    except Exception:  # noqa: BLE001 - an exception that cannot print itself holds nothing to redact
        return type(exc).__name__


def _values_in_request_file(path: str) -> list[str]:
    """Return the raw values of a deletion-request file: the subject's name and identifier values."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    subject = data.get("subject") if isinstance(data, dict) else None
    if not isinstance(subject, dict):
        return []
    values = [subject.get("name")]
    idents = subject.get("identifiers")
    values += [i.get("value") for i in idents if isinstance(i, dict)] if isinstance(idents, list) else []
    return [v for v in values if isinstance(v, str)]


_FACTORY_LOCK = threading.Lock()
_FACTORY_INSTALLED = False


def _install_log_redaction() -> None:
    """Wrap the logging record factory once: records are redacted when created, before any handler sees them."""
    global _FACTORY_INSTALLED
    with _FACTORY_LOCK:
        if _FACTORY_INSTALLED:
            return
        _FACTORY_INSTALLED = True
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
                if SENSITIVE.find(message):
                    record.msg, record.args = SENSITIVE.redact(message), None
                if record.exc_info and record.exc_info[1] is not None:
                    text = logging.Formatter().formatException(record.exc_info)
                    if SENSITIVE.find(text):
                        record.exc_text = SENSITIVE.redact(text)
                        record.exc_info = None
                if record.stack_info and SENSITIVE.find(record.stack_info):
                    record.stack_info = SENSITIVE.redact(record.stack_info)
            except Exception:  # noqa: BLE001, S110 - a record that cannot be formatted is left to its handler
                pass
            return record

        logging.setLogRecordFactory(factory)


SENSITIVE = _SensitiveValues()
