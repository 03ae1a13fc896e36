"""`revs scan`: find PII in a corpus and write findings as Parquet (no raw values).

Also hosts the helpers `revs locate` shares: reader arguments, the progress bar (docs/s, MB/s), the summary table
and the findings writer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EXIT_NOTHING_READ = 1
EXIT_USAGE = 2


def say(*parts: object, err: bool = False) -> None:
    """Write one line to stdout (or stderr): the CLI's only output channel."""
    (sys.stderr if err else sys.stdout).write(" ".join(str(p) for p in parts) + "\n")


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """Add CORPUS, --out, --workers and the reader options shared by scan and locate."""
    parser.add_argument("corpus", nargs="+", metavar="CORPUS",
                        help="corpus files or directories (.txt/.md/.log, .jsonl, .csv/.tsv, .parquet; also .gz)")
    parser.add_argument("--out", required=True, type=Path, help="findings Parquet file to write")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--config", type=Path, help="JSON/TOML/YAML: entities, thresholds, recognizers, reader")
    parser.add_argument("--lines", action="store_true", default=None,
                        help="plain text: one document per line (default: one per file)")
    parser.add_argument("--jsonl-field", help="dotted key path of the text in JSONL records (default: text)")
    parser.add_argument("--text-column", nargs="+", dest="text_columns", metavar="COL",
                        help="CSV/TSV/Parquet columns to scan (default: text)")
    parser.add_argument("--include", nargs="+", metavar="GLOB", help="only files matching these globs in dirs")
    parser.add_argument("--exclude", nargs="+", metavar="GLOB", help="skip files matching these globs in dirs")
    parser.add_argument("--follow-symlinks", action="store_true", default=None,
                        help="read symlinks in corpus directories that lead outside them (default: skip them)")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def register(subparsers) -> None:
    """Add the `scan` subcommand."""
    parser = subparsers.add_parser("scan", help="find PII in a training corpus; write findings.parquet",
                                   description="Scan a corpus for personal data. Findings hold locations, a keyed "
                                   "HMAC and a masked preview, never the raw value. Offsets are character "
                                   "offsets into the document text (for a file-per-document corpus, the file).")
    add_corpus_arguments(parser)
    parser.add_argument("--entities", nargs="+", metavar="ENTITY",
                        help="entity types (default: EMAIL_ADDRESS US_SSN PHONE_NUMBER CREDIT_CARD IBAN_CODE "
                        "IP_ADDRESS URL; NER types PERSON LOCATION ORGANIZATION NRP DATE_TIME on request)")
    parser.add_argument("--min-score", type=float, help="default minimum score (per-entity: config thresholds)")
    parser.set_defaults(handler=run)


def resolve_options(args):
    """Return ``(ScanConfig, ReaderOptions)`` from --config and the command-line overrides.

    Raises:
        pii_detect.ConfigError, tasks.errors.UserError: A setting is unknown, or has the wrong type or value.
    """
    import dataclasses

    import pii_detect
    from tasks.errors import UserError

    try:
        config, reader = (pii_detect.load_config(args.config) if args.config
                          else (pii_detect.ScanConfig(), pii_detect.ReaderOptions()))
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, pii_detect.ConfigError):
            raise
        raise UserError(f"--config {args.config}: a setting has the wrong type or value ({type(exc).__name__}: "
                        f"{exc}); numbers for min_score/thresholds/chunk sizes, lists of strings for entities, "
                        "a table for reader.") from None
    overrides = {"line_mode": args.lines, "jsonl_field": args.jsonl_field,
                 "text_columns": tuple(args.text_columns) if args.text_columns else None,
                 "include": tuple(args.include) if args.include else None,
                 "exclude": tuple(args.exclude) if args.exclude else None}
    reader = dataclasses.replace(reader, **{k: v for k, v in overrides.items() if v is not None})
    cfg_over = {}
    if getattr(args, "entities", None):
        cfg_over["entities"] = tuple(e.upper() for e in args.entities)
    if getattr(args, "min_score", None) is not None:
        cfg_over["min_score"] = args.min_score
    return (dataclasses.replace(config, **cfg_over) if cfg_over else config), reader


def check_output(out: Path, flag: str = "--out") -> Path:
    """Refuse an output file that cannot be written, before any work is done.

    Raises:
        tasks.errors.OutputPathError: ``out`` is a directory, or its nearest existing parent is not a writable
            directory.
    """
    from tasks.errors import OutputPathError

    out = Path(out)
    if out.is_dir():
        raise OutputPathError(f"{flag} {out}: is a directory; give a file path, e.g. {out / 'findings.parquet'} "
                              "(nothing was done).")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"{flag} {out}: {parent} is not a directory; choose another path (nothing was "
                              "done).")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{flag} {out}: {parent} is not writable; choose another path or fix its "
                              "permissions (nothing was done).")
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputPathError(f"{flag} {out}: the file exists and is read-only; choose another path or fix its "
                              "permissions (nothing was done).")
    return out


class Progress:
    """A tqdm bar on stderr counting documents, with MB/s in its postfix."""

    def __init__(self, enabled: bool, desc: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(desc=desc, unit="doc", file=sys.stderr, disable=not enabled, dynamic_ncols=True)
        self._bytes = 0
        self._t0 = time.perf_counter()

    def __call__(self, docs: int, nbytes: int) -> None:
        self._bytes += nbytes
        rate = self._bytes / 1e6 / max(time.perf_counter() - self._t0, 1e-9)
        self._bar.set_postfix_str(f"{rate:.2f} MB/s", refresh=False)
        self._bar.update(docs)

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()


def print_summary(stats, out: Path | None, title: str) -> None:
    """Print the per-entity table, throughput and read issues (locations only, never values)."""
    secs = max(stats.elapsed_s, 1e-9)
    say(f"\n{title}: {stats.documents} documents, {stats.files} files, {stats.bytes / 1e6:.2f} MB in "
          f"{stats.elapsed_s:.1f} s ({stats.documents / secs:.0f} docs/s, {stats.bytes / 1e6 / secs:.2f} MB/s)")
    width = max([len("entity type"), *(len(e) for e in stats.findings)])
    say(f"\n| {'entity type':<{width}} | findings |\n|{'-' * (width + 2)}|---------:|")
    for entity, count in sorted(stats.findings.items(), key=lambda kv: (-kv[1], kv[0])):
        say(f"| {entity:<{width}} | {count:>8} |")
    say(f"| {'total':<{width}} | {sum(stats.findings.values()):>8} |")
    issues = stats.issues
    if issues.total:
        say(f"\nskipped or repaired input ({issues.total}): "
              + ", ".join(f"{k}={v}" for k, v in sorted(issues.counts.items())))
        for issue in issues.examples[:20]:
            say(f"  {issue}")
        if issues.total > 20:
            say(f"  ... {issues.total - 20} more")
    if out is not None:
        say(f"\nfindings written to {out}")


def run(args) -> int:
    """Scan the corpus; exit 0, or 1 when no document was readable (bad arguments: a user error, exit 2)."""
    import pii_detect
    from tasks._workspace import hmac_key
    from tasks.corpus import check_corpus
    from tasks.errors import UserError

    if args.workers < 1:
        raise UserError("--workers: must be >= 1.")
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        raise UserError("--min-score: must be a number in [0, 1].")
    config, reader = resolve_options(args)
    check_corpus(args.corpus, "CORPUS")
    check_output(args.out)
    key = hmac_key()
    stats = pii_detect.ScanStats()
    bar = Progress(enabled=not args.no_progress and sys.stderr.isatty(), desc="scan")
    try:
        partial = stream_findings(pii_detect.scan_corpus(args.corpus, key, config, reader, workers=args.workers,
                                                         stats=stats, progress=bar))
    finally:
        bar.close()
    return write_and_report(partial, stats, args, "scan")


def stream_findings(batches) -> Path:
    """Write findings batches as they arrive to a Parquet file in the workspace (``scans/``); return its path.

    The scan's work is on disk as it goes: if the final copy to ``--out`` fails, nothing is lost. Interrupted
    scans leave nothing behind.
    """
    from datetime import UTC, datetime

    import pyarrow.parquet as pq

    import pii_detect
    from tasks._workspace import workspace_dir

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    partial = workspace_dir("scans") / f"{stamp}-{os.getpid()}.findings.parquet"
    try:
        with pq.ParquetWriter(partial, pii_detect.FINDINGS_SCHEMA) as writer:
            for batch in batches:
                if batch:
                    writer.write_table(pii_detect.findings_to_table(batch).cast(pii_detect.FINDINGS_SCHEMA))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def _publish(partial: Path, out: Path) -> None:
    """Copy the streamed findings to ``out`` atomically (temp file beside it, then rename); drop the partial."""
    import shutil
    import tempfile

    from tasks.errors import OutputPathError

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        try:
            shutil.copyfile(partial, tmp)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputPathError(f"--out {out}: cannot write it ({exc.strerror or type(exc).__name__}); the findings "
                              f"are kept in {partial}: copy them where you want them.") from None
    partial.unlink(missing_ok=True)


def write_and_report(partial: Path, stats, args, title: str) -> int:
    """Publish the streamed findings to ``--out`` and print the summary; exit 1 when no document was readable."""
    if stats.documents == 0:
        partial.unlink(missing_ok=True)
        print_summary(stats, None, title)
        say(f"revs {args.command}: error: no document could be read from {' '.join(map(str, args.corpus))}. "
            "Check the file types and --lines/--jsonl-field/--text-column (see the issues above).", err=True)
        return EXIT_NOTHING_READ
    _publish(partial, Path(args.out))
    print_summary(stats, args.out, title)
    return 0
