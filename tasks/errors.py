"""Errors the user can fix: bad input, a bad path, a workspace in the wrong state.

Offers :class:`UserError` (the base; the CLI prints its message as one line and exits 2, without a traceback)
and a few specific subclasses that also inherit the matching built-in, so callers can catch either:
:class:`WorkspaceError`, :class:`InvalidNameError`, :class:`CorpusPathError`, :class:`OutputPathError`,
:class:`FreeTextError`; and :func:`is_user_error` / :func:`retry_unless_user_error` (a Prefect
``retry_condition_fn``: retrying a user error cannot help, so it fails at once).

Every message says what is wrong, where (a flag, a file, a field) and what to do — and never repeats a value
that could be personal data.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a fixable environment problem; the message says what, where and what to do."""


class WorkspaceError(UserError, OSError):
    """The workspace (``REVS_HOME``) or one of its files cannot be used as it is (path, permissions, key)."""


class InvalidNameError(UserError, ValueError):
    """A model name (or another name that becomes a folder) breaks the naming rule."""


class CorpusPathError(UserError, FileNotFoundError):
    """A corpus path is missing, unreadable, or holds no file the readers support."""


class OutputPathError(UserError, OSError):
    """An output path (``--out``) cannot be written."""


class FreeTextError(UserError, ValueError):
    """A free-text field that would be stored (``--reason``) contains personal data."""


def is_user_error(exc: BaseException | None) -> bool:
    """Tell whether ``exc`` is an error the user must fix (retrying it cannot help)."""
    import sys

    kinds: list[type] = [UserError]
    for module, names in (("revs_engine.errors", ("ModelLoadError", "UnsupportedArchitectureError")),
                          ("pii_detect.errors", ("PiiDetectError",))):
        loaded = sys.modules.get(module)
        kinds += [getattr(loaded, n) for n in names if loaded is not None and hasattr(loaded, n)]
    return isinstance(exc, tuple(kinds))


def retry_unless_user_error(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run unless it failed on a user error."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            exc = state.result(raise_on_failure=False)
        except Exception:  # noqa: BLE001 - an unreadable result: keep the task's retry policy
            return True
    return not is_user_error(exc if isinstance(exc, BaseException) else None)
