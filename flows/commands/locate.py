"""`revs locate`: find every occurrence of a deletion request's subject in a corpus; write findings as Parquet."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flows.commands.scan import (
    Progress,
    add_corpus_arguments,
    check_output,
    resolve_options,
    stream_findings,
    write_and_report,
)

IDENTIFIER_TYPES = ("email", "ssn", "phone", "name", "other")


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


def _read_request(path: Path):
    """Parse the request file; every problem names the field, never the value (a misplaced value is personal)."""
    import pii_detect
    from tasks.errors import UserError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"--request {path}: cannot read the request ({exc.strerror}); check the path.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"--request {path}: not valid JSON ({type(exc).__name__} at {getattr(exc, 'pos', '?')}); "
                        "fix the file.") from None
    idents = data.get("subject", {}).get("identifiers") if isinstance(data, dict) and \
        isinstance(data.get("subject"), dict) else None
    for i, item in enumerate(idents if isinstance(idents, list) else []):
        if isinstance(item, dict) and item.get("type") not in IDENTIFIER_TYPES:
            raise UserError(f"--request {path}: subject.identifiers[{i}].type: must be one of "
                            f"{', '.join(IDENTIFIER_TYPES)}; fix the file.")
    try:
        return pii_detect.parse_deletion_request(data)
    except pii_detect.RequestError as exc:
        raise UserError(f"--request {path}: {exc}") from None


def run(args) -> int:
    """Locate the subject; exit 0, or 1 when no document was readable (bad input: a user error, exit 2)."""
    import pii_detect
    from tasks._workspace import hmac_key
    from tasks.corpus import check_corpus
    from tasks.errors import UserError

    if args.workers < 1:
        raise UserError("--workers: must be >= 1.")
    request = _read_request(args.request)
    _, reader = resolve_options(args)
    check_corpus(args.corpus, "CORPUS")
    check_output(args.out)
    stats = pii_detect.ScanStats()
    bar = Progress(enabled=not args.no_progress and sys.stderr.isatty(), desc="locate")
    try:
        partial = stream_findings(pii_detect.locate_subject(
            args.corpus, request.subject, hmac_key(), reader, workers=args.workers, stats=stats, progress=bar))
    finally:
        bar.close()
    return write_and_report(partial, stats, args, f"locate (request {request.request_id or '-'})")
