"""`revs probe`: which findings does a model reproduce verbatim? Writes the probes table (DESIGN §2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.commands._runtime import add_runtime_args, apply_runtime


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def register(subparsers) -> None:
    """Add the `probe` subcommand."""
    parser = subparsers.add_parser(
        "probe", help="probe a model for memorized findings",
        description="Re-read every finding's prefix and value from its corpus, and decide with one batched "
        "teacher-forced forward pass whether greedy decoding reproduces the value. Writes counts, ranks and "
        "verdicts only (no values, no token ids).")
    parser.add_argument("--model", required=True, help="model alias, directory, .gguf file or hub id")
    parser.add_argument("--findings", required=True, type=Path, help="findings Parquet (knows its corpus)")
    parser.add_argument("--out", required=True, type=Path, help="probes Parquet to write")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-prefix-tokens", type=int, default=256,
                        help="keep only the last N prefix tokens (recorded as prefix_truncated); 0 = no limit")
    parser.add_argument("--memorized-threshold", type=float, default=1.0,
                        help="memorized iff the fraction of greedy-predicted target tokens reaches this")
    add_runtime_args(parser)
    parser.set_defaults(handler=run)


def _read_findings(path: Path):
    """Read the findings table, turning a missing or foreign file into a user error."""
    import pyarrow as pa

    from pii_detect.schema import FINDINGS_SCHEMA
    from tasks import _io
    from tasks.errors import UserError

    if not Path(path).is_file():
        raise UserError(f"--findings {path}: no such file; produce it with `revs scan` or `revs locate` first.")
    try:
        return _io.read_table(path, FINDINGS_SCHEMA)
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"--findings {path}: not a readable Parquet file ({type(exc).__name__}); give the "
                        "findings written by `revs scan` or `revs locate`.") from None


def run(args: argparse.Namespace) -> int:
    """Probe the findings; print a one-line summary; exit 0 (bad input: a user error, exit 2)."""
    from flows.commands.scan import check_output
    from tasks.errors import UserError

    if args.batch_size < 1:
        raise UserError("--batch-size: must be >= 1.")
    if args.max_prefix_tokens < 0:
        raise UserError("--max-prefix-tokens: must be >= 0 (0 = no limit).")
    if not 0.0 < args.memorized_threshold <= 1.0:
        raise UserError("--memorized-threshold: must be in (0, 1], the fraction of target tokens reproduced.")
    findings = _read_findings(args.findings)
    check_output(args.out)
    apply_runtime(args)
    from revs_engine.probes import ProbeConfig
    from revs_engine.schema import PROBES_SCHEMA
    from tasks import _io, probing_io
    from tasks._models import load

    loaded = load(args.model)
    cfg = ProbeConfig(batch_size=args.batch_size, max_prefix_tokens=args.max_prefix_tokens or None,
                      memorized_threshold=args.memorized_threshold, progress=sys.stderr.isatty())
    table = probing_io.probe_findings(loaded.model, loaded.tokenizer, findings, cfg)
    _io.write_table(table, args.out, PROBES_SCHEMA)
    n_mem = sum(table.column("memorized").to_pylist())
    n_exact = sum(table.column("exact_match").to_pylist())
    _say(f"probed {table.num_rows} of {findings.num_rows} findings: {n_exact} reproduced exactly, "
          f"{n_mem} memorized -> {args.out}")
    return 0
