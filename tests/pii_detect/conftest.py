"""Fixtures for pii_detect tests: an HMAC key and a small corpus writer. Only engine tests load spaCy."""

from __future__ import annotations

import pytest

KEY = b"k" * 32


@pytest.fixture
def key() -> bytes:
    """Return a fixed HMAC key (the library takes key bytes; it never reads the workspace)."""
    return KEY
