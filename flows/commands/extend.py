"""`revs extend REQUEST_ID --months N | --days N --reason CODE`: extend a request's statutory answer deadline.

GDPR Art. 12(3) allows two further months "where necessary, taking into account the complexity and number of the
requests" (the data subject must be told, with the reasons, within the first month); CCPA allows 45 more days once.
The reason is a code (``complexity`` or ``number-of-requests``), never free text. The extension is recorded in
the request's state and history, and shown by ``revs status`` and in the report.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add the `extend` subcommand."""
    from tasks.deadlines import EXTENSION_REASONS

    parser = subparsers.add_parser("extend", help="extend a deletion request's statutory deadline",
                                   description="Extend a deletion request's answer deadline (GDPR: up to two "
                                   "further months; CCPA: up to 45 more days), with a reason code.")
    parser.add_argument("request_id", help="the request id")
    length = parser.add_mutually_exclusive_group(required=True)
    length.add_argument("--months", type=int, help="months to add (GDPR)")
    length.add_argument("--days", type=int, help="days to add (CCPA)")
    parser.add_argument("--reason", required=True, choices=EXTENSION_REASONS, help="why (GDPR Art. 12(3))")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Record the extension; print the new due date."""
    from tasks.errors import UserError
    from tasks.requests import IllegalTransitionError, RequestStore

    try:
        state = RequestStore().extend_deadline(args.request_id, args.reason, months=args.months or 0,
                                               days=args.days or 0)
    except (ValueError, IllegalTransitionError) as exc:
        raise UserError(f"{args.request_id}: {exc}") from None
    sys.stdout.write(f"{state.request_id}: deadline extended ({args.reason}); now due {state.deadline['due']} "
                     f"(statutory {state.deadline['statutory_due']}, {state.deadline['source']})\n")
    return 0
