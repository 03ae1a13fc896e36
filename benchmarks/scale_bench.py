"""Scaling benchmark: the same erasure on llama-architecture models of growing size, fp32 and bf16, and the guard's
memory against its size.

Models (all with SmolLM2's tokenizer and vocabulary): the real SmolLM2-135M (the embedded default), and random
llama models built from configs — SmolLM2-360M's shape (≈ 362M) and a 1B shape (hidden 2048, MLP 8192, 16
layers: ≈ 1.07B); with a CUDA device also an 8B shape (Llama-3-8B's layers on SmolLM2's vocabulary, ≈ 7B) in bf16.
Every model erases the same kind of secret: its own greedy continuation (10 tokens) of prompts from the SSN
benchmark's templates — what it reproduces is what it has memorized, by definition — guarded by its continuations
of other prompts, benign text and the decoys the preset asks for. The erasure is
:func:`revs_engine.erase.erase` with the default preset for SmolLM2's tokenizer
(:func:`revs_engine.presets.default_preset`: ``digits``), and its naive variant (``naive=True``: the method's
pseudocode as written) on the same inputs.

Each measurement runs in its own process, so its peak memory (``VmHWM``, the peak resident set) is its own.
Seconds per target token are the edit time (:attr:`~revs_engine.erase.EraseResult.seconds`; the guard's streaming
pass is timed apart). The growth exponent is the least-squares slope of log(seconds per target) on log(parameters).

``python -m benchmarks.scale_bench [--quick] [--sizes 135m 360m 1b] [--dtypes fp32 bf16] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

#: Model shapes beside the real SmolLM2-135M: config overrides on SmolLM2's own config.
SHAPES = {
    "360m": {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32, "num_attention_heads": 15,
             "num_key_value_heads": 5},
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8},
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "tie_word_embeddings": False},
    # --quick only: small random shapes, to run the whole benchmark in a minute
    "q30m": {"hidden_size": 384, "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 6,
             "num_key_value_heads": 2},
    "q60m": {"hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 6, "num_attention_heads": 8,
             "num_key_value_heads": 2},
}
SECRET_TOKENS = 10
GUARD_TEXTS = 16  # benign texts in the guard of the scaling runs (1× in the guard-memory table: 48)


def _cache() -> Path:
    return Path(os.environ.get("REVS_HOME", ".revs")).resolve() / "cache"


# -- one measurement (child process) ---------------------------------------------------------------------------
def build(size: str, dtype: str, device: str):
    """Return ``(model, tokenizer)``: the real SmolLM2-135M, or a random llama of ``size`` with its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from revs_engine.devices import parse_device, parse_dtype
    from revs_engine.loading import load_model, materialize_embedded

    if size == "135m":
        real = load_model("smollm2-135m", cache_dir=_cache(), dtype=dtype, device=device)
        return real.model, real.tokenizer
    path = materialize_embedded("smollm2-135m", _cache())
    cfg = LlamaConfig.from_pretrained(path)
    for key, value in SHAPES[size].items():
        setattr(cfg, key, value)
    cfg.head_dim = cfg.hidden_size // cfg.num_attention_heads
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=parse_dtype(dtype) or torch.float32)
    return model.to(parse_device(device)).eval().requires_grad_(False), AutoTokenizer.from_pretrained(path)


@torch.no_grad()
def _greedy(model, prompt: list[int], n: int) -> list[int]:
    device = next(model.parameters()).device
    ids, out = torch.tensor([prompt], device=device), []
    for _ in range(n):
        nxt = model(input_ids=ids, use_cache=False).logits[0, -1].argmax().view(1, 1)
        out.append(int(nxt))
        ids = torch.cat([ids, nxt], 1)
    return out


def make_inputs(model, tok, n_secrets: int, n_keep: int, n_texts: int):
    """The erase inputs: ``n_secrets`` greedy continuations to forget, ``n_keep`` to keep, ``n_texts`` benign."""
    from benchmarks.benign_text import numeric_sentences, prose_paragraphs
    from benchmarks.ssn_data import make_dataset
    from revs_engine.erase import EraseInputs, Secret
    from revs_engine.probes import ProbeItem

    def encode(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    prompts = [encode(r.prompt) for r in make_dataset(20, 0)][: n_secrets + n_keep]
    secrets, keep = [], []
    for i, p in enumerate(prompts):
        value = _greedy(model, p, SECRET_TOKENS)
        if i < n_secrets:
            secrets.append(Secret(tuple(p), tuple(value), tuple(tok.decode([t]) for t in value)))
        else:
            keep.append(ProbeItem(tuple(p), tuple(value)))
    prose = prose_paragraphs(40 + n_texts // 4)[40:]
    texts = prose + numeric_sentences(n_texts - len(prose), seed=777)
    return EraseInputs(tuple(secrets), tuple(keep), tuple(tuple(encode(t)) for t in texts), encode, tok.decode)


def _vm(field: str) -> int:
    """Return a ``/proc/self/status`` memory field in bytes (``VmHWM``: peak resident set; ``VmRSS``: now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set


def child(spec: dict) -> dict:
    """Run one measurement described by ``spec`` and return its numbers."""
    from revs_engine import erase as erase_module
    from revs_engine.arch import resolve_arch
    from revs_engine.edit import restore
    from revs_engine.erase import erase
    from revs_engine.presets import PRESETS, default_preset

    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    start = time.perf_counter()
    model, tok = build(spec["size"], spec["dtype"], spec["device"])
    arch = resolve_arch(model)
    cuda = next(model.parameters()).is_cuda
    out = {**spec, "params": sum(p.numel() for p in model.parameters()), "build_s": time.perf_counter() - start,
           "model_bytes": sum(p.numel() * p.element_size() for p in model.parameters()), "rss_model": _vm("VmRSS")}
    n_texts = spec.get("texts", GUARD_TEXTS)
    erase_module.GUARD_BENIGN = max(erase_module.GUARD_BENIGN, n_texts)  # the guard-memory table grows the guard
    inputs = make_inputs(model, tok, spec["secrets"], spec.get("keep", 4), n_texts)
    cfg = PRESETS[default_preset(inputs.encode)]
    pad = tok.pad_token_id or 0
    _reset_peak()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    stats = erase_module.guard_stats_for(model, arch, inputs, cfg, pad_id=pad)
    out["guard_s"] = time.perf_counter() - t0
    out["guard_positions"] = stats.n_positions if stats is not None else 0
    out["benign_positions"] = sum(len(b[:erase_module.GUARD_PREFIX_TOKENS]) - 1 for b in inputs.benign)
    result = erase(model, arch, inputs, cfg, pad_id=pad, guard_stats=stats)
    out.update(targets=len(result.targets), converged=result.n_converged, s_per_target=result.seconds
               / max(len(result.targets), 1), peak=_vm("VmHWM"),
               cuda_peak=torch.cuda.max_memory_allocated() if cuda else 0)
    restore(model, arch, result.backup)
    n_naive = spec.get("naive", 0)
    if n_naive:
        del stats
        sub = type(inputs)(inputs.forget[:n_naive], inputs.keep, inputs.benign, inputs.encode)
        _reset_peak()
        naive = erase(model, arch, sub, cfg, pad_id=pad, naive=True)
        out.update(naive_targets=len(naive.targets), naive_s_per_target=naive.seconds / max(len(naive.targets), 1),
                   naive_peak=_vm("VmHWM"))
        restore(model, arch, naive.backup)
    return out


def run_child(spec: dict, timeout: float = 3600) -> dict:
    """Run :func:`child` in a fresh interpreter; return its result (or the error it died with)."""
    cmd = [sys.executable, "-m", "benchmarks.scale_bench", "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {**spec, "error": (proc.stderr or proc.stdout).strip()[-800:]}
    return json.loads(lines[-1])


# -- report ----------------------------------------------------------------------------------------------------
def _gb(n: float) -> str:
    return f"{n / 2**30:.2f}"


def exponent(rows: list[dict], key: str) -> float | None:
    """Least-squares slope of log(``key``) on log(parameters) over ``rows`` (None with fewer than two sizes)."""
    pts = [(math.log(r["params"]), math.log(r[key])) for r in rows if r.get(key)]
    if len(pts) < 2:
        return None
    mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def scale_table(rows: list[dict]) -> str:
    """The scaling table and the fitted exponents."""
    lines = ["| model | dtype | device | params | guard positions | guard pass s | targets (converged) | "
             "s/target | naive s/target (targets) | naive / ours | peak memory GB (model weights GB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']} | {r['dtype']} | {r['device']} | failed: {r['error'][-200:]!r} |"
                         + " |" * 7)
            continue
        naive = (f"{r['naive_s_per_target']:.1f} ({r['naive_targets']})" if r.get("naive_targets") else "not run")
        ratio = f"{r['naive_s_per_target'] / r['s_per_target']:.2f}×" if r.get("naive_targets") else "–"
        peak = _gb(r["cuda_peak"]) + " (GPU)" if r.get("cuda_peak") else _gb(r["peak"])
        name = "SmolLM2-135M (real)" if r["size"] == "135m" else f"random llama {r['size']}"
        lines.append(f"| {name} | {r['dtype']} | {r['device']} | {r['params'] / 1e6:.0f}M | "
                     f"{r['guard_positions']} | {r['guard_s']:.0f} | {r['targets']} ({r['converged']}) | "
                     f"{r['s_per_target']:.1f} | {naive} | {ratio} | {peak} ({_gb(r['model_bytes'])}) |")
    lines += ["", "| dtype | device | growth exponent of s/target in parameters (ours) | (naive) |",
              "|---|---|---|---|"]
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        for device in dict.fromkeys(r["device"] for r in rows):
            group = [r for r in rows if r["dtype"] == dtype and r["device"] == device and "error" not in r
                     and not r["size"].startswith("8")]
            ours, naive = exponent(group, "s_per_target"), exponent(group, "naive_s_per_target")
            if ours is not None:
                lines.append(f"| {dtype} | {device} | {ours:.2f} | {'–' if naive is None else f'{naive:.2f}'} |")
    return "\n".join(lines) + "\n"


def memory_table(rows: list[dict]) -> str:
    """The guard-memory table: peak memory of one erasure against the guard's size."""
    lines = ["| guard | positions | guard pass s | peak memory GB | peak − model loaded GB |",
             "|---|---|---|---|---|"]
    ok = [r for r in rows if "error" not in r]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['scale']}× | failed: {r['error'][-200:]!r} | | | |")
            continue
        lines.append(f"| {r['scale']}× ({r['texts']} benign texts) | {r['guard_positions']} | "
                     f"{r['guard_s']:.0f} | {_gb(r['peak'])} | {_gb(r['peak'] - r['rss_model'])} |")
    if len(ok) > 1:
        peaks = [r["peak"] for r in ok]
        lines.append(f"\nLargest peak / smallest peak: {max(peaks) / min(peaks):.3f} (flat within 10 % means "
                     "≤ 1.10).")
    return "\n".join(lines) + "\n"


def guard_memory(size: str, device: str, scales: list[int], base: int) -> list[dict]:
    """Erase one secret with guards of ``scales`` × the positions of a guard holding ``base`` benign texts (the
    benign texts are added until the guard's positions reach each multiple)."""
    spec = {"size": size, "dtype": "fp32", "device": device, "secrets": 1, "keep": 4}
    first = {**run_child({**spec, "texts": base}), "scale": 1, "texts": base}
    rows = [first]
    if "error" in first:
        return rows
    per_text = first["benign_positions"] / base
    for k in scales[1:]:
        texts = base + round((k - 1) * first["guard_positions"] / per_text)
        rows.append({**run_child({**spec, "texts": texts}), "scale": k, "texts": texts})
    return rows


def main(argv: list[str] | None = None) -> str:
    """Run the benchmark; return a markdown section."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_bench")
    parser.add_argument("--quick", action="store_true", help="small random shapes, one secret (smoke run)")
    parser.add_argument("--sizes", nargs="+", default=None, help="135m 360m 1b (and 8b with a GPU)")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--secrets", type=int, default=3, help="secrets erased per run (one target token each)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return ""
    quick = args.quick
    wall = time.perf_counter()
    sizes = args.sizes or (["q30m", "q60m"] if quick else ["135m", "360m", "1b"])
    secrets = 1 if quick else args.secrets
    rows = []
    for dtype in args.dtypes:
        for size in sizes:
            # the naive variant takes ~3× as long: on fewer secrets at 1B (said in the table)
            naive = 1 if size in ("1b", "8b") else secrets
            rows.append(run_child({"size": size, "dtype": dtype, "device": args.device, "secrets": secrets,
                                   "naive": naive}))
            logger.info("%s", rows[-1])
    if torch.cuda.is_available() and args.device == "cpu" and not quick:
        for size in ["135m", "360m", "1b", "8b"]:
            rows.append(run_child({"size": size, "dtype": "bf16", "device": "cuda", "secrets": secrets,
                                   "naive": 1}))
    mem = guard_memory(sizes[0] if quick else "135m", args.device, [1, 4] if quick else [1, 4, 16],
                       8 if quick else 48)
    gpu = ("" if torch.cuda.is_available() else
           " No CUDA device on the machine that ran it: the GPU rows (and the 8B-shaped bf16 model) were not run.")
    head = ("The same erasure (`erase` with the default preset for SmolLM2's tokenizer, `digits`) of each model's "
            f"own greedy {SECRET_TOKENS}-token continuation of {secrets} SSN-benchmark prompt(s), one target "
            "token per secret, guarded by its continuations of 4 other prompts, benign text and 8 decoys per "
            "secret. 135M is the real SmolLM2; the others are random llama models of SmolLM2's vocabulary (their "
            "continuations are what they predict, not knowledge, so their convergence says little). s/target = "
            "edit seconds per target token; the guard's one streaming pass is timed apart. The naive variant "
            "runs on fewer secrets at 1B (the count is in its column). Peak memory = the process's peak resident "
            f"set (`VmHWM`), model weights included.{gpu}\n\n")
    mem_head = ("\n**Guard memory** (SmolLM2-135M, fp32, one secret): the guard's benign texts multiplied; the "
                "erase's guard budget is raised to hold them.\n\n")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cost = (f"\nThis run: {(time.perf_counter() - wall) / 60:.0f} min wall, "
            f"{(usage.ru_utime + usage.ru_stime) / 60:.0f} min of CPU time in its measurement processes.\n")
    return head + scale_table(rows) + mem_head + memory_table(mem) + cost


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    text = main()
    if text:
        print(text)
