"""Errors raised by :mod:`pii_detect`.

Offers one base class, :class:`PiiDetectError`, and specific subclasses that also inherit the matching built-in
so callers can catch either: :class:`ConfigError`, :class:`RequestError`, :class:`CorpusChangedError`,
:class:`DocumentNotFoundError`, :class:`CorpusReadError` and :class:`NothingReadableError`.
"""

from __future__ import annotations


class PiiDetectError(Exception):
    """Base class of every error raised on purpose by :mod:`pii_detect`."""


class ConfigError(PiiDetectError, ValueError):
    """A scan configuration (or its file) is invalid; the message names the field to fix."""


class RequestError(PiiDetectError, ValueError):
    """A deletion request is malformed; the message names the JSON field path to fix."""


class CorpusReadError(PiiDetectError, OSError):
    """A corpus file cannot be read at all (missing, unreadable, unsupported)."""


class DocumentNotFoundError(PiiDetectError, LookupError):
    """A ``(source, doc_key)`` pair does not name a document in the corpus (any more)."""


class CorpusChangedError(PiiDetectError, RuntimeError):
    """A document's sha256 differs from the one recorded in a finding: the corpus changed since the scan."""


class NothingReadableError(PiiDetectError, ValueError):
    """No document could be read from any of the given corpus paths."""
