"""Probe benchmark: batched teacher-forced probe vs one ``generate()`` per prompt on SmolLM2-135M.

Both decide, for the same (prefix, target) pairs, whether greedy decoding reproduces the target; verdicts must be
identical. Prints prompts/s for both and their ratio, and the probe's achieved throughput (tokens/s and GFLOP/s)
against the machine's measured fp32 matmul throughput. ``python -m benchmarks.probe_bench [--quick]``.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

_COUNTING = ["one two three four five six", "1, 2, 3, 4, 5, 6, 7, 8",
             "Monday, Tuesday, Wednesday, Thursday, Friday", "January, February, March, April, May, June",
             "A B C D E F G H I J", "10 20 30 40 50 60 70"]
_NAMES = ["Maria Lopez", "John Smith", "Dana Whitfield", "Leo Park", "Priya Nair", "Omar Haddad", "Ana Silva"]
_TEMPLATES = ["The patient {n} was registered with SSN", "Payroll record for {n}: social security number",
              "Please contact {n} by email at", "The W-2 form of {n} lists the number",
              "Account holder {n} can be reached at phone"]


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Return ``n`` (prefix, target) texts: predictable sequences (often reproduced) and PII-like sentences."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        if i % 3 == 0:
            words = _COUNTING[i % len(_COUNTING)].split(" ")
            cut = rng.randint(3, len(words) - 2)
            pairs.append((" ".join(words[:cut]), " " + " ".join(words[cut:cut + 2])))
        else:
            name = rng.choice(_NAMES)
            prefix = rng.choice(_TEMPLATES).format(n=name)
            ssn = f" {rng.randint(100, 899)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
            pairs.append((prefix, ssn))
    return pairs


def matmul_gflops(size: int = 1024, seconds: float = 2.0) -> float:
    """Measure fp32 ``torch.mm`` throughput (GFLOP/s) on this machine."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start) / 1e9


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark; return a markdown section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe_bench")
    parser.add_argument("--quick", action="store_true", help="40 pairs instead of 320")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    from revs_engine.loading import load_model
    from revs_engine.probes import ProbeConfig, items_from_texts, probe

    n = args.n or (40 if args.quick else 320)
    lm = load_model("smollm2-135m", cache_dir=ROOT / ".revs" / "cache")
    model, tok = lm.model, lm.tokenizer
    items = items_from_texts(tok, make_pairs(n))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0

    start = time.perf_counter()
    ours = probe(model, items, config=ProbeConfig(batch_size=args.batch_size), pad_id=pad)
    t_probe = time.perf_counter() - start

    saved_eos = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = None  # decide over the whole target, like the probe
    try:
        start = time.perf_counter()
        theirs = []
        with torch.no_grad():
            for it in items:
                ids = torch.tensor([list(it.prefix_ids)])
                out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(it.target_ids),
                                     do_sample=False, pad_token_id=pad)
                theirs.append(tuple(out[0, ids.shape[1]:].tolist()) == it.target_ids)
        t_gen = time.perf_counter() - start
    finally:
        model.generation_config.eos_token_id = saved_eos

    verdicts = [r.exact_match for r in ours]
    mismatches = sum(a != b for a, b in zip(verdicts, theirs, strict=True))
    n_tokens = sum(len(it.prefix_ids) + len(it.target_ids) - 1 for it in items)
    n_targets = sum(len(it.target_ids) for it in items)
    embed = model.get_input_embeddings().weight.numel()
    body = sum(p.numel() for p in model.parameters()) - embed  # lm_head tied: its matmul is counted below
    flops = 2 * body * n_tokens + 2 * embed * n_targets  # unembedding only at target positions
    peak = matmul_gflops()
    achieved = flops / t_probe / 1e9
    rows = [
        "| method | pairs | seconds | prompts/s | reproduced | verdicts identical |",
        "|---|---|---|---|---|---|",
        f"| batched probe (ours, batch {args.batch_size}) | {n} | {t_probe:.2f} | {n / t_probe:.1f} | "
        f"{sum(verdicts)} | {'yes' if mismatches == 0 else f'NO ({mismatches} differ)'} |",
        f"| one generate() per prompt | {n} | {t_gen:.2f} | {n / t_gen:.1f} | {sum(theirs)} | (baseline) |",
    ]
    text = "\n".join(rows) + (
        f"\n\nSpeed-up: **{t_gen / t_probe:.1f}×** prompts/s. "
        f"Probe throughput: {n_tokens / t_probe:,.0f} tokens/s "
        f"= {achieved:.1f} GFLOP/s (2·params·tokens + unembedding at {n_targets} target positions) vs measured "
        f"fp32 matmul {peak:.1f} GFLOP/s on {torch.get_num_threads()} threads: "
        f"**{100 * achieved / peak:.0f}%** of the compute limit.\n"
    )
    if mismatches:
        raise AssertionError(f"probe and generate() disagree on {mismatches} of {n} pairs\n\n{text}")
    return text


if __name__ == "__main__":
    print(main())
