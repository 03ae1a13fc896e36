"""Prefect task around :func:`revs_engine.memorize.memorize`: fine-tune a model on a corpus until it memorizes.

Offers :func:`memorize_corpus`: the stand-in for a production model trained on the corpus (DESIGN §7), used by
the demo and the integration tests, and a canary-insertion tool for audits. The model trains on every corpus
document and stops once greedy decoding reproduces the requested fraction of the findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from tasks._logging import run_logger
from tasks.caching import CACHED
from tasks.redaction import redact_failures


@task(name="memorize-corpus", **CACHED)
@redact_failures
def memorize_corpus(model: str, findings: Path, corpus: list[Path], out_dir: Path,
                    config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fine-tune ``model`` on ``corpus`` until it reproduces the findings; save it to ``out_dir``.

    Returns:
        ``{"model_dir", "fraction_memorized", "epochs", "converged"}``.
    """
    from pii_detect.readers import IssueLog, iter_documents
    from pii_detect.schema import FINDINGS_SCHEMA
    from revs_engine.loading import load_model, save_model
    from revs_engine.memorize import MemorizeConfig, memorize
    from tasks import _io, probing_io
    from tasks._workspace import workspace_dir

    loaded = load_model(model, cache_dir=workspace_dir("cache"))
    tok = loaded.tokenizer
    texts = [tok(d.text, add_special_tokens=False)["input_ids"] for d in iter_documents(corpus, None, IssueLog())]
    table = _io.read_table(findings, FINDINGS_SCHEMA)
    _, items = probing_io.probe_items(tok, probing_io.read_probe_texts(table))
    cfg = MemorizeConfig(**{"progress": False, **(config or {})})
    result = memorize(loaded.model, texts, items, cfg, pad_id=tok.pad_token_id or 0)
    save_model(loaded.model, tok, Path(out_dir))
    run_logger().info("memorized %.0f%% of %d findings in %d epochs", 100 * result.fraction_memorized,
                          len(items), result.epochs)
    return {"model_dir": Path(out_dir), "fraction_memorized": result.fraction_memorized, "epochs": result.epochs,
            "converged": result.converged}
