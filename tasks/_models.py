"""Where models run, and a small process-level cache of loaded models (STYLE §3.1).

Offers :func:`model_runtime` / :func:`set_model_runtime` (the device and dtype every task loads models with:
``REVS_DEVICE`` / ``REVS_DTYPE``, default ``auto``), :func:`load` (load a model with them), :func:`load_cached`
(read-only use: probes, audits) and :func:`clear`. Tasks that *edit* weights load their own copy
(:func:`tasks.unlearning_io.run_unlearn` does), so a cached model is never modified.

The runtime is process-wide, read from the environment: a command's ``--device`` / ``--dtype`` and a flow's
``device`` / ``dtype`` parameters set it for the process (and the worker processes it starts), and a Prefect work
pool's job variables can set it for every flow run on its machines (``deploy/prefect.yaml``).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from revs_engine.devices import dtype_name, parse_device, parse_dtype
from revs_engine.loading import LoadedModel, load_model
from tasks._workspace import workspace_dir
from tasks.errors import UserError

MAX_MODELS = 2
DEVICE_ENV, DTYPE_ENV = "REVS_DEVICE", "REVS_DTYPE"
_CACHE: OrderedDict[tuple[str, int, str, str], LoadedModel] = OrderedDict()
_LOCK = threading.Lock()


def model_runtime() -> dict[str, str]:
    """Return ``{"device": ..., "dtype": ...}`` as named in the environment (``auto`` when unset)."""
    return {"device": os.environ.get(DEVICE_ENV) or "auto", "dtype": os.environ.get(DTYPE_ENV) or "auto"}


def set_model_runtime(device: str | None = None, dtype: str | None = None) -> dict[str, str]:
    """Check ``device`` / ``dtype`` names and make them this process's runtime (None keeps the current one).

    Raises:
        UserError: an unknown name, or a CUDA device this machine does not have (the message says what to use).
    """
    try:
        if device is not None:
            parse_device(device)
        if dtype is not None:
            parse_dtype(dtype)
    except ValueError as exc:
        raise UserError(f"--device/--dtype: {exc}.") from None
    if device is not None:
        os.environ[DEVICE_ENV] = str(device).strip().lower()
    if dtype is not None:
        os.environ[DTYPE_ENV] = str(dtype).strip().lower()
    return model_runtime()


def load(model: str | Path) -> LoadedModel:
    """Load ``model`` (a directory or spec) with the process's runtime (:func:`model_runtime`)."""
    return load_model(model, cache_dir=workspace_dir("cache"), **model_runtime())


def _resolved() -> tuple[str, str]:
    runtime = model_runtime()
    dtype = parse_dtype(runtime["dtype"])
    return str(parse_device(runtime["device"])), "auto" if dtype is None else dtype_name(dtype)


def load_cached(model: str | Path) -> LoadedModel:
    """Return the loaded model at ``model`` (a directory or spec) on the process's device and dtype, loading it
    on first use (LRU of 2; keyed by the model, its files' modification time, the device and the dtype)."""
    path = Path(model)
    key = (str(path.resolve()) if path.exists() else str(model),
           path.stat().st_mtime_ns if path.exists() else 0, *_resolved())
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        loaded = load(path if path.exists() else str(model))
        _CACHE[key] = loaded
        while len(_CACHE) > MAX_MODELS:
            _CACHE.popitem(last=False)
        return loaded


def clear() -> None:
    """Forget every cached model."""
    with _LOCK:
        _CACHE.clear()
