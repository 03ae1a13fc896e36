"""Prefect tasks around :mod:`revs_engine.probes`: which findings does the model reproduce, and which to erase.

Offers :func:`probe_findings` (model directory + findings → probes Parquet, cached on both contents),
:func:`split_findings` (contiguous slices to probe in partitions),
:func:`carry_judged` (what a version's memorization inventory already judged is not probed again),
:func:`combine_probes` and :func:`select_for_erasure` (findings + probes + the policy's memorization criteria →
the forget and retain sets).
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
from tasks.redaction import redact_failures
from tasks.results import Judged, Selection


@task(name="probe-findings", **CACHED)
@redact_failures
def probe_findings(model_dir: Path, findings: Path, out: Path) -> Path:
    """Probe every finding against the model (one teacher-forced pass per batch); write the probes table."""
    from revs_engine.probes import ProbeConfig, batch_size_for

    table = _io.read_table(findings, FINDINGS_SCHEMA)
    if not table.num_rows:  # nothing new to probe: the model is not loaded
        return _io.write_table(PROBES_SCHEMA.empty_table(), out, PROBES_SCHEMA)
    loaded = load_cached(model_dir)
    # rows of at most 256 prefix tokens plus the value; batches as large as the device's free memory allows
    cfg = ProbeConfig(max_prefix_tokens=256, batch_size=batch_size_for(loaded.model, 256 + 64))
    probes = probing_io.probe_findings(loaded.model, loaded.tokenizer, table, cfg)
    run_logger().info("probed %d findings: %d reproduced exactly", probes.num_rows,
                          sum(probes.column("exact_match").to_pylist()))
    return _io.write_table(probes, out, PROBES_SCHEMA)


@task(name="carry-judged")
@redact_failures
def carry_judged(findings: Path, inventory: Path | None, criteria: dict[str, Any], out_dir: Path,
                 erase_types: list[str] | None = None) -> Judged:
    """Split findings into those the model version's inventory already judged (probe rows carried over from it)
    and those to probe (:attr:`~tasks.results.Judged.unjudged`).

    A finding is judged when the inventory holds its id with the same document text (``doc_sha256``: the same
    prompt) and value. A row the version inherited from its parent unjudged (:data:`tasks.inventory.INHERITED`) is
    probed again when it was memorized (the edit may have broken it: collateral damage its audit did not check);
    an inherited ``not_memorized`` row is carried (an erasure is assumed not to make the model reproduce a value it
    did not). Judged findings that would be erased under ``criteria``
    and ``erase_types`` are probed again all the same: the erasure needs their full probe, and a fresh one confirms
    the inventory. A carried probe row holds the inventory's ``exact_match`` and ``extraction_score``
    (``memorized`` by ``criteria``); the columns the inventory does not keep (token counts, ranks) are null.
    """
    from tasks.inventory import INHERITED, INVENTORY_SCHEMA, MEMORIZED

    table = _io.read_table(findings, FINDINGS_SCHEMA)
    known: dict[str, dict] = {}
    if inventory is not None and Path(inventory).is_file():
        inv = _io.read_table(inventory, INVENTORY_SCHEMA)
        columns = ["finding_id", "doc_sha256", "value_hmac", "entity_type", "exact_match", "extraction_score",
                   "judged_by", "status"]
        known = {r["finding_id"]: r for r in inv.select(columns).to_pylist()
                 if not (r["judged_by"].startswith(INHERITED) and r["status"] == MEMORIZED)}
    same = ("doc_sha256", "value_hmac", "entity_type")  # the same prompt and value as when it was judged
    rows = table.select(["finding_id", *same]).to_pylist()
    judged = [(r, j) for r in rows
              if (j := known.get(r["finding_id"])) is not None and all(j[c] == r[c] for c in same)]
    carried = pa.Table.from_pylist(
        [{"finding_id": r["finding_id"], "exact_match": bool(j["exact_match"]),
          "extraction_score": float(j["extraction_score"])} for r, j in judged], schema=PROBES_SCHEMA)
    memorized = memorized_mask(carried, bool(criteria.get("exact_match", True)),
                               float(criteria.get("min_extraction_score", 1.0)))
    carried = carried.set_column(PROBES_SCHEMA.get_field_index("memorized"), "memorized", memorized)
    types = {r["finding_id"]: r["entity_type"] for r in rows}
    again = pc.and_(memorized, pa.array([erase_types is None or types[f] in erase_types
                                         for f in carried.column("finding_id").to_pylist()], pa.bool_()))
    carried = carried.filter(pc.invert(again))
    todo = pc.invert(pc.is_in(table.column("finding_id"), value_set=carried.column("finding_id")))
    out_dir = Path(out_dir)
    out = Judged(unjudged=_io.write_table(table.filter(todo), out_dir / "unjudged.parquet", FINDINGS_SCHEMA),
                 carried=_io.write_table(carried, out_dir / "carried_probes.parquet", PROBES_SCHEMA),
                 n_unjudged=table.num_rows - carried.num_rows, n_carried=carried.num_rows)
    run_logger().info("%d findings already judged by the inventory (carried over), %d to probe", out.n_carried,
                      out.n_unjudged)
    return out


@task(name="split-findings")
@redact_failures
def split_findings(findings: Path, parts: int, out_dir: Path) -> list[Path]:
    """Cut a findings table into at most ``parts`` contiguous slices of about equal size (in order), written as
    ``findings.part<i>.parquet`` under ``out_dir``: what partitioned probing maps over."""
    table = _io.read_table(findings, FINDINGS_SCHEMA)
    n = max(1, min(parts, table.num_rows))
    bounds = [round(i * table.num_rows / n) for i in range(n + 1)]
    return [_io.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]),
                            Path(out_dir) / f"findings.part{i}.parquet", FINDINGS_SCHEMA) for i in range(n)]


@task(name="combine-probes")
@redact_failures
def combine_probes(parts: list[Path], out: Path) -> Path:
    """Concatenate probes tables (carried over + freshly probed) into one."""
    return _io.write_table(pa.concat_tables([_io.read_table(p, PROBES_SCHEMA) for p in parts]), out,
                           PROBES_SCHEMA)


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
