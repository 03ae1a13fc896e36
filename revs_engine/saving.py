"""Atomic model saving: a model directory appears whole or not at all.

Offers :func:`save_model` (safetensors + tokenizer, loadable by ``from_pretrained``), :func:`save_dir_atomic`
(the same with extra JSON files and a no-overwrite mode) and :func:`file_lock` (an advisory lock for builders).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase | None, out_dir: Path) -> Path:
    """Save ``model`` (safetensors) and ``tokenizer`` to ``out_dir`` atomically; replaces an existing dir.

    Files are written into a sibling ``.tmp-*`` directory which is then renamed, so a crash or an exception
    mid-write never leaves a partial ``out_dir``. The result loads with ``from_pretrained(out_dir)``.

    Returns:
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    save_dir_atomic(model, tokenizer, out_dir, overwrite=True)
    return out_dir


def save_dir_atomic(model, tokenizer, out_dir: Path, *, overwrite: bool, extra: dict | None = None) -> None:
    """Write into ``out_dir.parent/.tmp-*``, then rename into place (replacing ``out_dir`` only if asked)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it 0700; the published dir should read like any other
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        for name, payload in (extra or {}).items():
            (tmp / name).write_text(json.dumps(payload, indent=2, sort_keys=True))
        _publish(tmp, out_dir, overwrite=overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, out_dir: Path, *, overwrite: bool) -> None:
    """Rename the finished ``tmp`` dir to ``out_dir``; an existing one is moved aside first when overwriting."""
    old = None
    if overwrite and out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".old-{out_dir.name}-", dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
    try:
        os.rename(tmp, out_dir)  # atomic; fails if out_dir exists and is not empty
    except OSError:
        if old is not None:  # put the previous version back rather than lose it
            os.replace(old / out_dir.name, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        elif out_dir.is_dir():
            logger.info("%s was written concurrently; keeping that copy", out_dir)
            return
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (no-op where ``fcntl`` is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
