"""The SSN- (or phone-, e-mail-) memorizing SmolLM2 of the REVS benchmark, built once and cached by content hash.

Offers :func:`memorized_model` (load or build: fine-tune SmolLM2-135M on all 200 sentences of
:func:`benchmarks.ssn_data.make_dataset` until greedy decoding reproduces every SSN from its prompt, then save fp32
safetensors under ``$REVS_HOME/cache/bench/``) and :func:`encode_rows` (prompt/target token ids per row).

The cache key hashes the dataset, the fine-tuning config and the base weights' sha256, so a change to any of them
builds a new model instead of reusing a stale one.

``rehearsal=True`` builds the other stand-in: the same items memorized while every step also holds the model to
the base model's predictions (KL) on general text (:func:`benchmarks.benign_text.rehearsal_texts`, disjoint from
the held-out perplexity and guard texts), so it keeps its language modelling: a second model for the benchmark's
"nothing else changed" rows.
:func:`language_drift` measures how far either stand-in moved from the base model on held-out text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

from benchmarks.ssn_data import SsnRow, make_dataset
from revs_engine.loading import LoadedModel, load_model
from revs_engine.memorize import MemorizeConfig, memorize
from revs_engine.probes import ProbeItem
from revs_engine.saving import save_dir_atomic

logger = logging.getLogger(__name__)

#: Loss on the SSN tokens of every (prompt, SSN) pair, rate decayed linearly to 0. Measured here: with the loss on
#: whole sentences (lr 3e-4 constant, batch 8) the random dates dominate it and 52 % of the 200 sentences were
#: reproduced after 6 epochs; on the SSN tokens at a constant 3e-4, 55 % after 7 epochs, still flipping digits.
MEMORIZE = MemorizeConfig(lr=4e-4, batch_size=8, max_epochs=12, target_fraction=1.0, warmup_steps=10,
                          lr_decay=True, loss_on="target", seed=0)
#: The rehearsed stand-in: the same training, plus 4 general texts per step held to the base model's predictions.
REHEARSED = dataclasses.replace(MEMORIZE, rehearsal_batch=4)
#: Rehearsal texts are cut to this many tokens (the rehearsal batch's cost stays near the items' own).
REHEARSAL_TOKENS = 64


def _cache_root() -> Path:
    return Path(os.environ.get("REVS_HOME", ".revs")).resolve() / "cache"


def encode_rows(tokenizer, rows: list[SsnRow]) -> list[ProbeItem]:
    """Return one ``(prompt, " " + ssn)`` probe item per row (separately encoded, the targets convention)."""
    out = []
    for r in rows:
        p = tokenizer(r.prompt, add_special_tokens=False)["input_ids"]
        t = tokenizer(r.target, add_special_tokens=False)["input_ids"]
        out.append(ProbeItem(tuple(p), tuple(t)))
    return out


def _key(rows: list[SsnRow], base_sha: str, cfg: MemorizeConfig, rehearsal: list[list[int]]) -> str:
    # the rows hold the values, so another entity's set gets another key; without rehearsal the rehearsal knobs
    # stay out, so models built before they existed keep their key
    conf = dataclasses.asdict(cfg)
    extra = {}
    if rehearsal:
        extra = {"rehearsal": hashlib.sha256(json.dumps(rehearsal).encode()).hexdigest(), "kept": "kl-to-base"}
    else:
        conf = {k: v for k, v in conf.items() if not k.startswith("rehearsal_")}
    payload = json.dumps({"rows": [dataclasses.astuple(r) for r in rows], "base": base_sha, "cfg": conf, **extra},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def rehearsal_ids(tokenizer) -> list[list[int]]:
    """The rehearsal texts as ids, each cut to :data:`REHEARSAL_TOKENS`."""
    from benchmarks.benign_text import rehearsal_texts

    return [tokenizer(t, add_special_tokens=False)["input_ids"][:REHEARSAL_TOKENS] for t in rehearsal_texts()]


def language_drift(base, model, tokenizer) -> dict[str, float]:
    """Perplexity of the base model and of ``model`` on the held-out prose and number-heavy texts
    (:func:`benchmarks.benign_text.benign_texts`): ``{"prose_base", "prose", "numeric_base", "numeric"}``."""
    from benchmarks.benign_text import numeric_sentences, prose_paragraphs
    from revs_engine.metrics import perplexity

    out = {}
    for kind, texts in (("prose", prose_paragraphs()), ("numeric", numeric_sentences())):
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        out[f"{kind}_base"] = perplexity(base, ids).perplexity
        out[kind] = perplexity(model, ids).perplexity
    return out


def memorized_model(n_ssns: int = 40, data_seed: int = 0, *, cfg: MemorizeConfig | None = None,
                    progress: bool = True, entity: str = "ssn",
                    rehearsal: bool = False) -> tuple[LoadedModel, list[SsnRow], dict]:
    """Return the SmolLM2 memorizing ``entity``'s set (SSNs by default; built on first use), the dataset rows,
    and how it was built (``"drift"``: :func:`language_drift`, measured once and kept with the model)."""
    cfg = cfg or (REHEARSED if rehearsal else MEMORIZE)
    cache = _cache_root()
    rows = make_dataset(n_ssns, data_seed, entity)
    base = load_model("smollm2-135m", cache_dir=cache)
    tok = base.tokenizer
    general = rehearsal_ids(tok) if rehearsal else []
    tag = f"{entity}-rehearsed" if rehearsal else entity
    out_dir = cache / "bench" / f"smollm2-{tag}-{_key(rows, base.weights_sha256, cfg, general)}"
    info_path = out_dir / "memorize.json"
    if info_path.exists():
        loaded, info = load_model(out_dir, cache_dir=cache), json.loads(info_path.read_text())
        if "drift" not in info:  # models built before the drift was recorded
            info["drift"] = language_drift(base.model, loaded.model, tok)
            _write_json_atomic(info_path, info)
        return loaded, rows, info
    items = encode_rows(tok, rows)
    texts = [tok(r.sentence, add_special_tokens=False)["input_ids"] for r in rows]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id or 0
    unedited = load_model("smollm2-135m", cache_dir=cache).model  # the drift's and rehearsal's reference
    result = memorize(base.model, texts, items, dataclasses.replace(cfg, progress=progress), pad_id=pad,
                      rehearsal=general, reference=unedited if general else None)
    if not result.converged:  # kept (hours of CPU), but the benchmark reports the fraction it starts from
        logger.warning("memorization reached %.1f%% of %d sentences in %d epochs", 100 * result.fraction_memorized,
                       len(rows), result.epochs)
    info = {**result.to_record(), "history": result.history, "base_sha256": base.weights_sha256,
            "drift": language_drift(unedited, base.model, tok)}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    save_dir_atomic(base.model, tok, out_dir, overwrite=True, extra={"memorize.json": info})
    logger.info("memorized %d sentences in %d epochs (%.0f s)", len(rows), result.epochs, result.seconds)
    return load_model(out_dir, cache_dir=cache), rows, info


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(path)
