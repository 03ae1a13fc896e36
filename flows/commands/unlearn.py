"""`revs unlearn`: erase probed findings from a model with REVS (or the FT-L baseline); save the new version.

Prints one line per target token — finding id, masked preview, rank before/after, converged — never raw values.
The output directory holds the edited model (``from_pretrained``-loadable) and its patch (``patch/``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_NOT_CONVERGED = 3


def _say(line: str, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def register(subparsers) -> None:
    """Add the `unlearn` subcommand."""
    parser = subparsers.add_parser("unlearn", help="erase probed findings from a model (REVS or FT-L)",
                                   description="Re-read each probed finding from the corpus, select its rarest "
                                   "tokens and demote them with REVS. Writes the edited model and its patch to "
                                   "--out atomically.")
    parser.add_argument("--model", required=True, help="model dir, .gguf file, hub id or alias (smollm2-135m)")
    parser.add_argument("--probes", required=True, type=Path, help="probes Parquet (from `revs probe`)")
    parser.add_argument("--findings", type=Path,
                        help="findings Parquet the probes were made from (default: findings.parquet next to "
                        "--probes)")
    parser.add_argument("--only-memorized", action="store_true", help="erase only findings probed as memorized")
    parser.add_argument("--out", required=True, type=Path, help="directory for the edited model and its patch")
    parser.add_argument("--method", choices=("revs", "ftl"), default="revs", help="editing method (default revs)")
    parser.add_argument("--n-neurons", type=int, help="REVS: max neurons edited per layer per token")
    parser.add_argument("--max-tokens", type=int, help="REVS/FT-L: target tokens per secret (default 2, rarest)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    parser.set_defaults(handler=run)


def _config(args):
    import dataclasses

    from revs_engine.config import RevsConfig

    cfg = RevsConfig()
    if args.max_tokens is not None:
        cfg = dataclasses.replace(cfg, targets=dataclasses.replace(cfg.targets, max_tokens=args.max_tokens))
    if args.n_neurons is not None:
        cfg = dataclasses.replace(cfg, n_neurons=args.n_neurons, act_top_k=max(cfg.act_top_k, args.n_neurons))
    return cfg


def run(args: argparse.Namespace) -> int:
    """Run the edit; exit 0 when every target converged, 3 when some did not, 2 on bad input."""
    from tasks._workspace import workspace_dir
    from tasks.unlearning_io import run_unlearn

    findings = args.findings or args.probes.parent / "findings.parquet"
    try:
        report = run_unlearn(args.model, args.probes, findings, args.out, cache_dir=workspace_dir("models"),
                             only_memorized=args.only_memorized, method=args.method, revs_cfg=_config(args),
                             progress=not args.no_progress and sys.stderr.isatty(), overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as exc:
        _say(f"revs unlearn: error: {exc}", err=True)
        return 2
    _say(f"{'finding_id':<20} {'preview':<16} {'pos':>3} {'rank before':>11} {'rank after':>10}  converged")
    for row in report.rows:
        _say(f"{row['finding_id'][:20]:<20} {row['masked_preview'][:16]:<16} {row['position']:>3} "
             f"{row['rank_before']:>11} {row['rank_after']:>10}  {'yes' if row['converged'] else 'NO'}")
    n = len(report.rows)
    _say(f"\n{report.converged}/{n} targets converged in {report.seconds:.1f} s; "
         f"weights {report.base_sha256[:12]} -> {report.edited_sha256[:12]}; saved to {report.out_dir}")
    return 0 if report.converged == n else EXIT_NOT_CONVERGED
