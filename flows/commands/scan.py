"""`revs scan`: find PII in a corpus and write findings as Parquet (no raw values).

Also hosts the helpers `revs locate` shares: reader arguments, the progress bar (docs/s, MB/s), the summary table
and the findings writer.
"""

from __future__ import annotations

import argparse
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


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print an error that says what to fix; return the exit code."""
    say(f"revs: error: {message}", err=True)
    return code


def resolve_options(args):
    """Return ``(ScanConfig, ReaderOptions)`` from --config and the command-line overrides."""
    import dataclasses

    import pii_detect

    config, reader = (pii_detect.load_config(args.config) if args.config
                      else (pii_detect.ScanConfig(), pii_detect.ReaderOptions()))
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
    """Scan the corpus; exit 0 unless nothing was readable (1) or the arguments are wrong (2)."""
    import pii_detect
    from tasks._workspace import hmac_key

    if args.workers < 1:
        return fail("--workers must be >= 1.")
    try:
        config, reader = resolve_options(args)
    except pii_detect.ConfigError as exc:
        return fail(str(exc))
    stats = pii_detect.ScanStats()
    bar = Progress(enabled=not args.no_progress and sys.stderr.isatty(), desc="scan")
    try:
        batches = pii_detect.scan_corpus(args.corpus, hmac_key(), config, reader, workers=args.workers,
                                         stats=stats, progress=bar)
        table = pii_detect.collect_findings(batches)
    except pii_detect.ConfigError as exc:
        return fail(str(exc))
    finally:
        bar.close()
    return write_and_report(table, stats, args, "scan")


def write_and_report(table, stats, args, title: str) -> int:
    """Write the findings table and print the summary; exit 1 when no document was readable."""
    import pii_detect
    from tasks import _io

    if stats.documents == 0:
        print_summary(stats, None, title)
        return fail(f"no document could be read from {' '.join(map(str, args.corpus))}. Check the paths, the file "
                    "types, and --lines/--jsonl-field/--text-column (see the issues above).", EXIT_NOTHING_READ)
    _io.write_table(table, args.out, pii_detect.FINDINGS_SCHEMA)
    print_summary(stats, args.out, title)
    return 0
