"""The run workspace (``REVS_HOME``, default ``./.revs``), the paths inside it, and its secrets.

Offers :func:`workspace_root`, :func:`workspace_dir` (a directory inside the workspace; anything that would resolve
outside it is refused), :func:`inside_workspace`, :func:`check_name` (the one naming rule for names that become
folders: model names), :func:`hmac_key` (created 0600 on first use; refused when group/world-readable) and
:func:`configure_prefect` (``PREFECT_HOME`` inside the workspace; call it before ``prefect`` is imported).

Directories this module creates are 0700 and the key file 0600, whatever the process umask.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from tasks.errors import InvalidNameError, WorkspaceError

HMAC_KEY_BYTES = 32
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_RULE_TEXT = ("1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (it names a folder "
                  "under REVS_HOME/models, so no '/', spaces or quotes)")
_DIR_MODE = 0o700
_KEY_MODE = 0o600


def _make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents as 0700 directories (explicit chmod: the umask cannot widen it)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            continue  # another process created it first
        os.chmod(directory, _DIR_MODE)


def workspace_root() -> Path:
    """Return the absolute workspace root from ``REVS_HOME`` (default ``./.revs``), creating it (0700).

    Raises:
        WorkspaceError: ``REVS_HOME`` names a file, or the directory cannot be created.
    """
    raw = os.environ.get("REVS_HOME", ".revs")
    root = Path(raw).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"REVS_HOME={raw} is not a directory; point REVS_HOME at a directory (or remove "
                             "the file).")
    try:
        _make_dirs(root)
    except OSError as exc:
        raise WorkspaceError(f"REVS_HOME={raw}: cannot create the workspace ({exc.strerror}); point REVS_HOME at "
                             "a writable directory.") from None
    return root


def _check_part(part: str) -> str:
    if not isinstance(part, str) or not part or part in {".", ".."} or "/" in part or "\\" in part \
            or "\0" in part:
        raise WorkspaceError(f"workspace path part {part!r} is not a plain name (no '/', '..' or empty parts); "
                             "workspace paths are built from validated names only.")
    return part


def inside_workspace(path: str | Path, root: Path | None = None) -> Path:
    """Return ``path`` resolved (symlinks followed), refusing anything outside the workspace.

    Raises:
        WorkspaceError: The resolved path is not inside the workspace root.
    """
    root = (root or workspace_root()).resolve()
    resolved = Path(path).expanduser().resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise WorkspaceError(f"{path} resolves outside the workspace {root}; refusing to write there. Use plain "
                             "names (no '..', no symlinks out of REVS_HOME).")
    return resolved


def workspace_dir(*parts: str) -> Path:
    """Return (and create, 0700) a directory inside the workspace.

    Raises:
        WorkspaceError: A part is not a plain name, the path resolves outside the workspace (a symlink), or the
            directory cannot be created.
    """
    root = workspace_root()
    path = inside_workspace(root.joinpath(*map(_check_part, parts)), root)
    try:
        _make_dirs(path)
    except OSError as exc:
        raise WorkspaceError(f"cannot create {path} in the workspace ({exc.strerror}); fix the permissions of "
                             f"{root} or point REVS_HOME at a writable directory.") from None
    return path


def check_name(name: str, what: str = "--name") -> str:
    """Return ``name`` when it follows the naming rule (:data:`NAME_RULE_TEXT`); the rule for every command.

    The name itself is not echoed in the error: it is user text and could be anything.

    Raises:
        InvalidNameError: The name breaks the rule.
    """
    if not isinstance(name, str) or not NAME_RULE.fullmatch(name):
        raise InvalidNameError(f"{what}: a model name is {NAME_RULE_TEXT}; e.g. 'my-model' or 'smollm2-135m'.")
    return name


def _read_key(path: Path) -> bytes:
    info = os.stat(path)
    if info.st_mode & 0o077:
        raise WorkspaceError(
            f"{path}: the HMAC key is readable or writable by group/others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); anyone who reads it can test guesses of the erased values. "
            f"Run `chmod 600 {path}` and try again.")
    key = path.read_bytes()
    if len(key) < 16:
        raise WorkspaceError(f"{path}: HMAC key is truncated ({len(key)} bytes). Restore it from backup; "
                             "a new key would make existing findings' value_hmac unmatchable.")
    return key


def hmac_key(root: Path | None = None) -> bytes:
    """Return the workspace's HMAC key, creating ``keys/hmac.key`` (0600, in a 0700 folder) on first use.

    Raises:
        WorkspaceError: The key file is group/world-accessible (with the ``chmod`` that fixes it) or truncated.
    """
    keys = (root or workspace_root()) / "keys"
    _make_dirs(keys)
    path = keys / "hmac.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_MODE)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), _KEY_MODE)
        fh.write(secrets.token_bytes(HMAC_KEY_BYTES))
    return _read_key(path)


#: Seconds a run waits for its temporary Prefect server (see :func:`configure_prefect`).
EPHEMERAL_STARTUP_TIMEOUT_S = 120


def configure_prefect(root: Path | None = None) -> Path:
    """Point ``PREFECT_HOME`` at ``<workspace>/prefect`` unless the user set it; return the Prefect home.

    Prefect reads its settings when it is imported, so the CLI calls this first: local runs then keep their
    database, results and logs inside the workspace instead of ``~/.prefect``. Telemetry is switched off, and the
    temporary Prefect server a run starts when no ``PREFECT_API_URL`` is set gets
    :data:`EPHEMERAL_STARTUP_TIMEOUT_S` to come up (Prefect's 20 s default failed a sweep on a busy 2-core
    machine) unless the user set ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``.
    """
    home = Path(os.environ.setdefault("PREFECT_HOME", str((root or workspace_root()) / "prefect")))
    _make_dirs(home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_TIMEOUT_S))
    return home
