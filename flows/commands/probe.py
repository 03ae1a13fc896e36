"""`revs probe`: which findings does a model reproduce verbatim? Writes the probes table (DESIGN §2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Probe the findings; print a one-line summary; exit 0."""
    from pii_detect.schema import FINDINGS_SCHEMA
    from revs_engine.loading import load_model
    from revs_engine.probes import ProbeConfig
    from revs_engine.schema import PROBES_SCHEMA
    from tasks import _io, probing_io
    from tasks._workspace import workspace_dir

    findings = _io.read_table(args.findings, FINDINGS_SCHEMA)
    loaded = load_model(args.model, cache_dir=workspace_dir("cache"))
    cfg = ProbeConfig(batch_size=args.batch_size, max_prefix_tokens=args.max_prefix_tokens or None,
                      memorized_threshold=args.memorized_threshold, progress=sys.stderr.isatty())
    table = probing_io.probe_findings(loaded.model, loaded.tokenizer, findings, cfg)
    _io.write_table(table, args.out, PROBES_SCHEMA)
    n_mem = sum(table.column("memorized").to_pylist())
    n_exact = sum(table.column("exact_match").to_pylist())
    _say(f"probed {table.num_rows} of {findings.num_rows} findings: {n_exact} reproduced exactly, "
          f"{n_mem} memorized -> {args.out}")
    return 0
