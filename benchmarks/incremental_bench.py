"""Incremental scheduled sweeps: the nightly sweep of a corpus that grew by 1 % against a full sweep of it.

Each sweep is one `revs sweep` command with the default policy on the embedded SmolLM2, in its own process, as a
scheduler runs it. In workspace A: a first sweep of the corpus; then, after 1 % more documents are appended to its
JSONL file, the second, incremental sweep. In workspace B (sharing A's HMAC key; the model registered there by an
untimed sweep of one unrelated document): the full sweep of the grown corpus, the baseline. Reported: the flow's
time and the whole command's, with ratios; documents analysed and findings probed (from the workspace's scan
index and the sweeps' run directories); and whether the incremental sweep's findings and memorization inventory
equal the full sweep's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from benchmarks._corpus_gen import generate, write_jsonl
from benchmarks.ssn_model import _cache_root

MODEL_NAME = "incremental-bench"
RUN_ID = re.compile(r"sweep: run (\S+);")
NEW_VERSION = re.compile(r"new version v(\d+)")
INVENTORY_COLUMNS = ["finding_id", "value_hmac", "status", "exact_match", "extraction_score"]


def _texts(home: Path, latest: bool = False) -> set[str]:
    """Return the document sha256s of the workspace's scan indexes (every distinct text their last scans read);
    ``latest``: of the index written last only (the corpus just swept)."""
    indexes = sorted((home / "scan-index").glob("*.parquet"), key=lambda p: p.stat().st_mtime)
    return {sha for index in (indexes[-1:] if latest else indexes)
            for sha in pa.parquet.read_table(index, columns=["doc_sha256"]).column(0).to_pylist()}


def _sweep(home: Path, corpus: Path, model: str) -> dict:
    """Run `revs sweep` (default policy) in a fresh process; return its wall time, counts and run directory."""
    env = {**os.environ, "REVS_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    cmd = [sys.executable, "-m", "flows.cli", "sweep", "--corpus", str(corpus), "--model", model,
           "--name", MODEL_NAME]
    known = _texts(home)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"revs sweep exited {proc.returncode}:\n{out[-4000:]}")
    run_id = RUN_ID.search(out).group(1)
    run = home / "runs" / run_id
    texts = _texts(home, latest=True)
    version = NEW_VERSION.search(out)
    return {"seconds": seconds, "flow_s": _flow_seconds(home, run_id), "texts": len(texts),
            "version": f"v{version.group(1)}" if version else "–",
            "analysed": len(texts - known),
            "findings": pa.parquet.read_table(run / "findings.parquet").num_rows,
            "probed": pa.parquet.read_table(run / "unjudged.parquet").num_rows, "run": run}


def _flow_seconds(home: Path, run_id: str) -> float:
    """Return the sweep's own time: its MLflow run, opened first thing in the flow and closed after the report
    (Python start-up, imports, the temporary Prefect server and the flow's start are outside it)."""
    from mlflow.tracking import MlflowClient

    info = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}").get_run(run_id).info
    return (info.end_time - info.start_time) / 1000


def _findings(run: Path) -> pa.Table:
    table = pa.parquet.read_table(run / "findings.parquet")
    return table.sort_by([(c, "ascending") for c in ("source", "doc_key", "start", "entity_type")])


def _inventory(home: Path) -> pa.Table:
    versions = sorted((home / "inventory" / MODEL_NAME).glob("v*.parquet"))
    table = pa.parquet.read_table(versions[-1]).select(INVENTORY_COLUMNS)
    return table.sort_by("finding_id")


def _differences(a: pa.Table, b: pa.Table) -> str:
    """Return ``yes`` when the tables are equal, else what differs (row counts, or columns and how many rows)."""
    if a.equals(b):
        return "yes"
    if a.num_rows != b.num_rows:
        return f"NO ({a.num_rows} vs {b.num_rows} rows)"
    cols = [f"{c}: {sum(x != y for x, y in zip(a.column(c).to_pylist(), b.column(c).to_pylist(), strict=True))}"
            for c in a.column_names if not a.column(c).equals(b.column(c))]
    return f"NO (rows differing per column: {', '.join(cols)})"


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark; return a markdown section."""
    import pyarrow.compute
    import pyarrow.parquet  # noqa: F401 - pa.parquet, pa.compute below

    parser = argparse.ArgumentParser(prog="python -m benchmarks.incremental_bench")
    parser.add_argument("--quick", action="store_true", help="300 documents (smoke run)")
    parser.add_argument("--docs", type=int, default=3000, help="documents before the corpus grows")
    parser.add_argument("--grow-pct", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, help="keep the corpus and workspaces here (default: a temp dir)")
    args = parser.parse_args(argv)
    n_docs = 300 if args.quick else args.docs
    n_new = max(1, round(n_docs * args.grow_pct / 100))
    from revs_engine.loading import load_model

    model = load_model("smollm2-135m", cache_dir=_cache_root()).path  # materialized once, shared by the sweeps
    with tempfile.TemporaryDirectory(prefix="incremental-bench-") as tmp:
        root = args.workdir or Path(tmp)
        corpus = root / "corpus"
        corpus.mkdir()
        texts, _ = generate(n_docs + n_new, seed=0)
        write_jsonl(texts[:n_docs], corpus / "records.jsonl")
        first = _sweep(root / "A", corpus, str(model))
        write_jsonl(texts, corpus / "records.jsonl")  # the same file, 1 % more lines appended
        second = _sweep(root / "A", corpus, str(model))
        shutil.copytree(root / "A" / "keys", root / "B" / "keys")  # the same HMAC key: comparable value HMACs
        other = root / "registration"
        other.mkdir()
        write_jsonl(generate(1, seed=1)[0], other / "one.jsonl")
        _sweep(root / "B", other, str(model))  # untimed: registers the model, as in A before its second sweep
        full = _sweep(root / "B", corpus, str(model))
        same_findings = _differences(_findings(second["run"]), _findings(full["run"]))
        ids = pa.parquet.read_table(full["run"] / "findings.parquet").column("finding_id")
        b_inventory = _inventory(root / "B")
        b_inventory = b_inventory.filter(pa.compute.is_in(b_inventory.column("finding_id"), value_set=ids))
        a_inventory = _inventory(root / "A")
        same_inventory = _differences(a_inventory, b_inventory)
        erased = [sum(status == "erased" for status in t.column("status").to_pylist())
                  for t in (a_inventory, b_inventory)]
    rows = [("first sweep (corpus)", first), ("second sweep, incremental (corpus + 1 %)", second),
            ("full sweep of corpus + 1 % (baseline: no scan index, no inventory for it)", full)]
    lines = [f"{n_docs:,} generated documents (all entity types, `tune` layouts) in one JSONL file, then {n_new} "
             f"more appended ({args.grow_pct:g} %). `revs sweep` with the default policy on the embedded "
             "SmolLM2-135M, one process per sweep (Python start, Prefect, model load and report included). "
             "Analysed = distinct document texts the previous scan had not read (what the scanner ran on); "
             "probed = findings probed on the model.", "",
             "| sweep | distinct texts | analysed | findings | probed | new version | flow s | command s |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    lines += [f"| {name} | {r['texts']:,} | {r['analysed']:,} | {r['findings']:,} | {r['probed']:,} | "
              f"{r['version']} | {r['flow_s']:.1f} | {r['seconds']:.1f} |" for name, r in rows]
    flow, command = full["flow_s"] / second["flow_s"], full["seconds"] / second["seconds"]
    lines += ["", f"Incremental vs full sweep of the same grown corpus: **{flow:.1f}×** faster in the flow "
              f"({second['flow_s']:.1f} vs {full['flow_s']:.1f} s; vs the first sweep "
              f"{first['flow_s'] / second['flow_s']:.1f}×), {command:.1f}× for the whole command "
              f"({second['seconds']:.1f} vs {full['seconds']:.1f} s). Findings identical to the full sweep's: "
              f"**{same_findings}**; memorization inventory (finding, value HMAC, status, exact match, extraction "
              f"score) identical: **{same_inventory}** (rows with status `erased`: {erased[0]} incremental, "
              f"{erased[1]} full).",
              "", "Flow s = the sweep's MLflow run, first step to report; command s adds what every process pays "
              "(Python and library imports, the temporary Prefect server, flow start-up)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(main())
