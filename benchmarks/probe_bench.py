"""Probe benchmark: batched teacher-forced probe vs one ``generate()`` per prompt on SmolLM2-135M.

Both decide, for the same (prefix, target) pairs, whether greedy decoding reproduces the target; verdicts must be
identical (the run fails otherwise). Prints prompts/s for both and their ratio, and the probe's achieved
throughput (tokens/s and GFLOP/s) against the machine's measured fp32 matmul throughput.
``python -m benchmarks.probe_bench [--quick] [--n N]``.

Pairs (:func:`make_pairs`): one third are sequences the base model may or may not continue correctly (counting,
letters, number words, months: about half are reproduced), two thirds are PII-like sentences (a person and an
SSN, phone number or e-mail address: not reproduced by the base model). Every prefix is distinct.

Timing is interleaved: the pairs are cut into chunks of ``--chunk`` (64); for each chunk the probe runs (its own
length-aware batching, at most ``--batch-size`` rows per forward), then one ``generate()`` per pair, then a short
fp32 matmul burst. On a shared machine the available compute drifts over minutes; interleaving exposes both
methods (and the matmul reference) to the same drift, so the ratio measures the methods rather than the
neighbours. Both are warmed up first on pairs that are not timed.

Threads: each method runs at its faster intra-op thread count, 1 or torch's default (the core count), chosen by
timing both on the warm-up pairs (``--threads`` fixes one count for both). On an oversubscribed machine torch's
default can be several times slower than one thread — for ``generate()`` as much as for the probe — and
benchmarking the baseline in its slow setting would flatter the probe.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import time
from pathlib import Path

import torch

from benchmarks._corpus_gen import FIRST, LAST, _email, _phone, _ssn

ROOT = Path(__file__).resolve().parents[1]

_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_PII_TEMPLATES = [
    ("The patient {n} was registered with SSN", _ssn), ("Payroll record for {n}: social security number", _ssn),
    ("The W-2 form of {n} lists the number", _ssn), ("Please contact {n} by email at", _email),
    ("Send the signed copy of the lease to {n} at", _email),
    ("Account holder {n} can be reached at phone", _phone),
    ("For delivery questions call {n} on", _phone),
]


def _sequence_pair(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(4)
    if kind == 0:
        start, step, n = rng.randint(1, 80), rng.choice([1, 1, 2, 5, 10]), rng.randint(4, 7)
        seq = [str(start + step * i) for i in range(n + 2)]
        return ", ".join(seq[:n]) + ",", " " + ", ".join(seq[n:])
    if kind == 1:
        letters = rng.choice([string.ascii_uppercase, string.ascii_lowercase])
        a, n = rng.randint(0, 15), rng.randint(4, 6)
        seq = list(letters[a:a + n + 3])
        return " ".join(seq[:n]), " " + " ".join(seq[n:])
    words = _NUMBER_WORDS if kind == 2 else _MONTHS
    a, n = (0, rng.randint(4, 7)) if kind == 2 else (rng.randint(0, 4), rng.randint(4, 6))
    seq = words[a:a + n + 2]
    return ", ".join(seq[:n]) + ",", " " + ", ".join(seq[n:])


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Return ``n`` distinct (prefix, target) texts, seeded: one third sequences, two thirds PII sentences."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(pairs) < n:
        if len(pairs) % 3 == 0:
            prefix, target = _sequence_pair(rng)
        else:
            template, value = rng.choice(_PII_TEMPLATES)
            prefix, target = template.format(n=f"{rng.choice(FIRST)} {rng.choice(LAST)}"), " " + value(rng)
        if prefix not in seen:
            seen.add(prefix)
            pairs.append((prefix, target))
    return pairs


def matmul_gflops(size: int = 1024, seconds: float = 2.0) -> float:
    """Measure fp32 ``torch.mm`` throughput (GFLOP/s) on this machine for about ``seconds``."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start) / 1e9


def _generate_verdict(model, item, pad: int) -> bool:
    ids = torch.tensor([list(item.prefix_ids)])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(item.target_ids),
                         do_sample=False, pad_token_id=pad)
    return tuple(out[0, ids.shape[1]:].tolist()) == item.target_ids


def fastest_threads(candidates: list[int], run) -> tuple[int, dict[int, float]]:
    """Return the thread count under which ``run()`` is fastest, and the best of two timings per count."""
    times: dict[int, list[float]] = {c: [] for c in candidates}
    for _ in range(2):
        for c in candidates:
            torch.set_num_threads(c)
            start = time.perf_counter()
            run()
            times[c].append(time.perf_counter() - start)
    best = {c: min(v) for c, v in times.items()}
    return min(candidates, key=best.__getitem__), best


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark; return a markdown section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe_bench")
    parser.add_argument("--quick", action="store_true", help="48 pairs instead of 320")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64, help="probe rows per forward pass (at most)")
    parser.add_argument("--chunk", type=int, default=64, help="pairs per interleaved timing chunk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads, both methods")
    args = parser.parse_args(argv)
    candidates = [args.threads] if args.threads else sorted({1, torch.get_num_threads()})
    from revs_engine.loading import load_model
    from revs_engine.probes import ProbeConfig, items_from_texts, plan_batches, probe

    n = args.n or (48 if args.quick else 320)
    lm = load_model("smollm2-135m", cache_dir=ROOT / ".revs" / "cache")
    model, tok = lm.model, lm.tokenizer
    items = items_from_texts(tok, make_pairs(n, seed=args.seed))
    warm = items_from_texts(tok, make_pairs(6, seed=args.seed + 1000))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    cfg = ProbeConfig(batch_size=args.batch_size)

    saved_eos = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = None  # decide over the whole target, like the probe
    ours, theirs, t_probe, t_gen = [], [], 0.0, 0.0
    peaks: dict[int, list[float]] = {c: [] for c in candidates}
    try:
        with torch.no_grad():
            probe(model, warm, config=cfg, pad_id=pad)
            [_generate_verdict(model, it, pad) for it in warm]
            th_probe, cal_probe = fastest_threads(candidates, lambda: probe(model, warm, config=cfg, pad_id=pad))
            th_gen, cal_gen = fastest_threads(candidates, lambda: [_generate_verdict(model, it, pad)
                                                                   for it in warm])
            for s in range(0, n, args.chunk):
                chunk = items[s:s + args.chunk]
                torch.set_num_threads(th_probe)
                start = time.perf_counter()
                ours += probe(model, chunk, config=cfg, pad_id=pad)
                t_probe += time.perf_counter() - start
                torch.set_num_threads(th_gen)
                start = time.perf_counter()
                theirs += [_generate_verdict(model, it, pad) for it in chunk]
                t_gen += time.perf_counter() - start
                for c in candidates:
                    torch.set_num_threads(c)
                    peaks[c].append(matmul_gflops(seconds=0.4))
    finally:
        model.generation_config.eos_token_id = saved_eos

    verdicts = [r.exact_match for r in ours]
    mismatches = sum(a != b for a, b in zip(verdicts, theirs, strict=True))
    n_tokens = sum(len(it.prefix_ids) + len(it.target_ids) - 1 for it in items)
    n_targets = sum(len(it.target_ids) for it in items)
    n_padded = 0  # positions computed including padding, batched as the probe batches each chunk
    for s in range(0, n, args.chunk):
        lengths = [len(it.prefix_ids) + len(it.target_ids) - 1 for it in items[s:s + args.chunk]]
        n_padded += sum(len(b) * max(lengths[i] for i in b) for b in plan_batches(lengths, args.batch_size))
    embed = model.get_input_embeddings().weight.numel()
    body = sum(p.numel() for p in model.parameters()) - embed  # lm_head tied: its matmul is counted below
    flops = 2 * body * n_tokens + 2 * embed * n_targets  # unembedding only at target positions
    th_peak = max(candidates, key=lambda c: statistics.median(peaks[c]))
    peak = statistics.median(peaks[th_peak])
    achieved = flops / t_probe / 1e9
    ceiling = t_gen / (flops / (peak * 1e9))
    rows = [
        "| method | pairs | seconds | prompts/s | reproduced | verdicts identical |",
        "|---|---:|---:|---:|---:|---|",
        f"| batched probe (ours, batch {args.batch_size}) | {n} | {t_probe:.1f} | {n / t_probe:.2f} | "
        f"{sum(verdicts)} | {'yes' if mismatches == 0 else f'NO ({mismatches} differ)'} |",
        f"| one generate() per prompt | {n} | {t_gen:.1f} | {n / t_gen:.2f} | {sum(theirs)} | (baseline) |",
    ]
    text = "\n".join(rows) + (
        f"\n\nSpeed-up: **{t_gen / t_probe:.1f}×** prompts/s ({sum(verdicts)} of {n} pairs reproduced, "
        f"{n - sum(verdicts)} not; {mismatches} verdicts differ).\n\n"
        f"Probe: {n_tokens:,} positions ({n_padded:,} with padding; mean prefix "
        f"{sum(len(it.prefix_ids) for it in items) / n:.1f} and target {n_targets / n:.1f} tokens), "
        f"{n_tokens / t_probe:,.0f} tokens/s = {achieved:.1f} GFLOP/s (2·params·positions + unembedding at "
        f"{n_targets:,} target positions) vs measured fp32 matmul {peak:.1f} GFLOP/s (median of "
        f"{len(peaks[th_peak])} bursts interleaved with the runs at {th_peak} thread(s), range "
        f"{min(peaks[th_peak]):.0f}–{max(peaks[th_peak]):.0f}; "
        + ", ".join(f"{c} thread(s): {statistics.median(v):.0f}" for c, v in peaks.items())
        + f"): **{100 * achieved / peak:.0f}%** of the compute limit.\n\n"
        f"generate(): {n_targets:,} decoding steps (one forward each, KV cache), "
        f"{1000 * t_gen / n_targets:.0f} ms per generated token. A probe running at 100% of the measured matmul "
        f"throughput would be **{ceiling:.1f}×** faster than generate() on these pairs (the ceiling of the "
        f"ratio on this machine: the probe must still compute every prefix and target position).\n\n"
        f"Threads: probe {th_probe}, generate() {th_gen} — each its faster setting on {len(warm)} warm-up pairs "
        f"(probe {_fmt(cal_probe)}; generate() {_fmt(cal_gen)}).\n"
    )
    if mismatches:
        raise AssertionError(f"probe and generate() disagree on {mismatches} of {n} pairs\n\n{text}")
    return text


def _fmt(timings: dict[int, float]) -> str:
    return ", ".join(f"{c} thread(s) {t:.2f} s" for c, t in timings.items())


if __name__ == "__main__":
    print(main())
