"""The corpus paths a run reads: checked before anything runs, and fingerprinted for a request.

Offers
- :func:`check_corpus` — every path exists, is readable, and a directory holds at least one file the readers
  support; otherwise :class:`tasks.errors.CorpusPathError` (one line: which path, what is wrong, what to do).
  Flows call it before they record or register anything, the CLI before it starts a flow;
- :func:`corpus_fingerprint` — the sha256 of the sorted, resolved corpus paths (a request's state keeps this hash,
  not the paths, which can name people).

No Prefect here: `revs scan` and `revs locate` use it too. The tasks that read the corpus for a request are in
:mod:`tasks.corpus_inspection`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from tasks.errors import CorpusPathError


def _supported_file_in(directory: Path) -> bool:
    from pii_detect.config import ReaderOptions
    from pii_detect.readers.discover import iter_files

    return next(iter(iter_files(directory, ReaderOptions())), None) is not None


def check_corpus(corpus: list[Path] | list[str], flag: str = "--corpus") -> list[Path]:
    """Return the corpus paths when every one can be read; refuse the first that cannot.

    Raises:
        CorpusPathError: No path given, or a path is missing, unreadable, not a file or directory, or a directory
            without any supported file.
    """
    paths = [Path(p) for p in corpus]
    if not paths:
        raise CorpusPathError(f"{flag}: no corpus path given; name the corpus files or directories.")
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise CorpusPathError(f"{flag} {path}: no such file or directory; check the path (nothing was run)."
                                  ) from None
        except OSError as exc:
            raise CorpusPathError(f"{flag} {path}: cannot be read ({exc.strerror}); check the path and its "
                                  "permissions (nothing was run).") from None
        is_dir = stat.S_ISDIR(mode)
        if not is_dir and not stat.S_ISREG(mode):
            raise CorpusPathError(f"{flag} {path}: not a regular file or a directory; name corpus files or "
                                  "directories (nothing was run).")
        if not os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
            raise CorpusPathError(f"{flag} {path}: permission denied; make it readable (nothing was run).")
        if is_dir and not _supported_file_in(path):
            raise CorpusPathError(f"{flag} {path}: the directory holds no corpus file (.txt/.md/.log, .jsonl, "
                                  ".csv/.tsv, .parquet, also .gz; hidden files are skipped); check the path "
                                  "(nothing was run).")
    return paths


def corpus_fingerprint(corpus: list[Path] | list[str]) -> str:
    """Return the sha256 of the sorted, resolved corpus paths (which corpus a request was answered against)."""
    resolved = sorted({str(Path(p).expanduser().resolve()) for p in corpus})
    return hashlib.sha256("\n".join(resolved).encode()).hexdigest()
