"""REVS benchmark: the paper's SSN protocol (reference/revs-method.md §4.1) on the embedded SmolLM2-135M, measured
through the product's own entry points.

40 synthetic SSNs × 5 sentence templates (:mod:`benchmarks.ssn_data`) are memorized into SmolLM2
(:mod:`benchmarks.ssn_model`, cached). Per seed: forget 20 SSNs (one prompt each), generality = their other 80
prompts, retain = the 100 sentences of the other 20 SSNs. Every row is one call of
:func:`revs_engine.erase.erase` with a named preset (:data:`revs_engine.presets.PRESETS`) followed by
:func:`revs_engine.audit.audit` at k = 100 — the same two calls `revs unlearn`, the sweep and the deletion request
make. The row "product default" is the preset `revs unlearn` picks with no flags for this tokenizer
(:func:`revs_engine.presets.default_preset`). A second table times the default against the naive variant — the
method's pseudocode (§1.8) as written — and against it with only the resumed forward undone, on the same secrets,
and checks the edits are identical.

What erase is given, as a compliance sweep would give it: the forgotten SSNs (prompt + value), the retained
memorized items it knows of — one prompt of each of HALF of the retained SSNs — and 96 benign texts (prose +
number-heavy, disjoint from the perplexity texts). Specificity is reported on all 100 retained sentences and on
the SSNs the guard never saw (``Spec (unseen)``), so fitting to the guard would show.

The same protocol runs on phone numbers, e-mail addresses, surnames after a first name, payment card numbers and
IBANs (``--entity phone|email|surname|card|iban``: 40 values × 5 sentences of their own templates, a model
memorizing them, the product's entity type and format for the value; the card and IBAN sets are held out: added
after every default was chosen).

With no ``--entity`` every set runs: the SSNs with every row, the others with the product default.

``python -m benchmarks.revs_bench [--quick] [--entity all] [--seeds 0 1 2] [--variants default paper ftl]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
from dataclasses import dataclass, field

import torch

from benchmarks.benign_text import (
    benign_texts,
    guard_texts,
    numeric_sentences_unseen,
    prose_paragraphs,
    rehearsal_texts,
)
from benchmarks.revs_bench_rows import EXTRA, variant
from benchmarks.ssn_data import EMAIL_DOMAINS, ENTITIES, SsnRow, split
from benchmarks.ssn_model import _cache_root, encode_rows, memorized_model
from revs_engine.arch import resolve_arch
from revs_engine.audit import AuditConfig, AuditInputs, audit, never_seen_ranks
from revs_engine.audit_formats import FormatAuditConfig
from revs_engine.edit import restore
from revs_engine.erase import GUARD_BENIGN, EraseInputs, EraseResult, Secret, erase, guard_stats_for
from revs_engine.format_entities import format_for
from revs_engine.lens import VocabLens
from revs_engine.metrics import perplexity
from revs_engine.presets import PRESETS, EraseConfig
from revs_engine.targets import encoder, targets_at

logger = logging.getLogger(__name__)
K = 100


@dataclass
class SeedData:
    """One seed's split as the product's inputs: what erase gets and what the audit looks at (raw text only in
    memory, as in the product)."""

    erase: EraseInputs = field(repr=False)
    audit: AuditInputs = field(repr=False)  # its ``forget`` / ``generality`` targets are set per edit
    gen_secret: list[int]  # forget index of each generality item
    n_generality: int


#: The corpus sample an erase reads when its ``joint_covariance`` asks for one: general text disjoint from the
#: guard's and from every measured set (:func:`~benchmarks.benign_text.rehearsal_texts`: standard-library and
#: language-reference prose, number-heavy sentences of the measured set's templates from another seed; none of
#: the unseen templates).
CORPUS_SAMPLE = 600


def prepare(tokenizer, rows: list[SsnRow], seed: int, n_forget: int, entity: str = "ssn") -> SeedData:
    """Split ``rows`` (values of ``entity``, a key of :data:`benchmarks.ssn_data.ENTITIES`) for ``seed`` and
    tokenize every part."""
    kind = ENTITIES[entity]
    parts = split(rows, n_forget=n_forget, seed=seed)
    index = {r.group: i for i, r in enumerate(parts.forget)}
    retain_groups = sorted({r.group for r in parts.retain})
    guard_groups = set(retain_groups[::2])
    guard_rows = [next(r for r in parts.retain if r.group == g) for g in sorted(guard_groups)]
    encode = encoder(tokenizer)
    forget_items = encode_rows(tokenizer, parts.forget)
    secrets = tuple(Secret(it.prefix_ids, it.target_ids, tuple(tokenizer.decode([t]) for t in it.target_ids),
                           kind) for it in forget_items)
    guard_benign = guard_texts(GUARD_BENIGN // 2, GUARD_BENIGN - GUARD_BENIGN // 2)
    inputs = EraseInputs(secrets, tuple(encode_rows(tokenizer, guard_rows)),
                         tuple(tuple(encode(t)) for t in guard_benign), encode, tokenizer.decode,
                         corpus=tuple(tuple(encode(t)) for t in rehearsal_texts()[:CORPUS_SAMPLE]))
    retain = encode_rows(tokenizer, parts.retain)
    gen_items = encode_rows(tokenizer, parts.generality)
    placeholder = tuple(targets_at(it.prefix_ids, it.target_ids, [0], secret_index=i)[0]
                        for i, it in enumerate(forget_items))
    audit_inputs = AuditInputs(
        placeholder, tuple(str(i) for i in range(len(forget_items))), tuple(forget_items),
        tuple(r.prompt for r in parts.forget), encode, tokenizer.decode, generality_items=tuple(gen_items),
        retain=tuple(retain), retain_ids=tuple(f"retain-{i}" for i in range(len(retain))),
        retain_guarded=tuple(r.group in guard_groups for r in parts.retain),
        benign=tuple(tuple(encode(t)) for t in benign_texts()),
        formats=tuple(_format(kind, r) for r in parts.forget))
    return SeedData(inputs, audit_inputs, [index[r.group] for r in parts.generality], len(gen_items))


def _format(kind: str, row: SsnRow):
    """The format an attacker who knows the row's subject guesses in: for an e-mail, local parts from the
    person's name and the set's domains (issue #17's attack); the entity's pattern otherwise."""
    if kind == "EMAIL_ADDRESS":
        return format_for(kind, row.target, names=[row.name], domains=EMAIL_DOMAINS)
    return format_for(kind, row.target)


def audit_inputs_for(data: SeedData, positions: list[list[int]]) -> AuditInputs:
    """The seed's audit inputs evaluated at ``positions`` of each secret, on its prompt and its other prompts."""
    forget = [t for s, (it, pos) in enumerate(zip(data.audit.forget_items, positions, strict=True))
              for t in targets_at(it.prefix_ids, it.target_ids, pos, secret_index=s)]
    gen = [t for it, s in zip(data.audit.generality_items, data.gen_secret, strict=True)
           for t in targets_at(it.prefix_ids, it.target_ids, positions[s], secret_index=s)]
    return dataclasses.replace(data.audit, forget=tuple(forget), generality=tuple(gen))


#: Format-aware attacks in the benchmark's audits: candidates per exposure (exact up to log2(65) = 6.0 bits, the
#: skew-normal fit beyond); 0 turns them off (``--format-candidates``).
FORMAT_CANDIDATES = 64


def evaluate(model, arch, lens, data: SeedData, positions: list[list[int]], *, stage: str = "after",
             format_candidates: int = FORMAT_CANDIDATES) -> dict[str, float]:
    """Audit one model state with the product's audit; return the benchmark's columns (and the perplexity of the
    prose and of the number-heavy half of the held-out texts apart: the pooled figure can hide one behind the
    other)."""
    cfg = AuditConfig(ks=(K,), formats=FormatAuditConfig(candidates=format_candidates))
    inputs = audit_inputs_for(data, positions)
    s = audit(model, arch, inputs, cfg, lens=lens, stage=stage).summary()
    if stage == "before":  # the audit scores never-seen values after an edit only; the benchmark shows both
        s |= {(f"control_{m}", k): v for (m, k), v in never_seen_ranks(model, arch, lens, inputs, cfg).items()}
    n_prose = len(prose_paragraphs())  # benign_texts(): the prose paragraphs first
    kinds = {"ppl_prose": perplexity(model, list(data.audit.benign[:n_prose])).perplexity,
             "ppl_numeric": perplexity(model, list(data.audit.benign[n_prose:])).perplexity,
             "ppl_numeric_unseen": perplexity(model, [data.erase.encode(t) for t in numeric_sentences_unseen()]
                                              ).perplexity}
    n = len(data.audit.forget_ids)
    count = lambda metric, total: round(s[(metric, None)] * total / 100)  # noqa: E731
    return {"efficacy": s[("efficacy", K)], "generality": s[("generality", K)],
            "specificity": s[("specificity", None)], "spec_unseen": s[("specificity_unseen", None)],
            "unlearning": s[("unlearning_score", K)], "lla": s[("logit_lens", K)], "da": s[("delta", K)],
            "pa": s[("perturb", K)], "resistance": s[("resistance_score", K)], "ppl": s[("perplexity", None)],
            **kinds, "extract_plain": count("greedy_extraction", n),
            "extract_sampled": count("sampled_extraction", n),
            "extract_perturbed": count("perturbed_greedy_extraction", n),
            "extract_generality": count("generality_greedy_extraction", data.n_generality),
            **{column: s[(metric, None)] for column, metric in FORMAT_COLUMNS if (metric, None) in s},
            **{column: s[(metric, K)] for column, metric in RANK_CONTROL_COLUMNS if (metric, K) in s}}


#: Format-aware columns: benchmark column → audit row (aggregates over the forgotten SSNs; ``control_*``: the same
#: attacks on a never-seen SSN after the same prompt, audited after the edit only).
FORMAT_COLUMNS = (("exposure", "exposure_bits"), ("exposure_control", "control_exposure_bits"),
                  ("exposed", "exposure_above_6_bits"), ("constrained", "constrained_fraction"),
                  ("constrained_control", "control_constrained_fraction"),
                  ("neighbourhood", "neighbourhood_in_top_k"), ("partial", "partial_completes"))


#: The rank attacks on never-seen values (:mod:`revs_engine.rank_controls`): benchmark column → audit row.
RANK_CONTROL_COLUMNS = (("resistance_control", "control_resistance_score"), ("lla_control", "control_logit_lens"),
                        ("da_control", "control_delta"), ("pa_control", "control_perturb"),
                        ("gen_control", "control_generality"))


ENTITY_LABELS = {"ssn": "SSN", "phone": "phone-number", "email": "e-mail", "surname": "surname",
                 "card": "payment-card", "iban": "IBAN"}
ENTITY_HEADINGS = {"phone": "Phone numbers", "email": "E-mail addresses", "surname": "Surnames after a first name",
                   "card": "Payment card numbers (held out)", "iban": "IBANs (held out)"}


def one_seed(lm, rows, seed: int, n_forget: int, names: list[str], *, naive_targets: int,
             format_candidates: int = FORMAT_CANDIDATES, entity: str = "ssn") -> dict:
    """Audit the unedited model and every row's erase for one seed; time the default against the naive variant."""
    model, arch, tok = lm.model, resolve_arch(lm.model), lm.tokenizer
    lens = VocabLens(model, arch)
    data = prepare(tok, rows, seed, n_forget, entity)
    stats = {}  # the guard's statistics on the unedited model (every edit below is restored), per decoy count
    out, positions = {}, None
    for name in names:
        label, cfg = variant(name, data.erase.encode)
        key = (cfg.revs.decoys, cfg.revs.cross_decoys, cfg.revs.cross_secrets, cfg.revs.targets,
               cfg.revs.guard_value_weight)
        if cfg.uses_guard and key not in stats:
            stats[key] = guard_stats_for(model, arch, data.erase, cfg, complete=True)
        result = erase(model, arch, data.erase, cfg, lens=lens, guard_stats=stats.get(key))
        pos = result.positions(len(data.erase.forget))
        row = {**evaluate(model, arch, lens, data, pos, format_candidates=format_candidates),
               "s_per_target": result.seconds / len(result.targets),
               "converged": 100 * result.n_converged / len(result.targets), **_revs_stats(result)}
        restore(model, arch, result.backup)
        out[label] = row
        if name == "default" or positions is None:  # the unedited model is audited at the default's positions
            positions = pos
        logger.info("seed %d %s: %s", seed, label, {k: round(x, 2) for k, x in row.items()})
    out["unedited"] = evaluate(model, arch, lens, data, positions, stage="before",  # (or the first row's)
                               format_candidates=format_candidates)
    if naive_targets:
        label, cfg = variant("default", data.erase.encode)
        out["timing"] = time_naive(model, arch, lens, data, cfg, naive_targets)
    return out


def _revs_stats(result: EraseResult) -> dict[str, float]:
    if result.revs is None:
        return {}
    return {"neurons": result.summary()["neurons"], "retries": sum(r.attempts > 1 for r in result.revs.targets)}


#: The timed modes: ours, the forward-only ablation, and the §1.8 pseudocode as written (the naive variant).
TIMED_MODES = (("ours", {"resume": True}), ("forward", {"resume": False}), ("naive", {"naive": True}))


def time_naive(model, arch, lens, data: SeedData, cfg: EraseConfig, n: int) -> dict:
    """Erase the first ``n`` secrets three ways — ours; ours with a full forward per layer; the naive variant (§1.8
    as written: a full forward per layer, and demotion and projection re-run per outer iteration) — and compare
    the edit times (guard capture and position choice excluded) and the edits."""
    sub = dataclasses.replace(data.erase, forget=data.erase.forget[:n])
    timings, edits = {}, {}
    for name, mode in TIMED_MODES:
        result = erase(model, arch, sub, cfg, lens=lens, **mode)
        timings[name], edits[name] = result.seconds, result.edits
        restore(model, arch, result.backup)
    out = {"targets": n, **{f"{name}_s": t for name, t in timings.items()}}
    for name in ("forward", "naive"):
        out[f"speedup_{name}"] = timings[name] / timings["ours"]
        out[f"identical_{name}"] = _same_edits(edits["ours"], edits[name])
    return out


def _same_edits(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x.layer == y.layer and torch.equal(x.neurons, y.neurons)
                                    and torch.equal(x.delta, y.delta) for x, y in zip(a, b, strict=True))


# -- report ----------------------------------------------------------------------------------------------------
COLUMNS = [("unlearning", "US"), ("efficacy", "Eff@100"), ("generality", "Gen@100"), ("specificity", "Spec"),
           ("spec_unseen", "Spec (unseen)"), ("resistance", "RS@100"), ("lla", "LLA@100"), ("da", "DA@100"),
           ("pa", "PA@100"), ("ppl_change", "ppl Δ%"), ("ppl_prose_change", "ppl Δ% prose"),
           ("ppl_numeric_change", "ppl Δ% number-heavy"),
           ("ppl_numeric_unseen_change", "ppl Δ% number-heavy, unseen templates"),
           ("extract_plain", "extracted (greedy)"),
           ("extract_perturbed", "extracted (perturbed)"), ("extract_sampled", "extracted (sampled)"),
           ("extract_generality", "extracted (other prompts)"), ("s_per_target", "s/target")]
FORMAT_TABLE = [("exposure", "exposure (bits)"), ("exposure_control", "control exposure"),
                ("exposed", "exposed %"), ("constrained", "constrained %"),
                ("constrained_control", "control constrained %"), ("neighbourhood", "neighbourhood %"),
                ("partial", "partial %")]
RANK_CONTROL_TABLE = [("resistance", "RS@100"), ("resistance_control", "never-seen RS@100"), ("lla", "LLA@100"),
                      ("lla_control", "never-seen LLA@100"), ("da", "DA@100"), ("da_control", "never-seen DA@100"),
                      ("pa", "PA@100"), ("pa_control", "never-seen PA@100"), ("generality", "Gen@100"),
                      ("gen_control", "never-seen Gen@100")]
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


def table(per_seed: list[dict], *, paper: bool = True) -> str:
    """Return the markdown tables (mean ± std over seeds) with the paper's SSN numbers beside ours (``paper``)."""
    names = ["unedited", *(n for n in per_seed[0] if n not in ("unedited", "timing"))]
    for res in per_seed:
        # the split is missing from runs before 2026-12-05: those cells stay blank
        for kind in ("ppl", "ppl_prose", "ppl_numeric", "ppl_numeric_unseen"):
            base = res["unedited"].get(kind)
            for name in names:
                if base and kind in res[name]:
                    res[name][f"{kind}_change"] = 100 * (res[name][kind] / base - 1)
    lines = ["| method | " + " | ".join(c[1] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in names:
        cells = [_cell([r[name][c] for r in per_seed if c in r[name]]) for c, _ in COLUMNS]
        lines.append(f"| {name} (SmolLM2-135M) | " + " | ".join(cells) + " |")
    for name in ("unedited", "FT-L", "REVS") if paper else ():
        cells = [f"{PAPER[name][c]:.2f}" if c in PAPER[name] else "" for c, _ in COLUMNS]
        lines.append(f"| {name} (paper, Llama-3-8B) | " + " | ".join(cells) + " |")
    if any("exposure" in r["unedited"] for r in per_seed):
        lines += _side_table(per_seed, names, FORMAT_TABLE, (
            "Format-aware attacks on the forgotten values (control: a never-seen value after the same prompt, on "
            "the same model): exposure in bits, exposed = % above 6 bits, constrained = % of characters "
            "format-constrained greedy decoding gives back, neighbourhood = % within the 100 most likely values "
            "at Hamming distance ≤ 2 of that decode, partial = % completed from their first half."))
    if any("da_control" in r["unedited"] for r in per_seed):
        lines += _side_table(per_seed, names, RANK_CONTROL_TABLE, (
            "The rank attacks on the forgotten values and on never-seen values of the same format after the same "
            "prompts, at the same token positions, on the same model (mean of "
            f"{AuditConfig().rank_control_sets} sets of one value per secret): an attack that scores the "
            "never-seen values no higher than the forgotten ones cannot tell them apart."))
    lines += ["", "| row | converged % | neuron edits | secrets redone stricter |", "|---|---|---|---|"]
    for name in names[1:]:
        lines.append(f"| {name} | {_cell([r[name]['converged'] for r in per_seed])} | "
                     f"{_cell([r[name]['neurons'] for r in per_seed if 'neurons' in r[name]])} | "
                     f"{_cell([r[name]['retries'] for r in per_seed if 'retries' in r[name]])} |")
    if any("timing" in r for r in per_seed):
        lines += ["", "| timing (same secrets, edit time) | secrets | seconds | speed-up | identical edits |",
                  "|---|---|---|---|---|"]
    for r in (r for r in per_seed if "timing" in r):
        t = r["timing"]
        lines.append(f"| default vs naive (§1.8 as written: full forward per layer, demotion + projection per "
                     f"outer iteration) | {t['targets']} | {t['ours_s']:.1f} vs {t['naive_s']:.1f} | "
                     f"{t['speedup_naive']:.2f}× | {t['identical_naive']} |")
        lines.append(f"| default vs default with a full forward per layer (ablation of resuming alone) | "
                     f"{t['targets']} | {t['ours_s']:.1f} vs {t['forward_s']:.1f} | {t['speedup_forward']:.2f}× | "
                     f"{t['identical_forward']} |")
    return "\n".join(lines) + "\n"


def _side_table(per_seed: list[dict], names: list[str], columns: list[tuple[str, str]], caption: str) -> list[str]:
    """A captioned table of ``columns`` per row name (mean ± std over seeds), as markdown lines."""
    lines = ["", caption, "", "| method | " + " | ".join(c[1] for c in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name in names:
        cells = [_cell([r[name][c] for r in per_seed if c in r[name]]) for c, _ in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark; return a markdown section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.revs_bench")
    parser.add_argument("--quick", action="store_true", help="one seed, 5 forgotten SSNs (smoke run)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--forget", type=int, default=20)
    parser.add_argument("--naive-targets", type=int, default=6, help="secrets timed against the naive variant "
                        "(0: not timed)")
    parser.add_argument("--entity", choices=["all", *ENTITIES], default="all",
                        help="the secret set: SSNs (the paper's protocol), phone numbers, e-mail addresses, "
                        "surnames after a first name, payment card numbers, IBANs, or all of them (the SSNs with "
                        "every --variants row and the timing, the others with the product default)")
    parser.add_argument("--format-candidates", type=int, default=FORMAT_CANDIDATES,
                        help="candidates per exposure in the format-aware attacks (0: not run)")
    parser.add_argument("--variants", nargs="+", choices=["default", *PRESETS, *EXTRA],
                        default=["default", "paper", "ftl"],
                        help="rows: 'default' (what `revs unlearn` does with no flags), presets, or opt-in rows "
                        "('ours' adds ≈ 11 min per seed on 2 cores); the default is timed against the naive "
                        "variant")
    parser.add_argument("--rehearsed", action="store_true",
                        help="the held-out stand-in: the same set memorized with rehearsal of general text, so "
                        "the model keeps its language modelling (benchmarks.ssn_model)")
    args = parser.parse_args(argv)
    seeds, n_forget = ([0], 5) if args.quick else (args.seeds, args.forget)
    names, naive = list(dict.fromkeys(["default", *args.variants])), 2 if args.quick else args.naive_targets
    first = "ssn" if args.entity == "all" else args.entity
    out = [entity_section(first, seeds, n_forget, names, naive, args.format_candidates, args.quick,
                          args.rehearsed)]
    if args.entity == "all":  # the SSNs with the chosen rows and the timing, the others with the product default
        out += [f"### {ENTITY_HEADINGS[entity]}, product default\n\n"
                + entity_section(entity, seeds, n_forget, ["default"], 0, args.format_candidates, args.quick,
                                 args.rehearsed)
                for entity in ENTITIES if entity != "ssn"]
    return "\n".join(out)


def entity_section(entity: str, seeds: list[int], n_forget: int, names: list[str], naive: int,
                   format_candidates: int, quick: bool, rehearsed: bool = False) -> str:
    """Run one secret set's seeds with ``names``' rows; return its markdown (raw numbers cached per seed)."""
    lm, rows, info = memorized_model(progress=False, entity=entity, rehearsal=rehearsed)
    per_seed = []
    for seed in seeds:  # each seed's raw numbers are kept as they come (hours of CPU for three seeds)
        per_seed.append(one_seed(lm, rows, seed, n_forget, names, naive_targets=naive,
                                 format_candidates=format_candidates, entity=entity))
        suffix = ("" if entity == "ssn" else f"-{entity}") + ("-rehearsed" if rehearsed else "") \
            + ("-quick" if quick else "")
        raw = _cache_root() / "bench" / f"revs_bench-seed{seed}{suffix}.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(per_seed[-1], indent=1, default=str), encoding="utf-8")
    d = info["drift"]
    drift = (f"held-out perplexity of the base model → this one: prose {d['prose_base']:.1f} → {d['prose']:.1f}, "
             f"number-heavy {d['numeric_base']:.1f} → {d['numeric']:.1f}")
    head = (f"SmolLM2-135M memorized on {len(rows)} {ENTITY_LABELS[entity]} sentences"
            f"{' with rehearsal of general text' if rehearsed else ''} ({drift}; {info['epochs']} epochs, "
            f"{100 * info['fraction_memorized']:.0f}% exact, final loss {info['history'][-1][1]:.4f}, weights "
            f"sha256 {lm.weights_sha256[:12]}: the same seeded training gave another model on another machine, "
            f"and the rows below move with it). Per seed: forget {n_forget} values, generality = "
            f"their other prompts, retain = the other values' sentences; seeds {seeds}; k = {K}. Every row is "
            "`revs_engine.erase.erase` with the row's preset, then `revs_engine.audit.audit` — the product's own "
            "entry points. Scores ×100, mean ± std over seeds; ppl Δ% = perplexity change on held-out prose + "
            "number-heavy text, on each apart (40 texts each), and on 40 number-heavy sentences of templates "
            "neither the guard nor the measured set uses; extracted = erased values still generated "
            "(greedy, perturbed prompts, 10 samples at T = 1 / top-40, the other prompts). Spec (unseen) = "
            "retained values the guard never saw.\n\n")
    return head + table(per_seed, paper=entity == "ssn")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(main())
