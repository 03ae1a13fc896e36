"""File locks in the workspace: one per governed model, one per deletion request.

Offers :func:`model_lock` (an exclusive ``fcntl.flock`` on ``.revs/locks/<model>.lock`` serializing the erasures
of one model), :func:`flock` (the lock itself, any path), :func:`lock_name` (a file-name-safe name),
:data:`SAFE_NAME` (names used as they are) and :class:`LockTimeoutError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from tasks._workspace import workspace_root

#: Names (request ids, model names) safe to use as file names as they are.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class LockTimeoutError(TimeoutError):
    """A lock could not be acquired in time."""


def lock_name(name: str) -> str:
    """Return a file-name-safe lock name: the name itself when safe, else a slug plus a short hash."""
    if SAFE_NAME.fullmatch(name) and name not in {".", ".."}:
        return name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "model"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


@contextlib.contextmanager
def flock(path: Path, timeout: float | None) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created) for the block; wait for it, or raise
    :class:`LockTimeoutError` after ``timeout`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeoutError(f"{path}: still held by another run after {timeout:.0f} s; "
                                               "wait for it or raise the timeout.") from None
                    time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextlib.contextmanager
def model_lock(model_name: str, timeout: float | None = None, root: Path | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of one model (``.revs/locks/<model>.lock``) for the duration of the block.

    Two deletion requests against one model are serialized: the second blocks (or raises
    :class:`LockTimeoutError` after ``timeout`` seconds). The lock is released when the process dies.
    """
    path = (root or workspace_root()) / "locks" / f"{lock_name(model_name)}.lock"
    with flock(path, timeout):
        yield path
