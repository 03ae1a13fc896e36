"""Prefect tasks around :mod:`revs_engine.probes`: which findings does the model reproduce, and which to erase.

Offers :func:`probe_findings` (model directory + findings → probes Parquet, cached on both contents) and
:func:`select_for_erasure` (findings + probes + the policy's memorization criteria → the forget and retain sets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.schema import PROBES_SCHEMA
from tasks import _io, probing_io
from tasks._logging import run_logger
from tasks._models import load_cached
from tasks.caching import CACHED
from tasks.requests import redact_failures
from tasks.results import Selection


@task(name="probe-findings", **CACHED)
@redact_failures
def probe_findings(model_dir: Path, findings: Path, out: Path) -> Path:
    """Probe every finding against the model (one teacher-forced pass per batch); write the probes table."""
    from revs_engine.probes import ProbeConfig

    loaded = load_cached(model_dir)
    table = _io.read_table(findings, FINDINGS_SCHEMA)
    probes = probing_io.probe_findings(loaded.model, loaded.tokenizer, table, ProbeConfig(max_prefix_tokens=256))
    run_logger().info("probed %d findings: %d reproduced exactly", probes.num_rows,
                          sum(probes.column("exact_match").to_pylist()))
    return _io.write_table(probes, out, PROBES_SCHEMA)


def memorized_mask(probes: pa.Table, exact_match: bool, min_extraction_score: float) -> pa.Array:
    """Return the policy's verdict per probe row: exact greedy reproduction (if counted) or a high score."""
    by_score = pc.greater_equal(probes.column("extraction_score"), min_extraction_score)
    return pc.or_(probes.column("exact_match"), by_score) if exact_match else by_score


@task(name="select-for-erasure")
@redact_failures
def select_for_erasure(findings: Path, probes: Path, criteria: dict[str, Any], out_dir: Path,
                       erase_types: list[str] | None = None) -> Selection:
    """Split probed findings into ``forget`` (memorized per the policy and, with ``erase_types``, of one of those
    entity types) and ``retain`` (the rest); the guard (:attr:`~tasks.results.Selection.guard_findings`) is the
    retained findings the model reproduces exactly."""
    table = _io.read_table(findings, FINDINGS_SCHEMA)
    probed = _io.read_table(probes, PROBES_SCHEMA)
    mask = memorized_mask(probed, bool(criteria.get("exact_match", True)),
                          float(criteria.get("min_extraction_score", 1.0)))
    if erase_types is not None:  # memorized findings of other types are kept (they guard the edit)
        wanted = pa.array(erase_types, pa.string())
        erasable = table.filter(pc.is_in(table.column("entity_type"), value_set=wanted))
        mask = pc.and_(mask, pc.is_in(probed.column("finding_id"), value_set=erasable.column("finding_id")))
    forget_probes = probed.filter(mask)
    forget_ids = pa.array(forget_probes.column("finding_id").to_pylist(), pa.string())
    is_forget = pc.is_in(table.column("finding_id"), value_set=forget_ids)
    # what the edit must keep working: retained findings the model reproduces exactly (the REVS retain guard)
    kept_ids = probed.filter(pc.and_(probed.column("exact_match"), pc.invert(mask))).column("finding_id")
    out_dir = Path(out_dir)
    out = Selection(
        forget_findings=_io.write_table(table.filter(is_forget), out_dir / "forget.parquet", FINDINGS_SCHEMA),
        forget_probes=_io.write_table(forget_probes, out_dir / "forget_probes.parquet", PROBES_SCHEMA),
        retain_findings=_io.write_table(table.filter(pc.invert(is_forget)), out_dir / "retain.parquet",
                                        FINDINGS_SCHEMA),
        guard_findings=_io.write_table(table.filter(pc.is_in(table.column("finding_id"), value_set=kept_ids)),
                                       out_dir / "guard.parquet", FINDINGS_SCHEMA),
        n_forget=forget_probes.num_rows, n_retain=table.num_rows - forget_probes.num_rows)
    run_logger().info("%d findings selected for erasure, %d retained", out.n_forget, out.n_retain)
    return out
