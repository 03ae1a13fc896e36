"""`revs unlearn`: erase probed findings from a model; save the new version (the product's erase, no flags needed).

Prints one line per target token — finding id, masked preview, rank before/after, converged — never raw values.
The output directory holds the edited model (``from_pretrained``-loadable) and its patch (``patch/``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.commands._runtime import add_runtime_args, apply_runtime

EXIT_NOT_CONVERGED = 3


def _say(line: str, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(line + "\n")


def register(subparsers) -> None:
    """Add the `unlearn` subcommand."""
    from revs_engine.presets import PRESETS

    parser = subparsers.add_parser(
        "unlearn", help="erase probed findings from a model (REVS, or the FT-L baseline)",
        description="Re-read each memorized finding from the corpus and erase it with the best measured "
        "configuration for the model's tokenizer (or --preset / the policy's [revs] table), guarded by the "
        "other memorized findings of the probes and by benign documents of the same corpus. Writes the edited "
        "model and its patch to --out atomically.")
    parser.add_argument("--model", required=True, help="model dir, .gguf file, hub id or alias (smollm2-135m)")
    parser.add_argument("--probes", required=True, type=Path, help="probes Parquet (from `revs probe`)")
    parser.add_argument("--findings", type=Path,
                        help="findings Parquet the probes were made from (default: findings.parquet next to "
                        "--probes)")
    parser.add_argument("--all-probed", action="store_true",
                        help="erase every probed finding, not only those probed as memorized")
    parser.add_argument("--entities", nargs="+", metavar="TYPE",
                        help="erase only findings of these entity types (the other memorized ones guard the edit)")
    parser.add_argument("--out", required=True, type=Path, help="directory for the edited model and its patch")
    parser.add_argument("--policy", type=Path, help="policy TOML whose [revs] table configures the erase")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="named configuration (default: the best measured one for the model's tokenizer)")
    parser.add_argument("--n-neurons", type=int, help="REVS: max neurons edited per layer per token")
    parser.add_argument("--max-tokens", type=int, help="target tokens per secret")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out directory")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    add_runtime_args(parser)
    parser.set_defaults(handler=run)


def _overrides(args) -> dict:
    from flows.policy import load_policy

    revs = dict(load_policy(args.policy).revs) if args.policy else {}
    if args.preset:
        revs["preset"] = args.preset
    if args.n_neurons is not None:
        revs["n_neurons"] = args.n_neurons
    if args.max_tokens is not None:
        revs["targets"] = {**(revs.get("targets") or {}), "max_tokens": args.max_tokens}
    return revs


def run(args: argparse.Namespace) -> int:
    """Run the edit; exit 0 when every target converged, 3 when some did not, 2 on bad input."""
    from tasks._workspace import workspace_dir
    from tasks.unlearning_io import run_unlearn

    apply_runtime(args)
    findings = args.findings or args.probes.parent / "findings.parquet"
    try:
        report = run_unlearn(args.model, args.probes, findings, args.out, cache_dir=workspace_dir("models"),
                             only_memorized=not args.all_probed, entities=args.entities,
                             overrides=_overrides(args), overwrite=args.overwrite,
                             progress=not args.no_progress and sys.stderr.isatty())
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as exc:  # ParamsError is a ValueError
        _say(f"revs unlearn: error: {exc}", err=True)
        return 2
    _say(f"preset {report.config['preset']} ({report.config['method']}"
         + (f", overrides: {', '.join(report.config['overrides'])}" if report.config["overrides"] else "") + ")")
    _say(f"{'finding_id':<20} {'preview':<16} {'pos':>3} {'rank before':>11} {'rank after':>10}  converged")
    for row in report.rows:
        _say(f"{row['finding_id'][:20]:<20} {row['masked_preview'][:16]:<16} {row['position']:>3} "
             f"{row['rank_before']:>11} {row['rank_after']:>10}  {'yes' if row['converged'] else 'NO'}")
    n = len(report.rows)
    _say(f"\n{report.converged}/{n} targets converged in {report.seconds:.1f} s; "
         f"weights {report.base_sha256[:12]} -> {report.edited_sha256[:12]}; saved to {report.out_dir}")
    return 0 if report.converged == n else EXIT_NOT_CONVERGED
