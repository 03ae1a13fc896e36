"""Audit speed: the product's audit against the same audit without its shortcuts, on the same models.

The REVS benchmark's seed-0 split (:mod:`benchmarks.revs_bench`): the memorized SmolLM2 before and after the
default erase of its 20 forgotten SSNs. Each state is audited twice with :func:`revs_engine.audit.audit` — once
as the product runs it (``AuditConfig.fast``: greedy continuations resume from the teacher-forced pass's cache,
samples read that pass while they follow their value, every continuation stops once its verdict is settled, the
rank attacks' streams are captured in that pass, perplexity batches by length and unembeds only real positions)
and once without (``fast=False``: every continuation generated from its prompt with ``generate`` to its full
window, separate capture passes, every sample prefilled alone, texts in input order with the model's full logits
— the audit these replace). The retained items are those of the split the unedited model reproduces, as the
product's audit chooses them (:func:`tasks.audit_io.retained`). The two tables are compared with
:func:`revs_engine.audit_table.same_verdicts`: the same rows and pass/fail flags, scores equal up to float rounding
(relative 1e-6; perplexity sums in another order), the rank plot's rows up to one rank place. Format-aware
attacks and the rank attacks' never-seen controls are off in both (their cost is the same on both sides and is
reported by ``revs_bench``).

A second table times Specificity alone both ways (the part of the audit issue #21 measured first) and checks its
per-item results agree.

``python -m benchmarks.audit_bench [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time

from benchmarks.revs_bench import audit_inputs_for, prepare
from benchmarks.ssn_model import memorized_model
from revs_engine.arch import resolve_arch
from revs_engine.audit import AuditConfig, AuditInputs, audit, reproduced
from revs_engine.audit_formats import FormatAuditConfig
from revs_engine.audit_table import same_verdicts
from revs_engine.edit import restore
from revs_engine.erase import erase
from revs_engine.lens import VocabLens
from revs_engine.metrics import specificity
from revs_engine.presets import PRESETS, default_preset

logger = logging.getLogger(__name__)


def _timed(model, arch, lens, inputs, cfg, stage):
    start = time.perf_counter()
    report = audit(model, arch, inputs, cfg, lens=lens, stage=stage)
    return time.perf_counter() - start, report


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark; return a markdown section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit_bench")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each audit (the minimum is kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    lm, rows, _ = memorized_model(progress=False)
    model, arch, tok = lm.model, resolve_arch(lm.model), lm.tokenizer
    lens = VocabLens(model, arch)
    data = prepare(tok, rows, args.seed, 20)
    cfg = PRESETS[default_preset(data.erase.encode)]
    kept = [i for i, ok in enumerate(reproduced(model, list(data.audit.retain))) if ok]  # on the unedited model
    result = erase(model, arch, data.erase, cfg, lens=lens)
    inputs = _retained_as_the_product_chooses(audit_inputs_for(data, result.positions(len(data.erase.forget))),
                                              kept)
    base = AuditConfig(ks=(100,), formats=FormatAuditConfig(candidates=0), rank_control_sets=0)
    modes = {"ours": base, "without the shortcuts": dataclasses.replace(base, fast=False)}
    lines = ["| model state | audit | seconds | rows | identical verdicts |", "|---|---|---|---|---|"]
    spec_lines = ["| model state | Specificity, ours s | without the shortcuts s | speed-up | items kept | "
                  "identical per item |", "|---|---|---|---|---|---|"]
    for stage in ("after", "before"):
        if stage == "before":
            restore(model, arch, result.backup)
        times, tables = {}, {}
        for name, mode in modes.items():
            runs = [_timed(model, arch, lens, inputs, mode, stage) for _ in range(args.repeats)]
            times[name], tables[name] = min(t for t, _ in runs), runs[-1][1].table()
        same = same_verdicts(tables["ours"], tables["without the shortcuts"])
        for name in modes:
            lines.append(f"| {'unedited' if stage == 'before' else 'after the default erase'} | {name} | "
                         f"{times[name]:.1f} | {tables[name].num_rows} | {same} |")
        ratio = times["without the shortcuts"] / times["ours"]
        lines.append(f"| | **speed-up** | **{ratio:.2f}×** | | |")
        logger.info("%s: %s", stage, times)
        spec_lines.append(_specificity_row(model, inputs, base, stage, args.repeats))
    head = (f"Seed-{args.seed} split of revs_bench (20 forgotten SSNs, 80 other prompts, "
            f"{len(inputs.retain)} retained sentences — of {len(data.audit.retain)}, those the unedited model "
            "reproduces, as the product's audit chooses its retained set —, 80 perplexity texts), the default "
            f"preset's edit; minimum of {args.repeats} runs each.\n\n")
    spec_head = (f"\n\nSpecificity alone (the audit's part issue #21 names: {len(inputs.retain)} retained items, "
                 f"{base.specificity_new_tokens}-token greedy windows, `revs_engine.metrics.specificity` with and "
                 "without `probe_first`):\n\n")
    return head + "\n".join(lines) + spec_head + "\n".join(spec_lines) + "\n"


def _retained_as_the_product_chooses(inputs: AuditInputs, kept: list[int]) -> AuditInputs:
    """``inputs`` with only the retained items ``kept`` (those the unedited model reproduces): the product's audit
    measures Specificity on such items only (:func:`tasks.audit_io.retained`); an item the model never reproduced
    says nothing about the edit, and its greedy window is decoded to the end on both sides."""
    pick = lambda seq: tuple(seq[i] for i in kept) if seq else seq  # noqa: E731
    return dataclasses.replace(inputs, retain=pick(inputs.retain), retain_ids=pick(inputs.retain_ids),
                               retain_guarded=pick(inputs.retain_guarded))


def _specificity_row(model, inputs, cfg: AuditConfig, stage: str, repeats: int) -> str:
    times, results = {}, {}
    for fast in (True, False):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            res = specificity(model, list(inputs.retain), max_new_tokens=cfg.specificity_new_tokens,
                              decode=inputs.decode, batch_size=cfg.batch_size, probe_first=fast)
            runs.append(time.perf_counter() - start)
        times[fast], results[fast] = min(runs), res
    same = results[True].per_secret == results[False].per_secret
    return (f"| {'unedited' if stage == 'before' else 'after the default erase'} | {times[True]:.1f} | "
            f"{times[False]:.1f} | **{times[False] / times[True]:.2f}×** | {results[True].score:.0f} % | {same} |")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(main())
