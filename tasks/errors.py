"""Errors the user can fix: bad input, a bad path, a workspace in the wrong state.

Offers :class:`UserError` (the base; the CLI prints its message as one line and exits 2, without a traceback)
and a few specific subclasses that also inherit the matching built-in, so callers can catch either:
:class:`WorkspaceError`, :class:`InvalidNameError`, :class:`CorpusPathError`, :class:`OutputPathError` and
:class:`FreeTextError`.

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
