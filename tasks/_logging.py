"""Task logging: Prefect's run logger inside a flow or task run, the module logger elsewhere (``task.fn()``).

Offers :func:`run_logger`. Log ids, counts and paths — never values (STYLE §28).
"""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def run_logger(name: str = "tasks") -> logging.Logger | logging.LoggerAdapter:
    """Return the current run's logger, or ``logging.getLogger(name)`` outside a Prefect run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)
