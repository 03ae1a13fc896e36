"""The demo's erase (its sweep or its deletion request) under several ``[revs]`` tables, side by side, scored by
the product's audit.

A finished ``revs sweep`` or deletion request (``make demo``) leaves its inputs in its run directory: the
findings, the probes of the findings it erased (``forget_probes.parquet``), the findings it erased
(``forget.parquet``) and kept (``retain.parquet``) and its guard — or, when the run split a memorization inventory
(a deletion request), the inventory's guard part and the audit's retained set (``inventory_guard.parquet``,
``inventory_audit.parquet``), which this then reads as the flow did. For each ``[revs]`` table this re-runs the
product's edit step on them (:func:`tasks.unlearning.unlearn`, as the sweep calls it: guard texts from the
corpus) and audits the edit with the product's audit step (:func:`tasks.auditing.audit_model`, as the sweep
calls it: erased targets at the edited positions, Specificity on the kept findings, perplexity on the corpus's
audit half), read back with :func:`revs_engine.audit_table.verdict_metrics`. Sampled extraction and the
format-aware attacks are left out (:data:`TRIAGE`): a triage of configurations; ``make demo`` gives the verdict.

Rows are grouped by masked value (never the value); the demo's policy passes at Efficacy ≥ 95 on every record,
0 extractions and perplexity ≤ +2 %.

``python -m benchmarks.demo_erase --run REVS_HOME/runs/<run id> [--table NAME=JSON ...]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.audit_table import verdict_metrics
from tasks import auditing, unlearning
from tasks.verdict import AuditThresholds

logger = logging.getLogger(__name__)

K = 100
#: The audit's settings here: the product's defaults without sampled extraction and format-aware attacks.
TRIAGE = AuditThresholds(sampled_n=0, format_candidates=0).settings()


def _home() -> Path:
    """The workspace (``REVS_HOME``, default ``./.revs``), as the product resolves it."""
    return Path(os.environ.get("REVS_HOME", ".revs")).resolve()

#: The tables compared by default: the shipped preset, and the demo policy's table (tasks/demo.py).
TABLES = {"default (digits)": {}, "digits + relative_demotion (demo policy)": {"relative_demotion": True}}


def _extracted_before(table) -> int:
    return sum(1 for r in table.to_pylist() if r["stage"] == "before" and r["metric"] == "greedy_extraction"
               and r["target_id"] != "*" and r["score"] > 0)


def run(run_dir: Path, model: str, corpus: list[Path], tables: dict[str, dict]) -> list[dict]:
    """Erase the run's selection once per table from ``model`` and audit each edit (module docstring)."""
    forget = pq.read_table(run_dir / "forget.parquet", schema=FINDINGS_SCHEMA)
    preview = dict(zip(forget.column("finding_id").to_pylist(), forget.column("masked_preview").to_pylist(),
                       strict=True))
    # what the run's flow read: a run that split an inventory guarded with its guard part and audited Specificity
    # on guard + held-out slice (a deletion request); otherwise the run's own guard and retained findings
    guard = _first(run_dir, "inventory_guard.parquet", "guard.parquet")
    retain = _first(run_dir, "inventory_audit.parquet", "retain.parquet")
    rows = []
    with tempfile.TemporaryDirectory(prefix="demo-erase-") as tmp:
        for name, table in tables.items():
            out = Path(tmp) / "edited"
            t0 = time.perf_counter()
            # the product's edit and audit steps, as the sweep calls them
            rep = unlearning.unlearn.fn(Path(model), run_dir / "forget_probes.parquet",
                                        run_dir / "findings.parquet", out, table, guard, corpus)
            seconds = time.perf_counter() - t0
            audit = pq.read_table(auditing.audit_model.fn(
                Path(model), out, run_dir / "forget.parquet", retain, corpus,
                Path(tmp) / "audit.parquet", [K], TRIAGE, guard))
            m = verdict_metrics(audit, K)
            per_value = defaultdict(list)
            for fid, e in m["efficacy"].items():
                per_value[preview[fid]].append(e)
            failing = {v: min(es) for v, es in per_value.items() if min(es) < 95}
            rows.append({"table": name, "revs": table, "targets": rep.targets, "converged": rep.converged,
                         "erase_s": round(seconds, 1), "audit_s": round(time.perf_counter() - t0 - seconds, 1),
                         "records": len(m["efficacy"]),
                         "records_below_95": sum(e < 95 for e in m["efficacy"].values()),
                         "failing_values": {v: round(e, 1) for v, e in failing.items()},
                         "extracted_before": _extracted_before(audit),
                         "extracted_after": m["exact_extractions"]["plain"],
                         "extracted_perturbed_after": m["exact_extractions"]["perturbed"],
                         "specificity": m["specificity"], "specificity_unseen": m["specificity_unseen"],
                         "ppl_delta_pct": round(100 * (m["perplexity_after"] / m["perplexity_before"] - 1), 2)})
            shutil.rmtree(out, ignore_errors=True)
    return rows


def _first(run_dir: Path, *names: str) -> Path | None:
    """The first of ``names`` the run directory holds (None when it holds none)."""
    return next((run_dir / n for n in names if (run_dir / n).is_file()), None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True,
                        help="a finished sweep's or deletion request's run directory")
    parser.add_argument("--model", default=None, help="the model the run started from (default: the demo's cached "
                        "model; a request's is the version it edited)")
    parser.add_argument("--corpus", type=Path, nargs="+", default=None, help="default: REVS_HOME/demo/corpus")
    parser.add_argument("--table", action="append", default=[], metavar="NAME=JSON",
                        help="a [revs] table to compare (default: the shipped preset and the demo policy's table)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    corpus = args.corpus or [_home() / "demo" / "corpus"]
    model = args.model or str(max((_home() / "cache" / "demo").glob("smollm2-demo-*")))
    tables = dict(t.split("=", 1) for t in args.table)
    tables = {k: json.loads(v) for k, v in tables.items()} or TABLES
    for row in run(args.run, model, corpus, tables):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
