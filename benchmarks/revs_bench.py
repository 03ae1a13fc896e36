"""REVS benchmark: the paper's SSN protocol (reference/revs-method.md §4.1) on the embedded SmolLM2-135M.

40 synthetic SSNs × 5 sentence templates (:mod:`benchmarks.ssn_data`) are memorized into SmolLM2
(:mod:`benchmarks.ssn_model`, cached). Per seed: forget 20 SSNs (one prompt each), generality = their other 80
prompts, retain = the 100 sentences of the other 20 SSNs. Side by side in one run, on identical target tokens:
the unedited model, FT-L (the paper's constrained fine-tuning baseline) and REVS, each audited with
:func:`revs_engine.metrics.audit_model` at k = 100 — Efficacy, Generality, Specificity, Unlearning Score,
LLA / DA / PA, Resistance Score, perplexity on held-out text (:mod:`benchmarks.benign_text`), exact greedy
extractions left (plain and perturbed prompts, and on the unseen generality prompts), seconds per target. A
second table times REVS against the naive variant — the method's pseudocode (§1.8) as written: a full forward pass
per layer, and per outer iteration a fresh demotion of the first k neurons and a fresh projection — and against
ours with only the resumed forward undone, on the same targets, and checks the edits are identical.

Retain guard: REVS is given one prompt of each of HALF of the retained SSNs as its guard set (the other memorized
data a compliance sweep knows of); Specificity is reported on all 100 retained sentences and separately on the
SSNs the guard never saw, so in-sample fitting would show.

``python -m benchmarks.revs_bench [--quick] [--seeds 0 1 2]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from benchmarks.benign_text import benign_texts, guard_texts
from benchmarks.ssn_data import SsnRow, split
from benchmarks.ssn_model import _cache_root, encode_rows, memorized_model
from revs_engine.arch import resolve_arch
from revs_engine.attacks.generation import greedy_extraction
from revs_engine.attacks.perturb import perturb_text
from revs_engine.config import RevsConfig
from revs_engine.decoys import decoy_sequences
from revs_engine.edit import restore
from revs_engine.ftl import FtlConfig, unlearn_ftl
from revs_engine.guard import GuardActivations, RetainGuard, guard_activations
from revs_engine.lens import VocabLens
from revs_engine.metrics import AuditConfig, audit_model
from revs_engine.positions import distinct_positions
from revs_engine.probes import ProbeItem
from revs_engine.revs import unlearn
from revs_engine.targets import TargetConfig, TokenTarget, eligible_positions, order_positions, targets_at

logger = logging.getLogger(__name__)
K = 100
GUARD_BENIGN = 96  # benign texts in the guard (prose + number-heavy, disjoint from the perplexity texts)


@dataclass
class SeedData:
    """One seed's split as token ids (raw text only in memory, as in the product)."""

    forget_items: list[ProbeItem] = field(repr=False)
    forget_prompts: list[str] = field(repr=False)
    forget_texts: list[list[str]] = field(repr=False)  # per secret, decoded text of each token
    gen_items: list[ProbeItem] = field(repr=False)
    gen_secret: list[int]  # forget index of each generality item
    retain_items: list[ProbeItem] = field(repr=False)
    retain_group: list[int]
    guard_items: list[ProbeItem] = field(repr=False)
    guard_groups: set[int]
    benign: list[list[int]] = field(repr=False)
    guard_benign: list[list[int]] = field(repr=False)  # benign texts the guard sees (not the perplexity ones)
    decode: Callable = field(repr=False)
    encode: Callable = field(repr=False)


def prepare(tokenizer, rows: list[SsnRow], seed: int, n_forget: int) -> SeedData:
    """Split ``rows`` for ``seed`` and tokenize every part."""
    parts = split(rows, n_forget=n_forget, seed=seed)
    index = {r.group: i for i, r in enumerate(parts.forget)}
    retain_groups = sorted({r.group for r in parts.retain})
    guard_groups = set(retain_groups[::2])
    guard_rows = [next(r for r in parts.retain if r.group == g) for g in sorted(guard_groups)]
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    forget_items = encode_rows(tokenizer, parts.forget)
    return SeedData(
        forget_items=forget_items, forget_prompts=[r.prompt for r in parts.forget],
        forget_texts=[[tokenizer.decode([t]) for t in it.target_ids] for it in forget_items],
        gen_items=encode_rows(tokenizer, parts.generality), gen_secret=[index[r.group] for r in parts.generality],
        retain_items=encode_rows(tokenizer, parts.retain), retain_group=[r.group for r in parts.retain],
        guard_items=encode_rows(tokenizer, guard_rows), guard_groups=guard_groups,
        benign=[encode(t) for t in benign_texts()],
        guard_benign=[encode(t)[:64] for t in guard_texts(GUARD_BENIGN // 2, GUARD_BENIGN - GUARD_BENIGN // 2)],
        decode=lambda ids: tokenizer.decode(ids), encode=encode)


@dataclass
class Targets:
    """Evaluated / edited tokens: the same SSN positions on the forget prompt and on the generality prompts."""

    forget: list[TokenTarget] = field(repr=False)
    generality: list[TokenTarget] = field(repr=False)
    positions: list[list[int]]


def guard_of(data: SeedData, decoys: int = 0) -> RetainGuard:
    """The retain guard REVS gets: one prompt of half the retained SSNs and GUARD_BENIGN benign texts (cut to 64
    tokens); ``decoys``: plus that many format-preserving decoys of each forgotten SSN after its own prompt
    (:mod:`revs_engine.decoys`)."""
    extra = [seq for i, it in enumerate(data.forget_items)
             for seq in decoy_sequences(it.prefix_ids, data.decode(list(it.target_ids)), data.encode, decoys,
                                        seed=i)]
    return RetainGuard.from_items(data.guard_items, data.guard_benign + extra)


def choose_positions(model, arch, data: SeedData, rule: str, acts: GuardActivations,
                     cfg: TargetConfig | None = None) -> list[list[int]]:
    """Target positions of each forgotten SSN: ``rarest`` (the paper's rule, digits only) or ``distinct``
    (``acts``: the guard's activations on the unedited model); ``cfg``: how many (default: the engine's)."""
    cfg = cfg or TargetConfig()
    eligible = [eligible_positions(texts, cfg) for texts in data.forget_texts]
    if rule == "rarest":
        return [order_positions(el, list(it.target_ids), cfg) for el, it in zip(eligible, data.forget_items,
                                                                                 strict=True)]
    return [distinct_positions(model, arch, it.prefix_ids, it.target_ids, el, acts, cfg.max_tokens)
            for el, it in zip(eligible, data.forget_items, strict=True)]


def build_targets(data: SeedData, positions: list[list[int]]) -> Targets:
    """The target tokens at ``positions`` on each forget prompt and on its SSN's generality prompts."""
    forget = [t for s, (it, pos) in enumerate(zip(data.forget_items, positions, strict=True))
              for t in targets_at(it.prefix_ids, it.target_ids, pos, secret_index=s)]
    gen = [t for it, s in zip(data.gen_items, data.gen_secret, strict=True)
           for t in targets_at(it.prefix_ids, it.target_ids, positions[s], secret_index=s)]
    return Targets(forget, gen, positions)


def _perturbed(items: list[ProbeItem], prompts: list[str], encode) -> list[ProbeItem]:
    return [ProbeItem(tuple(encode(perturb_text(p))), it.target_ids) for it, p in zip(items, prompts, strict=True)]


def evaluate(model, arch, lens, data: SeedData, tg: Targets) -> dict[str, float]:
    """Audit one model state; return the benchmark's columns."""
    rep = audit_model(model, arch, forget=tg.forget, forget_ids=[str(i) for i in range(len(data.forget_items))],
                      retain=data.retain_items, generality_targets=tg.generality, prompts=data.forget_prompts,
                      encode=data.encode, decode=data.decode, benign=data.benign, forget_items=data.forget_items,
                      config=AuditConfig(ks=(K,)), lens=lens)
    s = rep.summary()
    spec_rows = [r for r in rep.rows if r.metric == "specificity" and r.target_id != "*"]
    unseen = [r.score for r, g in zip(spec_rows, data.retain_group, strict=True) if g not in data.guard_groups]
    pert = greedy_extraction(model, _perturbed(data.forget_items, data.forget_prompts, data.encode),
                             decode=data.decode)
    gen_x = greedy_extraction(model, data.gen_items, decode=data.decode)
    return {"efficacy": s[("efficacy", K)], "generality": s[("generality", K)],
            "specificity": s[("specificity", None)], "spec_unseen": statistics.fmean(unseen),
            "unlearning": s[("unlearning_score", K)], "lla": s[("logit_lens", K)], "da": s[("delta", K)],
            "pa": s[("perturb", K)], "resistance": s[("resistance_score", K)], "ppl": s[("perplexity", None)],
            "extract_plain": round(s[("greedy_extraction", None)] * len(data.forget_items) / 100),
            "extract_perturbed": sum(pert.extracted), "extract_generality": sum(gen_x.extracted)}


# -- methods ---------------------------------------------------------------------------------------------------
#: The paper's FT-L settings (reference/revs-method.md §5), lr raised from 1e-5: at 1e-5 and ε = 5e-4 FT-L
#: barely moves SmolLM2's digits (measured), which would make the comparison meaningless.
FTL = FtlConfig(lr=1e-4, steps=5, epsilon=5e-4)


@dataclass(frozen=True)
class RevsVariant:
    """One REVS row of the table: hyperparameters, position rule, and whether it gets the retain guard."""

    name: str
    cfg: RevsConfig
    positions: str  # "rarest" (the paper's rule) or "distinct" (revs_engine.positions)
    guarded: bool


#: The paper's method as published (GPT-J demo hyperparameters, rarest tokens, no guard): what §8 measured.
PAPER_RULES = RevsVariant("REVS, paper rules", RevsConfig(), "rarest", False)
#: Ours for digit-level tokenizers (reference/revs-method.md §8): guarded (contrastive neuron choice, verify and
#: redo stricter), distinct positions, residual window 0.6–3 % of the vocabulary instead of 2–20 %. Chosen on 5
#: SSNs of seed 0 among 7 variants (benchmarks/RESULTS.md lists them); the other seeds were not looked at.
OURS = RevsVariant("REVS, ours", RevsConfig(neuron_score="contrast", residual_rank_window=(0.006, 0.03),
                                            mlp_rank_window=(0.006, 0.9)), "distinct", True)

#: Ours plus the guard projection (revs_engine.guard_projection): every layer's edit re-weighted so the change at
#: the secret is kept and the change at the guard's positions is least; the residual window of the demo policy.
OURS_PROJECTED = RevsVariant("REVS, ours + guard projection",
                             RevsConfig(neuron_score="contrast", guard_projection=0.05,
                                        residual_rank_window=(0.05, 0.25), mlp_rank_window=(0.006, 0.9)),
                             "distinct", True)


#: Ours with decoys (revs_engine.decoys): the guard also holds 8 look-alikes of each forgotten SSN after its own
#: prompt; one target per SSN (the distinct position); the neurons REVS picks by rank (the paper's rule), each
#: layer's change spread by the guard projection (ridge 0.02) over 256 more neurons, those most specific to the
#: secret's context. No verify-and-redo (its stricter redo is contrast scoring, which a guard full of digits
#: starves). Chosen on seed 0 (benchmarks/RESULTS.md lists the runs); seeds 1 and 2 were not looked at.
OURS_DECOYS = RevsVariant("REVS, ours + decoys",
                          RevsConfig(guard_projection=0.02, guard_spread=256, guard_check=False, guard_retries=0,
                                     residual_rank_window=(0.05, 0.25), mlp_rank_window=(0.006, 0.9),
                                     decoys=8, targets=TargetConfig(max_tokens=1)),
                          "distinct", True)

#: The REVS rows ``--variants`` chooses from; the last one chosen is timed against the naive variant.
VARIANTS = {"paper": PAPER_RULES, "ours": OURS, "projected": OURS_PROJECTED, "decoys": OURS_DECOYS}


def run_revs(model, arch, lens, data: SeedData, tg: Targets, variant: RevsVariant, *, resume: bool = True,
             naive: bool = False, acts: GuardActivations | None = None):
    """Edit the model in place with one REVS variant; return the result (``acts``: the guard's activations on
    the unedited model, computed once per seed; None computes them). ``resume`` / ``naive``: see ``unlearn``."""
    if not variant.guarded:
        return unlearn(model, arch, tg.forget, variant.cfg, lens=lens, resume=resume, naive=naive)
    return unlearn(model, arch, tg.forget, variant.cfg, lens=lens, resume=resume, naive=naive,
                   guard=guard_of(data, variant.cfg.decoys), guard_acts=acts)


def run_ftl(model, arch, lens, data: SeedData, tg: Targets, cfg: FtlConfig = FTL):
    """Edit the model in place with FT-L on the same targets; return the result."""
    return unlearn_ftl(model, arch, tg.forget, cfg)


def _timed(fn, model, arch, data: SeedData, tg: Targets, lens) -> dict:
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    row = {**evaluate(model, arch, lens, data, tg), "s_per_target": seconds / len(tg.forget)}
    restore(model, arch, result.backup)
    return row, result


def _key(v: RevsVariant) -> tuple[str, int, int | None]:
    """Variants with the same position rule, guard and target count get the same targets."""
    return v.positions, v.cfg.decoys, v.cfg.targets.max_tokens


def one_seed(lm, rows, seed: int, n_forget: int, variants: list[RevsVariant], *, naive_targets: int) -> dict:
    """Audit the unedited model, FT-L and every REVS variant for one seed; time REVS against the naive variant."""
    model, arch = lm.model, resolve_arch(lm.model)
    lens = VocabLens(model, arch)
    data = prepare(lm.tokenizer, rows, seed, n_forget)
    # the guard's activations on the unedited model (every edit below is restored), per guard (decoys or not)
    acts = {n: guard_activations(model, arch, guard_of(data, n))
            for n in dict.fromkeys(v.cfg.decoys for v in variants if v.guarded or v.positions == "distinct")}
    targets = {_key(v): build_targets(data, choose_positions(model, arch, data, v.positions,
                                                             acts.get(v.cfg.decoys), v.cfg.targets))
               for v in variants}
    first = targets[_key(variants[-1])]  # FT-L and the unedited model are scored on our targets
    out = {"unedited": evaluate(model, arch, lens, data, first)}
    out["FT-L"], _ = _timed(lambda: run_ftl(model, arch, lens, data, first), model, arch, data, first, lens)
    for v in variants:
        tg = targets[_key(v)]
        out[v.name], result = _timed(lambda v=v, tg=tg: run_revs(model, arch, lens, data, tg, v,
                                                                 acts=acts.get(v.cfg.decoys)),
                                     model, arch, data, tg, lens)
        out[v.name]["converged"] = result.n_converged / len(tg.forget) * 100
        out[v.name]["neurons"] = result.summary()["neurons"]
        out[v.name]["retries"] = sum(r.attempts > 1 for r in result.targets)
        logger.info("seed %d %s: %s", seed, v.name, {k: round(x, 2) for k, x in out[v.name].items()})
    out["timing"] = time_naive(model, arch, lens, data, first, variants[-1], naive_targets,
                               acts.get(variants[-1].cfg.decoys))
    return out


#: The timed modes: ours, the forward-only ablation, and the §1.8 pseudocode as written (the naive variant).
TIMED_MODES = (("ours", {"resume": True}), ("forward", {"resume": False}), ("naive", {"naive": True}))


def time_naive(model, arch, lens, data: SeedData, tg: Targets, variant: RevsVariant, n: int,
               acts: GuardActivations | None = None) -> dict:
    """Run REVS on the first ``n`` targets three ways — ours; ours with a full forward per layer; the naive
    variant (§1.8 as written: a full forward per layer, and demotion and projection re-run per outer iteration)
    — and compare times and edits."""
    sub = dataclasses.replace(tg, forget=tg.forget[:n])
    timings, edits = {}, {}
    for name, mode in TIMED_MODES:
        start = time.perf_counter()
        result = run_revs(model, arch, lens, data, sub, variant, acts=acts, **mode)
        timings[name] = time.perf_counter() - start
        edits[name] = result.edits
        restore(model, arch, result.backup)
    out = {"targets": len(sub.forget), **{f"{name}_s": t for name, t in timings.items()}}
    for name in ("forward", "naive"):
        out[f"speedup_{name}"] = timings[name] / timings["ours"]
        out[f"identical_{name}"] = _same_edits(edits["ours"], edits[name])
    return out


def _same_edits(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x.layer == y.layer and torch.equal(x.neurons, y.neurons)
                                    and torch.equal(x.delta, y.delta) for x, y in zip(a, b, strict=True))


# -- report ----------------------------------------------------------------------------------------------------
COLUMNS = [("unlearning", "US"), ("efficacy", "Eff@100"), ("generality", "Gen@100"), ("specificity", "Spec"),
           ("spec_unseen", "Spec (unseen SSNs)"), ("resistance", "RS@100"), ("lla", "LLA@100"), ("da", "DA@100"),
           ("pa", "PA@100"), ("ppl_change", "ppl Δ%"), ("extract_plain", "extracted (plain)"),
           ("extract_perturbed", "extracted (perturbed)"), ("extract_generality", "extracted (other prompts)"),
           ("s_per_target", "s/target")]
#: reference/revs-method.md §3.1-3.2, Llama-3-8B SSN, k = 100.
PAPER = {"unedited": {"unlearning": 0.0, "efficacy": 0.0, "generality": 0.0, "specificity": 100.0},
         "FT-L": {"unlearning": 36.98, "efficacy": 63.88, "generality": 50.35, "specificity": 24.33,
                  "resistance": 82.77, "lla": 63.88, "da": 98.08, "pa": 98.22},
         "REVS": {"unlearning": 89.58, "efficacy": 98.88, "generality": 89.67, "specificity": 82.17,
                  "resistance": 99.27, "lla": 98.88, "da": 98.92, "pa": 100.0}}


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(per_seed: list[dict], variants: list[RevsVariant]) -> str:
    """Return the markdown tables (mean ± std over seeds) with the paper's numbers beside ours."""
    names = ["unedited", "FT-L", *(v.name for v in variants)]
    for res in per_seed:
        base = res["unedited"]["ppl"]
        for name in names:
            res[name]["ppl_change"] = 100 * (res[name]["ppl"] / base - 1)
    lines = ["| method | " + " | ".join(c[1] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in names:
        cells = [_cell([r[name][c] for r in per_seed if c in r[name]]) for c, _ in COLUMNS]
        lines.append(f"| {name} (SmolLM2-135M) | " + " | ".join(cells) + " |")
    for name in ("unedited", "FT-L", "REVS"):
        cells = [f"{PAPER[name][c]:.2f}" if c in PAPER[name] else "" for c, _ in COLUMNS]
        lines.append(f"| {name} (paper, Llama-3-8B) | " + " | ".join(cells) + " |")
    lines += ["", "| REVS variant | converged % | neuron edits | targets redone stricter |", "|---|---|---|---|"]
    for v in variants:
        lines.append(f"| {v.name} | {_cell([r[v.name]['converged'] for r in per_seed])} | "
                     f"{_cell([r[v.name]['neurons'] for r in per_seed])} | "
                     f"{_cell([r[v.name]['retries'] for r in per_seed])} |")
    lines += ["", "| timing (same targets) | targets | seconds | speed-up | identical edits |",
              "|---|---|---|---|---|"]
    for r in per_seed:
        t = r["timing"]
        lines.append(f"| ours vs naive (§1.8 as written: full forward per layer, demotion + projection per outer "
                     f"iteration) | {t['targets']} | {t['ours_s']:.1f} vs {t['naive_s']:.1f} | "
                     f"{t['speedup_naive']:.2f}× | {t['identical_naive']} |")
        lines.append(f"| ours vs ours with a full forward per layer (ablation of resuming alone) | {t['targets']} "
                     f"| {t['ours_s']:.1f} vs {t['forward_s']:.1f} | {t['speedup_forward']:.2f}× | "
                     f"{t['identical_forward']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark; return a markdown section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.revs_bench")
    parser.add_argument("--quick", action="store_true", help="one seed, 5 forgotten SSNs (smoke run)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--forget", type=int, default=20)
    parser.add_argument("--naive-targets", type=int, default=6)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["paper", "decoys"],
                        help="REVS rows (default: the published rules and ours + decoys; the last one is timed "
                             "against the naive variant; 'ours' adds ≈ 11 min per seed on 2 cores)")
    args = parser.parse_args(argv)
    seeds, n_forget = ([0], 5) if args.quick else (args.seeds, args.forget)
    variants = [VARIANTS[name] for name in dict.fromkeys(args.variants)]
    lm, rows, info = memorized_model(progress=False)
    per_seed = []
    for seed in seeds:  # each seed's raw numbers are kept as they come (hours of CPU for three seeds)
        per_seed.append(one_seed(lm, rows, seed, n_forget, variants,
                                 naive_targets=2 if args.quick else args.naive_targets))
        raw = _cache_root() / "bench" / f"revs_bench-seed{seed}{'-quick' if args.quick else ''}.json"
        raw.write_text(json.dumps(per_seed[-1], indent=1, default=str), encoding="utf-8")
    head = (f"SmolLM2-135M memorized on {len(rows)} SSN sentences ({info['epochs']} epochs, "
            f"{100 * info['fraction_memorized']:.0f}% exact). Per seed: forget {n_forget} SSNs, generality = "
            f"their other prompts, retain = the other SSNs' sentences; seeds {seeds}; k = {K}. Scores ×100, "
            "mean ± std over seeds; ppl Δ% = perplexity change on held-out prose + number-heavy text. "
            "Spec (unseen SSNs) = retained SSNs the guard never saw.\n\n")
    return head + table(per_seed, variants)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(main())
