"""How much the audit's perplexity sample moves an edit's measured change: the demo's edits scored on their whole
audit half against the sample the audit reads.

For every audited run of the workspace (``REVS_HOME``) on a demo model (``make demo``: the sweep and the request;
``python -m benchmarks.demo_seeds``: each seed's sweep), the audit's benign texts are read as the audit reads them
(:func:`tasks.auditing.audit_benign`, which the audit task itself calls) but
without a limit, and each text's perplexity is measured on the run's model before and after the edit
(:func:`revs_engine.metrics.perplexity`, one text at a time). Reported: the change of the pooled perplexity on the
audit's own sample (:data:`~tasks.audit_io.MAX_BENIGN` texts, :data:`~tasks.audit_io.MAX_BENIGN_WORDS` words), on
the first 64 texts (the audit's sample until 2026-12-05), on every text, and over random 64-text draws.

``--bench-seeds`` adds the same question for revs_bench's own perplexity texts (40 prose paragraphs + 40
number-heavy sentences, :func:`benchmarks.benign_text.benign_texts`): the product default's erase of each seed's 20
SSNs (as revs_bench runs it), the change on all 80 texts, on each half, and a bootstrap of the 80.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
from pathlib import Path

import pyarrow.parquet as pq

from revs_engine.loading import load_model
from revs_engine.metrics import perplexity
from revs_engine.targets import encoder
from tasks.auditing import audit_benign

#: Texts per draw in the random-draw column: the size of the audit's sample until 2026-12-05.
OLD_SAMPLE = 64


def demo_corpus(home: Path, model_name: str) -> Path | None:
    """The corpus a demo model's runs read: ``make demo``'s, or a demo_seeds seed's (None for other models)."""
    if model_name.startswith("smollm2-135m-demo-"):
        return home / "demo" / "corpus"
    if model_name.startswith("demo-seed"):
        return home / "demo-seeds" / model_name.split("-")[1] / "corpus"
    return None


def audited_runs(home: Path) -> list[tuple[str, dict, Path, Path]]:
    """``(label, model record, run dir, corpus)`` of every audited run on a demo model, oldest first."""
    out = []
    for data in sorted((home / "runs").glob("*/report_data.json"), key=lambda p: p.stat().st_mtime):
        report = json.loads(data.read_text(encoding="utf-8"))
        model = report["model"]
        corpus = demo_corpus(home, model["name"])
        if corpus is None or not corpus.is_dir() or not (data.parent / "forget.parquet").is_file():
            continue
        out.append((f"{model['name']} v{model['base_version']}→v{model['new_version']} ({report['kind']})", model,
                    data.parent, corpus))
    return out


def per_text(model, texts: list[list[int]]) -> list[tuple[float, int]]:
    """``(summed NLL, predicted tokens)`` of each text on ``model`` (``(0, 0)`` for a text under two tokens)."""
    out = []
    for ids in texts:
        if len(ids) < 2:
            out.append((0.0, 0))
            continue
        r = perplexity(model, [ids])
        out.append((r.mean_nll * r.n_tokens, r.n_tokens))
    return out


def change(before: list[tuple[float, int]], after: list[tuple[float, int]], idx: list[int]) -> float:
    """Relative change (%) of the pooled perplexity over texts ``idx``."""
    n = sum(before[i][1] for i in idx)
    return 100 * (math.exp(sum(after[i][0] - before[i][0] for i in idx) / n) - 1)


def measure(home: Path, model: dict, run: Path, corpus: Path, draws: int, seed: int) -> dict:
    """One row: the run's edit scored on the audit's sample, the old sample, every text and random draws."""
    # what the flow's audit leaves out: the forgotten findings and the retained ones it audits (the inventory's
    # guard + held-out slices when the run split an inventory, else every retained finding)
    audited = run / "inventory_audit.parquet"
    forget = pq.read_table(run / "forget.parquet")
    retain = pq.read_table(audited if audited.is_file() else run / "retain.parquet")
    every = audit_benign([corpus], forget, retain, limit=None)
    sample = audit_benign([corpus], forget, retain)
    versions = home / "models" / model["name"]
    base, edited = (versions / f"v{model[k]}" for k in ("base_version", "new_version"))
    unedited = load_model(base, cache_dir=base)  # a directory: nothing to materialize
    encode = encoder(unedited.tokenizer)  # as the audit encodes
    ids = [encode(t) for t in every]
    keep = [i for i, s in enumerate(ids) if len(s) >= 2]
    before = per_text(unedited.model, ids)
    after = per_text(load_model(edited, cache_dir=edited).model, ids)
    rng = random.Random(seed)
    spread = sorted(change(before, after, rng.sample(keep, min(OLD_SAMPLE, len(keep)))) for _ in range(draws))
    pct = lambda q: spread[min(len(spread) - 1, int(q * len(spread)))]  # noqa: E731
    return {"texts": len(keep), "tokens": sum(before[i][1] for i in keep),
            "sample": change(before, after, [i for i in keep if i < len(sample)]), "sample_texts": len(sample),
            "first64": change(before, after, [i for i in keep if i < OLD_SAMPLE]),
            "all": change(before, after, keep),
            "p5": pct(0.05), "p50": pct(0.5), "p95": pct(0.95)}


def bench_row(lm, rows, seed: int, draws: int) -> dict:
    """revs_bench's product default on ``seed`` (20 SSNs forgotten), scored per text on its 80 perplexity texts."""
    from benchmarks import benign_text, revs_bench
    from revs_engine.arch import resolve_arch
    from revs_engine.edit import restore
    from revs_engine.erase import erase, guard_stats_for
    from revs_engine.lens import VocabLens

    model, arch = lm.model, resolve_arch(lm.model)
    data = revs_bench.prepare(lm.tokenizer, rows, seed, 20)
    texts = [data.erase.encode(t) for t in benign_text.benign_texts()]
    prose = len(benign_text.prose_paragraphs())
    before = per_text(model, texts)
    _, cfg = revs_bench.variant("default", data.erase.encode)  # guard statistics as revs_bench computes them
    stats = guard_stats_for(model, arch, data.erase, cfg, complete=True) if cfg.uses_guard else None
    result = erase(model, arch, data.erase, cfg, lens=VocabLens(model, arch), guard_stats=stats)
    after = per_text(model, texts)
    restore(model, arch, result.backup)
    every = list(range(len(texts)))
    rng = random.Random(seed)
    boot = sorted(change(before, after, [rng.choice(every) for _ in every]) for _ in range(draws))
    return {"tokens": sum(n for _, n in before), "all": change(before, after, every),
            "prose": change(before, after, every[:prose]), "numeric": change(before, after, every[prose:]),
            "p5": boot[int(0.05 * draws)], "p95": boot[int(0.95 * draws)]}


def bench_markdown(rows: list[tuple[int, dict]], draws: int) -> str:
    lines = ["| revs_bench seed (product default, 20 SSNs) | tokens | all 80 texts | 40 prose | 40 number-heavy | "
             f"bootstrap of the 80 ({draws}): p5 / p95 |", "|---|---|---|---|---|---|"]
    for seed, r in rows:
        lines.append(f"| {seed} | {r['tokens']:,} | {r['all']:+.2f} % | {r['prose']:+.2f} % | "
                     f"{r['numeric']:+.2f} % | {r['p5']:+.2f} / {r['p95']:+.2f} % |")
    return "\n".join(lines) + "\n"


def markdown(rows: list[tuple[str, dict]], draws: int) -> str:
    lines = [f"| edit | texts in the audit half (tokens) | the audit's sample | first {OLD_SAMPLE} | all | "
             f"{draws} random draws of {OLD_SAMPLE}: "
             "p5 / p50 / p95 |", "|---|---|---|---|---|---|"]
    for label, r in rows:
        lines.append(f"| {label} | {r['texts']} ({r['tokens']:,}) | {r['sample']:+.2f} % "
                     f"({r['sample_texts']} texts) | {r['first64']:+.2f} % | {r['all']:+.2f} % | "
                     f"{r['p5']:+.2f} / {r['p50']:+.2f} / {r['p95']:+.2f} % |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="the first audited run only")
    parser.add_argument("--bench-seeds", type=int, nargs="*", default=[],
                        help="also revs_bench's perplexity texts on these SSN seeds")
    args = parser.parse_args(argv)
    extra = ""
    if args.bench_seeds:
        from benchmarks.ssn_model import memorized_model

        lm, ssn_rows, _ = memorized_model(progress=False)
        found = [(seed, bench_row(lm, ssn_rows, seed, args.draws)) for seed in args.bench_seeds]
        extra = "\n" + bench_markdown(found, args.draws)
    home = Path(os.environ.get("REVS_HOME", ".revs")).resolve()  # the workspace, as the product resolves it
    runs = audited_runs(home)[:1 if args.quick else None]
    if not runs:
        return f"No audited demo run in {home}: run `make demo` or benchmarks.demo_seeds first.\n{extra}"
    rows = []
    for label, model, run, corpus in runs:
        rows.append((label, measure(home, model, run, corpus, args.draws, args.seed)))
        print(label, json.dumps(rows[-1][1]), flush=True)
    return markdown(rows, args.draws) + extra


if __name__ == "__main__":
    print(main())
