"""Progress of long steps, in the terminal and in Prefect's logs.

Offers :class:`StepProgress`: a callable progress reporter (``progress(n)`` after each unit of work) that

- writes one log line through the run logger (:func:`tasks._logging.run_logger`: Prefect's run logger inside a
  flow, so the line is in the flow run's logs in the UI) at most every ``every_s`` seconds and at each
  ``every_pct`` percent: ``probe: 120/400 findings (30 %), 41 s elapsed, about 96 s left``;
- draws a tqdm bar on the terminal when stderr is one (never in a log file or CI output).

Counts only: a step's name, a unit, numbers and times — never a value. Library functions take a plain callable
(``progress: Callable[[int], None]``), so they stay free of Prefect; tasks pass a :class:`StepProgress`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from tasks._logging import run_logger


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 120:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class StepProgress:
    """Report the progress of one step (see the module docstring); use as a context manager or call ``close()``.

    Args:
        step: The step's name (``scan``, ``probe``, ``edit``, ``audit``).
        total: Units of work expected (None when unknown: no percentage, no estimate).
        unit: What one unit is, plural (``documents``, ``findings``, ``targets``).
        every_s: Log at most this often (seconds).
        every_pct: ... and whenever another ``every_pct`` percent is done.
        bar: Draw a terminal bar (default: when stderr is a terminal).
        clock: Monotonic clock (tests pass a fake one).
    """

    def __init__(self, step: str, total: int | None, unit: str, *, every_s: float = 15.0, every_pct: int = 10,
                 bar: bool | None = None, logger: Any = None, clock: Callable[[], float] = time.monotonic):
        self.step, self.total, self.unit = step, total, unit
        self.every_s, self.every_pct, self.clock = every_s, every_pct, clock
        self.logger = logger or run_logger()
        self.done, self.start = 0, clock()
        self._last_log, self._last_pct = self.start, 0
        self._bar = None
        if bar if bar is not None else sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=step, unit=unit.rstrip("s") or unit, leave=False)
        self.logger.info("%s: started (%s %s)", step, "?" if total is None else f"{total:,}", unit)

    def line(self) -> str:
        """Return the progress line as it would be logged now."""
        elapsed = self.clock() - self.start
        if not self.total:
            return f"{self.step}: {self.done:,} {self.unit}, {_duration(elapsed)} elapsed"
        pct = 100.0 * self.done / self.total
        text = f"{self.step}: {self.done:,}/{self.total:,} {self.unit} ({pct:.0f} %), {_duration(elapsed)} elapsed"
        if 0 < self.done < self.total:
            text += f", about {_duration(elapsed * (self.total - self.done) / self.done)} left"
        return text

    def __call__(self, n: int = 1) -> None:
        """Record ``n`` more units done; log when it is time."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        now = self.clock()
        pct = int(100 * self.done / self.total) // self.every_pct * self.every_pct if self.total else 0
        if now - self._last_log >= self.every_s or pct > self._last_pct:
            self._last_log, self._last_pct = now, max(pct, self._last_pct)
            self.logger.info("%s", self.line())

    def close(self) -> None:
        """Log the final line and remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.logger.info("%s (done)", self.line())

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
