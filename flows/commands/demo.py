"""`revs demo`: the main job on the embedded SmolLM2 — sweep, deletion request, reports — and its summary.

Inputs are generated under ``REVS_HOME/demo`` (corpus, training subset, request, policies); models, runs, MLflow
and reports live in the workspace as for any run. A second run reuses the cached model, finds nothing new to
erase and answers the (already reported) request at once.
"""

from __future__ import annotations

import argparse
import sys

from flows.commands._runtime import add_runtime_args, apply_runtime
from flows.commands.sweep import EXIT_AUDIT_FAILED

#: (summary key, label) of the before → after scores shown per run.
SCORES = (("efficacy@100", "Efficacy@100"), ("logit_lens@100", "Logit-Lens@100"), ("delta@100", "Delta@100"),
          ("perturb@100", "Perturbation@100"), ("greedy_extraction", "greedy extraction %"),
          ("specificity", "Specificity"), ("perplexity", "perplexity"))


def _echo(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def register(subparsers) -> None:
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser("demo", help="run the whole pipeline on the embedded SmolLM2 and summarize",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=None,
                        help="registered model name (default smollm2-135m-demo-<cache key of the demo model>)")
    add_runtime_args(parser)
    parser.set_defaults(handler=run)


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def print_summary(s: dict, root) -> None:
    """Print the demo summary (counts, masked previews, scores, versions, paths)."""
    _echo("\n=== REVS Compliance demo: summary ===")
    _echo(f"corpus: {s['documents']} documents for {s['people']} synthetic people in {root / 'corpus'}")
    _echo(f"model: SmolLM2-135M fine-tuned on the most repeated records; reproduces "
          f"{100 * s['memorized_fraction']:.0f}% of their PII{' (cached)' if s['model_cached'] else ''}")
    for kind, title in (("sweep", "compliance sweep"), ("request", "deletion request DEMO-REQ-0001")):
        r = s["runs"][kind]
        found = ", ".join(f"{k} {v}" for k, v in sorted(r["found"].items())) or "nothing"
        _echo(f"\n{title} (run {r['run_id']}):")
        _echo(f"  found: {found}")
        erased = ", ".join(f"{t} {p}" for t, p in r["erased"]) or "nothing (no memorized item left)"
        _echo(f"  memorized and erased: {len(r['erased'])} — {erased}")
        for key, label in SCORES:
            if key in r["before"] or key in r["after"]:
                _echo(f"  {label:<22} {_fmt(r['before'].get(key)):>8} -> {_fmt(r['after'].get(key))}")
        verdict = "passed" if r["passed"] else "FAILED"
        _echo(f"  audit {verdict}; " + (f"new version v{r['version']}" if r["version"] else "no new version"))
        _echo(f"  report: {r['html']}")
    _echo("\nversions: " + "; ".join(f"v{v['version']} (parent {v.get('parent') or '-'}, audit "
                                       f"{v.get('audit') or 'base'})" for v in s["lineage"]))
    versions = s.get("versions") or {}
    if versions:
        _echo(f"production: v{versions.get('production')}; still holding erased data: "
              f"{versions.get('still_containing_erased_data') or 'none'} (revs retire removes them)")
    _echo("MLflow UI: revs ui   (then open http://127.0.0.1:5000)")


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 when both audits passed, 3 when one failed."""
    from tasks._workspace import configure_prefect, workspace_dir

    configure_prefect()
    apply_runtime(args)  # the demo's flows run in this process and load their models with it
    from flows.demo import run_demo  # Prefect, torch: imported after the workspace is set
    from flows.steps import AuditFailedError

    root = workspace_dir("demo")
    try:
        summary = run_demo(root, args.name)
    except AuditFailedError as exc:
        sys.stderr.write(f"revs demo: {exc}\n")
        return EXIT_AUDIT_FAILED
    print_summary(summary, root)
    failed = [kind for kind, r in summary["runs"].items() if not r["passed"]]
    if failed:
        sys.stderr.write(f"revs demo: the audit of the {' and the '.join(failed)} failed (reports above)\n")
        return EXIT_AUDIT_FAILED
    return 0
