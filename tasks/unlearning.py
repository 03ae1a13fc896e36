"""Prefect task around REVS: erase the selected findings from one model version.

Offers :func:`unlearn` (cached on the parent weights, the probes, the findings and the policy's ``[revs]`` table,
and idempotent on its output directory: an edit is never computed twice for the same inputs). The configuration
is the policy's ``[revs]`` table resolved for the model's tokenizer (:func:`tasks.unlearning_io.erase_config`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task

from pii_detect.schema import FINDINGS_SCHEMA
from tasks._logging import run_logger
from tasks.caching import CACHED
from tasks.redaction import redact_failures
from tasks.results import EditResult

MANIFEST = Path("patch") / "manifest.json"


@task(name="unlearn", **CACHED)
@redact_failures
def unlearn(model_dir: Path, probes: Path, findings: Path, out_dir: Path, revs: dict[str, Any],
            retain: Path | None = None, corpus: list[Path] | None = None) -> EditResult:
    """Erase every probed finding with REVS; save the edited model + patch atomically to ``out_dir``.

    ``retain`` (findings to keep) and benign documents of ``corpus`` guard the edit (:mod:`revs_engine.guard`);
    a configuration that reads a corpus sample takes it from ``corpus`` too.

    An existing ``out_dir`` whose patch manifest names the same parent weights is the finished edit of an
    earlier attempt (directories appear whole or not at all) and is returned as it is.

    Returns:
        The staged version (``config``: the resolved preset and overrides,
        :meth:`revs_engine.presets.EraseConfig.to_dict`).
    """
    from revs_engine.erase_guard import GUARD_BENIGN
    from tasks._workspace import workspace_dir
    from tasks.unlearning_io import run_unlearn

    logger = run_logger()
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST).is_file():
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        logger.info("edit already done in %s; reusing it (never edit twice)", out_dir.name)
        conv = manifest.get("convergence") or {}
        return EditResult(model_dir=out_dir, base_sha256=manifest["base_weights_sha256"],
                          edited_sha256=manifest["edited_weights_sha256"], targets=conv.get("targets", 0),
                          converged=conv.get("converged", 0), config=manifest.get("config") or {})
    from tasks._io import read_table

    table, benign = read_table(findings, FINDINGS_SCHEMA), []  # read once: the benign texts and the erase use it
    if corpus:
        from tasks import audit_io

        benign = audit_io.benign_texts(list(corpus), [table], limit=GUARD_BENIGN, half=audit_io.GUARD_HALF)
    report = run_unlearn(str(model_dir), probes, table, out_dir, cache_dir=workspace_dir("cache"),
                         overrides=revs, retain_findings=Path(retain) if retain else None, benign=benign,
                         corpus=list(corpus) if corpus else None)
    logger.info("erase (%s): %d/%d targets converged in %.1f s", report.config["preset"], report.converged,
                len(report.rows), report.seconds)
    return EditResult(model_dir=out_dir, base_sha256=report.base_sha256, edited_sha256=report.edited_sha256,
                      targets=len(report.rows), converged=report.converged, config=report.config)

