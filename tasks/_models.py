"""A small process-level cache of loaded models, so consecutive tasks on one version load it once (STYLE §3.1).

Offers :func:`load_cached` (read-only use: probes, audits) and :func:`clear`. Tasks that *edit* weights load
their own copy (:func:`tasks.unlearning_io.run_unlearn` does), so a cached model is never modified.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from revs_engine.loading import LoadedModel, load_model
from tasks._workspace import workspace_dir

MAX_MODELS = 2
_CACHE: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
_LOCK = threading.Lock()


def load_cached(model: str | Path) -> LoadedModel:
    """Return the loaded model at ``model`` (a directory or spec), loading it on first use (LRU of 2)."""
    path = Path(model)
    key = (str(path.resolve()) if path.exists() else str(model),
           path.stat().st_mtime_ns if path.exists() else 0)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        loaded = load_model(path if path.exists() else str(model), cache_dir=workspace_dir("cache"))
        _CACHE[key] = loaded
        while len(_CACHE) > MAX_MODELS:
            _CACHE.popitem(last=False)
        return loaded


def clear() -> None:
    """Forget every cached model."""
    with _LOCK:
        _CACHE.clear()
