"""Cache keys for Prefect tasks built from what the inputs *contain*, not from Python objects.

Offers :func:`content_hash` (a file's sha256, or a directory's hash over its files' relative paths and sha256s),
:func:`content_key` (a ``cache_key_fn``: task name + every parameter, with each path replaced by its content
hash) and :data:`CACHED` (the keyword arguments every cached task uses).

Tasks receive paths; two runs on byte-identical inputs (the same corpus files, the same model weights) hit the
same cache entry, and any changed byte (a new model version, an edited corpus) misses it. File hashes are memoized
per ``(path, size, mtime_ns)`` so hashing a model directory costs one read per process.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from tasks._io import sha256_file

_MEMO: dict[tuple[str, int, int], str] = {}
_MEMO_LOCK = threading.Lock()


def _file_hash(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _MEMO_LOCK:
        if key in _MEMO:
            return _MEMO[key]
    digest = sha256_file(path)
    with _MEMO_LOCK:
        _MEMO[key] = digest
    return digest


def content_hash(path: str | Path) -> str:
    """Return the sha256 of a file, or of a directory's ``relative path + file sha256`` listing.

    A path that does not exist hashes as ``missing:<path>`` (its producer has not run yet).
    """
    path = Path(path)
    if path.is_file():
        return _file_hash(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            digest.update(f"{file.relative_to(path).as_posix()}\0{_file_hash(file)}\n".encode())
        return digest.hexdigest()
    return f"missing:{path}"


def _canonical(value: Any) -> Any:
    if isinstance(value, Path):
        return {"path": str(value), "sha256": content_hash(value)}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cache key: {type(value).__name__} is not a path or plain data; pass a path instead")


def content_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect ``cache_key_fn``: hash of the task's name and its parameters with paths as content hashes."""
    doc = {"task": context.task.task_key if context is not None else "", "parameters": _canonical(parameters)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


#: Options of a deterministic, cached compute task (results are paths and counts; never raw values).
CACHED: dict[str, Any] = {"cache_key_fn": content_key, "persist_result": True}
#: Options of a task that talks to a store that can be briefly unavailable (MLflow, the file system).
IO_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay_seconds": [1, 5]}
