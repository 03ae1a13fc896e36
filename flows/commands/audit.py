"""`revs audit`: every unlearning metric and extraction attack of a model (and its reference), as a table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.commands._runtime import add_runtime_args, apply_runtime


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def register(subparsers) -> None:
    """Add the `audit` subcommand."""
    parser = subparsers.add_parser(
        "audit", help="score unlearning: efficacy, generality, specificity, perplexity and attacks",
        description="Audit a model on forgotten findings (--forget) and retained findings (--retain): "
        "Efficacy@k, Generality@k, Specificity, perplexity, Logit-Lens / Delta / Perturbation attacks, greedy "
        "and sampled extraction, Unlearning and Resistance Scores. With --reference, the reference is audited "
        "as stage 'before' and --model as 'after'.")
    parser.add_argument("--model", required=True, help="the (edited) model")
    parser.add_argument("--reference", help="the model before the edit")
    parser.add_argument("--forget", required=True, type=Path, help="findings Parquet of the forgotten values")
    parser.add_argument("--retain", required=True, type=Path, help="findings Parquet of retained values")
    parser.add_argument("--generality", type=Path, help="findings of the forgotten values in other contexts")
    parser.add_argument("--benign", type=Path, help="text file of held-out benign text (one text per line)")
    parser.add_argument("--out", required=True, type=Path, help="audit Parquet to write")
    parser.add_argument("--k", type=int, nargs="+", default=[100], help="candidate-set sizes (default 100)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="perturbation and sampling seed")
    parser.add_argument("--samples", type=int, default=10,
                        help="sampled continuations per erased value's prompt (0: no sampled extraction)")
    add_runtime_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the audit(s), write the table, print every metric with its k; exit 0."""
    import pyarrow as pa

    from pii_detect.schema import FINDINGS_SCHEMA
    from revs_engine.audit import AuditConfig
    from revs_engine.audit_table import ALL_TARGETS
    from revs_engine.schema import AUDIT_SCHEMA
    from tasks import _io
    from tasks._workspace import workspace_dir
    from tasks.audit_io import run_audit

    apply_runtime(args)
    forget = _io.read_table(args.forget, FINDINGS_SCHEMA)
    retain = _io.read_table(args.retain, FINDINGS_SCHEMA)
    generality = _io.read_table(args.generality, FINDINGS_SCHEMA) if args.generality else None
    benign = [ln for ln in args.benign.read_text(encoding="utf-8").splitlines() if ln.strip()] \
        if args.benign else []
    cfg = AuditConfig(ks=tuple(args.k), batch_size=args.batch_size, perturb_seed=args.seed,
                      n_samples=args.samples, sample_seed=args.seed)
    try:
        reports = run_audit(args.model, args.reference, forget, retain, generality, benign, cfg,
                            cache_dir=workspace_dir("cache"))
    except ValueError as exc:
        sys.stderr.write(f"revs audit: error: {exc}\n")
        return 2
    table = pa.concat_tables([r.table() for r in reports])
    _io.write_table(table, args.out, AUDIT_SCHEMA)
    summaries = {r.stage: r.summary() for r in reports}
    keys = [key for key in dict.fromkeys(key for r in reports for key in r.summary()) if key[0] != "layer_rank"]
    _say(f"{'metric':<30}{'k':>6}" + "".join(f"{s:>12}" for s in summaries))
    for metric, k in keys:
        cells = "".join(f"{summaries[s].get((metric, k), float('nan')):>12.2f}" for s in summaries)
        _say(f"{metric:<30}{'-' if k is None else k:>6}" + cells)
    n_targets = len({r.target_id for r in reports[-1].rows if r.target_id != ALL_TARGETS})
    _say(f"{n_targets} targets audited -> {args.out}")
    return 0
