"""Errors raised by :mod:`revs_engine`; each says what is wrong and what to do.

``RevsError`` is the base; specific subclasses also inherit the matching built-in so callers can catch either.
"""

from __future__ import annotations


class RevsError(Exception):
    """Base class of every error raised by revs_engine."""


class UnsupportedArchitectureError(RevsError, ValueError):
    """The model's ``config.model_type`` is not in the architecture table."""


class ModelLoadError(RevsError, OSError):
    """A model could not be loaded (missing path, corrupt weights, not a causal LM, offline hub id)."""


class ShapeError(RevsError, ValueError):
    """Inputs have shapes the function cannot use."""


class ConvergenceError(RevsError, RuntimeError):
    """An iterative procedure was asked to converge strictly and did not."""
