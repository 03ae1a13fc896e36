"""Task logging, and a fork fix for Prefect's background services.

Offers :func:`run_logger` (Prefect's run logger inside a flow or task run, the module logger elsewhere, e.g. under
``task.fn()``). Log ids, counts and paths — never values (STYLE §28).

Importing this module also installs :func:`_drop_prefect_exit_hooks_after_fork`: Prefect 3.8.8's queue services
(log and event workers) register a ``threading`` exit hook and are reset in a forked child, whose exit hook then
fails (``assert self._done_event is not None``) and the child exits with status 1 although its work succeeded.
Processes forked by a flow's process (multi-process corpus scans, ``ProcessPoolExecutor``) would all report
failure. In the child the reset services have nothing to drain, so their exit hooks are dropped.
"""

from __future__ import annotations

import logging
import os
import threading

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def run_logger(name: str = "tasks") -> logging.Logger | logging.LoggerAdapter:
    """Return the current run's logger, or ``logging.getLogger(name)`` outside a Prefect run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)


def _drop_prefect_exit_hooks_after_fork() -> None:
    from prefect._internal.concurrency.services import _QueueServiceBase

    hooks = getattr(threading, "_threading_atexits", None)
    if isinstance(hooks, list):
        # entries are functools.partial(bound method); keep every hook that is not a service's _at_exit
        hooks[:] = [h for h in hooks
                    if getattr(getattr(h, "func", h), "__func__", None) is not _QueueServiceBase._at_exit]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_prefect_exit_hooks_after_fork)
