"""`revs report export|verify|public-key`: export a signed audit report, verify one, or hand out the signing key.

``revs report export --run RUN_DIR | --request ID [--format json|html|pdf ...] [--pdf] --out DIR`` reads a run
directory (``.revs/runs/<run_id>/`` holding ``report_data.json`` and ``evidence/``; see :mod:`tasks.reporting`) —
with ``--request`` the run is the one recorded in the request's state (``run_id`` in its step evidence). ``--pdf``
adds ``report.pdf``, printed from the HTML by headless Chromium and covered by the signed manifest.
``revs report verify DIR [--public-key PEM]`` exits 1 and lists the problems when any byte changed or the signer is
not trusted (the workspace's key, or the one given). ``revs report public-key [--out FILE]`` prints the workspace's
public key, for the people who will verify its reports.

User errors (a missing directory or key file, an unknown request, a non-empty ``--out``, no Chromium) raise
:class:`tasks.errors.UserError`: the CLI prints one line, ``revs report: error: <what, where, what to do>``,
and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_PEM_HEADER = b"-----BEGIN PUBLIC KEY-----"


def _echo(line: str, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def _user_error(line: str) -> Exception:
    from tasks.errors import UserError

    return UserError(line)


def register(subparsers) -> None:
    """Add the `report` subcommand with `export`, `verify` and `public-key`."""
    parser = subparsers.add_parser("report", help="export or verify a signed audit report")
    sub = parser.add_subparsers(dest="report_command", required=True, metavar="ACTION")
    export = sub.add_parser("export", help="export a run's report (JSON/HTML/PDF + evidence + manifest + "
                                           "signature)")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, metavar="RUN_DIR", help="run directory (.revs/runs/<run_id>)")
    source.add_argument("--request", metavar="ID", help="deletion request id (uses the run recorded in its state)")
    export.add_argument("--format", action="append", choices=["json", "html", "pdf"], dest="formats",
                        help="output format; repeat for several (default: json and html)")
    export.add_argument("--pdf", action="store_true",
                        help="also print the report to report.pdf with headless Chromium (signed with the rest)")
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="new, empty output directory")
    verify = sub.add_parser("verify", help="verify an exported report; exit 1 listing every problem")
    verify.add_argument("dir", type=Path, metavar="DIR")
    verify.add_argument("--public-key", type=Path, metavar="PEM",
                        help="the issuer's Ed25519 public key (report_signing.pub; default: this workspace's key)")
    key = sub.add_parser("public-key",
                         help="print this workspace's report-signing public key (give it to auditors)")
    key.add_argument("--out", type=Path, metavar="FILE", help="write it to FILE instead of printing it")
    parser.set_defaults(handler=run)


def _run_dir_for_request(request_id: str) -> Path:
    from tasks._workspace import workspace_root
    from tasks.requests import RequestStore

    state = RequestStore().status(request_id)
    evidence = [state.evidence.get(step) for step in reversed(state.completed)]
    run_ids = [ev["run_id"] for ev in evidence if isinstance(ev, dict) and isinstance(ev.get("run_id"), str)]
    if not run_ids:
        raise LookupError(f"request {request_id!r} has no run recorded yet (status {state.status}); run "
                          "`revs forget` on it first, or export a run directory with --run")
    return workspace_root() / "runs" / run_ids[0]


def _verify(args: argparse.Namespace) -> int:
    from tasks import reporting

    if not args.dir.is_dir():
        raise _user_error(f"{args.dir}: no such report directory; give the directory `revs report export` wrote")
    key = None
    if args.public_key is not None:
        if not args.public_key.is_file():
            raise _user_error(f"--public-key {args.public_key}: no such file; pass the issuer's "
                              "report_signing.pub (`revs report public-key` in their workspace prints it)")
        key = args.public_key.read_bytes()
        if _PEM_HEADER not in key:
            raise _user_error(f"--public-key {args.public_key}: not a PEM public key (no "
                              f"'{_PEM_HEADER.decode()}' line); pass the issuer's report_signing.pub")
    result = reporting.verify_report(args.dir, trusted_public_key=key)
    for note in result.notes:
        _echo(f"note: {note}", err=True)
    if not result.ok:
        _echo(f"FAILED: {args.dir}", err=True)
        for problem in result.problems:
            _echo(f"  {problem}", err=True)
        return 1
    _echo(f"OK: {args.dir} (every file matches the manifest signed by the trusted key)")
    return 0


def _public_key(args: argparse.Namespace) -> int:
    from tasks import signing
    from tasks._io import atomic_write_bytes

    pem = signing.public_key_pem()
    if pem is None:
        raise _user_error("this installation signs with HMAC (the `cryptography` package is missing): there is "
                          "no public key; install cryptography to sign publicly verifiable reports")
    if args.out is None:
        sys.stdout.write(pem.decode("ascii"))
        return 0
    if args.out.exists():
        raise _user_error(f"--out {args.out}: already exists; choose a new file")
    atomic_write_bytes(args.out, pem)
    _echo(f"wrote {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Export, verify or print the key; return 0 on success, 1 when verification fails, 2 on a user error."""
    from tasks import pdf, reporting
    from tasks.requests import RequestNotFoundError

    if args.report_command == "verify":
        return _verify(args)
    if args.report_command == "public-key":
        return _public_key(args)
    formats = list(args.formats or reporting.FORMATS) + (["pdf"] if args.pdf else [])
    try:
        run_dir = args.run if args.run is not None else _run_dir_for_request(args.request)
        out = reporting.export_run(run_dir, args.out, formats)
    except RequestNotFoundError:
        raise _user_error(f"--request {args.request}: no such request in this workspace; list them with "
                          "`revs status`") from None
    except ValueError as exc:  # an id that cannot name a request, malformed run data
        raise _user_error(f"--request {args.request}: {exc}" if args.request and "request_id" in str(exc)
                          else str(exc)) from None
    except (LookupError, FileNotFoundError, FileExistsError, pdf.ChromiumNotFoundError) as exc:
        raise _user_error(str(exc)) from None
    except pdf.PdfRenderError as exc:
        _echo(f"revs report: {exc}", err=True)
        return 1
    _echo(f"exported {out}")
    return 0
