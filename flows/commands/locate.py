"""`revs locate`: find every occurrence of a deletion request's subject in a corpus; write findings as Parquet."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flows.commands.scan import EXIT_USAGE, Progress, add_corpus_arguments, fail, resolve_options, write_and_report


def register(subparsers) -> None:
    """Add the `locate` subcommand."""
    parser = subparsers.add_parser(
        "locate", help="find a data subject's identifiers in a corpus (deletion request)",
        description="Locate every occurrence of the identifiers in a deletion request (email, SSN, phone, name, "
        "free strings), with normalization (case, whitespace, SSN separators, phone formats to E.164). Writes "
        "the same findings rows as `revs scan`.")
    parser.add_argument("--request", required=True, type=Path, help="deletion request JSON file")
    add_corpus_arguments(parser)
    parser.set_defaults(handler=run)


def run(args) -> int:
    """Locate the subject; exit 0 unless nothing was readable (1) or the request/arguments are wrong (2)."""
    import pii_detect
    from tasks._workspace import hmac_key

    if args.workers < 1:
        return fail("--workers must be >= 1.")
    try:
        data = json.loads(Path(args.request).read_text(encoding="utf-8"))
    except OSError as exc:
        return fail(f"{args.request}: cannot read the request ({exc.strerror}).", EXIT_USAGE)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return fail(f"{args.request}: not valid JSON ({type(exc).__name__} at {getattr(exc, 'pos', '?')}).")
    try:
        request = pii_detect.parse_deletion_request(data)
        _, reader = resolve_options(args)
    except (pii_detect.RequestError, pii_detect.ConfigError) as exc:
        return fail(f"{args.request}: {exc}" if isinstance(exc, pii_detect.RequestError) else str(exc))
    stats = pii_detect.ScanStats()
    bar = Progress(enabled=not args.no_progress and sys.stderr.isatty(), desc="locate")
    try:
        table = pii_detect.collect_findings(pii_detect.locate_subject(
            args.corpus, request.subject, hmac_key(), reader, workers=args.workers, stats=stats, progress=bar))
    finally:
        bar.close()
    return write_and_report(table, stats, args, f"locate (request {request.request_id or '-'})")
