"""The run workspace (``REVS_HOME``, default ``./.revs``) and its secrets.

Offers :func:`workspace_root`, :func:`workspace_dir`, :func:`hmac_key` (created 0600 on first use) and
:func:`configure_prefect` (``PREFECT_HOME`` inside the workspace; call it before ``prefect`` is imported).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

HMAC_KEY_BYTES = 32


def workspace_root() -> Path:
    """Return the absolute workspace root from ``REVS_HOME`` (default ``./.revs``), creating it."""
    root = Path(os.environ.get("REVS_HOME", ".revs")).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def workspace_dir(*parts: str) -> Path:
    """Return (and create) a directory inside the workspace."""
    path = workspace_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def hmac_key(root: Path | None = None) -> bytes:
    """Return the workspace's HMAC key, creating ``keys/hmac.key`` with mode 0600 on first use."""
    keys = (root or workspace_root()) / "keys"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys / "hmac.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) < 16:
            raise ValueError(f"{path}: HMAC key is truncated ({len(key)} bytes). Restore it from backup; "
                             "a new key would make existing findings' value_hmac unmatchable.") from None
        return key
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(HMAC_KEY_BYTES))
    return path.read_bytes()


def configure_prefect(root: Path | None = None) -> Path:
    """Point ``PREFECT_HOME`` at ``<workspace>/prefect`` unless the user set it; return the Prefect home.

    Prefect reads its settings when it is imported, so the CLI calls this first: local runs then keep their
    database, results and logs inside the workspace instead of ``~/.prefect``. Telemetry is switched off.
    """
    home = Path(os.environ.setdefault("PREFECT_HOME", str((root or workspace_root()) / "prefect")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return home
