"""The demo sweep's erase under several ``[revs]`` tables, side by side, scored the way its audit scores it.

A finished ``revs sweep`` (``make demo``) leaves its inputs in its run directory: the findings, the probes of the
findings it erased (``forget_probes.parquet``), the findings it erased (``forget.parquet``) and its guard. For each
``[revs]`` table this re-runs the product's edit step on them (:func:`tasks.unlearning_io.run_unlearn`, the same
call the flow makes, benign guard text from the corpus's guard half) and scores the edited model with the audit's
own pieces: Efficacy@100 per erased record at the final layer on the positions the edit targeted
(:func:`tasks.audit_io.audit_inputs`, :func:`revs_engine.metrics.efficacy_from_ranks`), greedy extraction from
the records' prompts (:func:`revs_engine.audit.reproduced`) and perplexity on the corpus's audit half. It skips
what the full audit adds (Specificity, sampled and perturbed extraction, format-aware attacks): a triage of
configurations in minutes; ``make demo`` gives the verdict.

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
from revs_engine.arch import resolve_arch
from revs_engine.attacks.logit_lens import capture_targets, stream_ranks
from revs_engine.audit import reproduced
from revs_engine.lens import VocabLens
from revs_engine.loading import load_model
from revs_engine.metrics import efficacy_from_ranks, perplexity
from tasks import unlearning
from tasks.audit_io import AUDIT_HALF, audit_inputs, benign_texts, edited_positions
from tasks.probing_io import encoder

logger = logging.getLogger(__name__)


def _home() -> Path:
    """The workspace (``REVS_HOME``, default ``./.revs``), as the product resolves it."""
    return Path(os.environ.get("REVS_HOME", ".revs")).resolve()

#: The tables compared by default: the shipped preset, and the demo policy's table (tasks/demo.py).
TABLES = {"default (digits)": {}, "digits + relative_demotion (demo policy)": {"relative_demotion": True}}


def score(model_dir: str, forget, positions, benign: list[str], k: int = 100) -> dict:
    """Per erased record: Efficacy@k (final layer) and greedy extraction; perplexity on ``benign``."""
    lm = load_model(model_dir, cache_dir=_home() / "cache")
    model, tok = lm.model, lm.tokenizer
    arch = resolve_arch(model)
    inputs = audit_inputs(tok, forget, positions=positions, with_formats=False)
    acts = capture_targets(model, arch, list(inputs.forget), batch_size=16)
    eff = efficacy_from_ranks(stream_ranks(acts, VocabLens(model, arch)), acts.secret_index, arch.vocab_size, k)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    extracted = reproduced(model, list(inputs.forget_items), pad_id=pad)
    ppl = perplexity(model, benign, encode=encoder(tok), pad_id=pad).perplexity
    return {"ids": list(inputs.forget_ids), "efficacy": list(eff.per_secret), "extracted": extracted, "ppl": ppl}


def run(run_dir: Path, model: str, corpus: list[Path], tables: dict[str, dict]) -> list[dict]:
    """Erase the run's selection once per table from ``model`` and score each edit (module docstring)."""
    findings = pq.read_table(run_dir / "findings.parquet", schema=FINDINGS_SCHEMA)
    forget = pq.read_table(run_dir / "forget.parquet", schema=FINDINGS_SCHEMA)
    preview = dict(zip(forget.column("finding_id").to_pylist(), forget.column("masked_preview").to_pylist(),
                       strict=True))
    guard = run_dir / "guard.parquet"
    audit_text = benign_texts(corpus, [findings], half=AUDIT_HALF)
    base = score(model, forget, {}, audit_text)
    rows = []
    with tempfile.TemporaryDirectory(prefix="demo-erase-") as tmp:
        for name, table in tables.items():
            out = Path(tmp) / "edited"
            t0 = time.perf_counter()
            # the product's edit step, as the sweep calls it (guard texts from the corpus's guard half)
            rep = unlearning.unlearn.fn(Path(model), run_dir / "forget_probes.parquet",
                                        run_dir / "findings.parquet", out, table,
                                        guard if guard.is_file() else None, corpus)
            seconds = time.perf_counter() - t0
            after = score(str(out), forget, edited_positions(out), audit_text)
            per_value = defaultdict(list)
            for fid, e in zip(after["ids"], after["efficacy"], strict=True):
                per_value[preview[fid]].append(e)
            failing = {v: min(es) for v, es in per_value.items() if min(es) < 95}
            rows.append({"table": name, "revs": table, "targets": rep.targets, "converged": rep.converged,
                         "erase_s": round(seconds, 1), "records": len(after["ids"]),
                         "records_below_95": sum(e < 95 for e in after["efficacy"]),
                         "failing_values": {v: round(e, 1) for v, e in failing.items()},
                         "extracted_before": sum(base["extracted"]), "extracted_after": sum(after["extracted"]),
                         "ppl_delta_pct": round(100 * (after["ppl"] / base["ppl"] - 1), 2)})
            shutil.rmtree(out, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished sweep's run directory")
    parser.add_argument("--model", default=None, help="the swept model (default: the demo's cached model)")
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
