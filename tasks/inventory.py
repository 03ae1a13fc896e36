"""The memorization inventory: per registered model version, which findings the model reproduces.

Offers :data:`INVENTORY_SCHEMA`, :func:`inventory_path`, and the tasks :func:`record_inventory` (probes of a
version → its inventory), :func:`sample_findings` (a bounded, seeded sample of a corpus's findings to probe when a
version has no inventory), :func:`split_inventory` (what an erasure guards with and what its audit holds out) and
:func:`update_after_edit` (the new version's inventory from its parent's and the audit).

One Parquet table per version, ``REVS_HOME/inventory/<model>/v<N>.parquet``, with finding ids, value HMACs,
locations and probe statistics — never values (the value is re-read from the corpus when a guard needs it).
``status``: ``memorized`` (the probe or the audit saw the model reproduce it), ``not_memorized``, ``erased`` (an
erasure of this lineage removed it) or ``lost`` (reproduced by the parent, no longer by this version: collateral
damage the audit measured). ``judged_by`` names the run that last judged a row on this version; a row a new
version inherits from its parent unjudged (the edit's audit did not check it) is marked ``parent:<run>``
(:data:`INHERITED`): the next sweep probes it again on the new version when it was memorized. A re-probe that
finds an ``erased`` or ``lost`` value still not reproduced keeps that status. Each table is logged to MLflow with
the run that wrote it (artifact ``inventory/``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.erase_guard import GUARD_ITEMS
from revs_engine.schema import AUDIT_SCHEMA, PROBES_SCHEMA
from tasks import _io
from tasks._logging import run_logger
from tasks._workspace import workspace_dir
from tasks.redaction import redact_failures

INVENTORY_SCHEMA = pa.schema(
    [*FINDINGS_SCHEMA,
     pa.field("exact_match", pa.bool_()),  # greedy decoding reproduced it (probe or audit), when last judged
     pa.field("extraction_score", pa.float64()),  # share of its tokens greedy-predicted (teacher forced)
     pa.field("status", pa.string()),  # memorized | not_memorized | erased | lost
     pa.field("judged_by", pa.string()),  # run id of the last judgement
     pa.field("version", pa.int64())],  # the model version this row describes
    metadata={"name": "inventory", "version": "1"},
)
MEMORIZED = "memorized"
#: Prefix of ``judged_by`` on a row a version inherited from its parent without judging it.
INHERITED = "parent:"
_KEPT_WHEN_ABSENT = ("erased", "lost")  # statuses a probe that does not reproduce the value leaves as they are


def inventory_path(model_name: str, version: int) -> Path:
    """Return where version ``version``'s inventory lives (it may not exist)."""
    return workspace_dir("inventory", model_name) / f"v{int(version)}.parquet"


def _read(path: Path) -> pa.Table:
    return _io.read_table(path, INVENTORY_SCHEMA)


#: The order a seeded sample or split draws from: what the findings contain and where in a document, never their
#: ids (hashes of the corpus's absolute paths) or row order, so one corpus gives one split wherever it lives.
CONTENT_ORDER = [(column, "ascending") for column in
                 ("doc_sha256", "doc_key", "start", "end", "entity_type", "value_hmac")]


def _write(table: pa.Table, model_name: str, version: int) -> Path:
    table = table.sort_by("finding_id")
    return _io.write_table(table.select(INVENTORY_SCHEMA.names), inventory_path(model_name, version),
                           INVENTORY_SCHEMA)


@task(name="record-inventory")
@redact_failures
def record_inventory(model_name: str, version: int, findings: Path, probes: Path, run_id: str,
                     criteria: dict[str, Any]) -> Path:
    """Write (or extend) version ``version``'s inventory with these probes; return its path.

    A finding is ``memorized`` by the policy's criteria (:func:`tasks.probing.memorized_mask`); rows of findings
    judged before keep their place, updated by this run.
    """
    from tasks.probing import memorized_mask

    table = _io.read_table(findings, FINDINGS_SCHEMA)
    probed = _io.read_table(probes, PROBES_SCHEMA)
    mask = memorized_mask(probed, bool(criteria.get("exact_match", True)),
                          float(criteria.get("min_extraction_score", 1.0))).to_pylist()
    stats = {r["finding_id"]: (r["exact_match"], r["extraction_score"], m)
             for r, m in zip(probed.select(["finding_id", "exact_match", "extraction_score"]).to_pylist(), mask,
                             strict=True)}
    path = inventory_path(model_name, version)
    before = {r["finding_id"]: r for r in _read(path).to_pylist()} if path.is_file() else {}

    def status(finding_id: str) -> str:
        if stats[finding_id][2]:
            return MEMORIZED
        previous = before.get(finding_id, {}).get("status")
        return previous if previous in _KEPT_WHEN_ABSENT else "not_memorized"

    rows = [{**f, "exact_match": stats[f["finding_id"]][0], "extraction_score": stats[f["finding_id"]][1],
             "status": status(f["finding_id"]), "judged_by": run_id, "version": int(version)}
            for f in table.to_pylist() if f["finding_id"] in stats]
    fresh = {r["finding_id"] for r in rows}
    rows += [r for fid, r in before.items() if fid not in fresh]
    out = _write(pa.Table.from_pylist(rows, schema=INVENTORY_SCHEMA), model_name, version)
    run_logger().info("inventory of %s v%d: %d findings, %d memorized", model_name, version, len(rows),
                      sum(r["status"] == MEMORIZED for r in rows))
    return out


def missing_types(model_name: str, version: int, findings: Path) -> list[str]:
    """Return the entity types of ``findings`` that version ``version``'s inventory holds no row of (all of them
    when it has no inventory): an inventory built by a sweep over SSNs knows nothing of e-mail addresses."""
    present = set(_io.read_table(findings, FINDINGS_SCHEMA).column("entity_type").to_pylist())
    path = inventory_path(model_name, version)
    known = set(_read(path).column("entity_type").to_pylist()) if path.is_file() else set()
    return sorted(present - known)


@task(name="sample-findings")
@redact_failures
def sample_findings(findings: Path, n: int, seed: int, out: Path, exclude: Path | None = None,
                    types: list[str] | None = None) -> Path:
    """Return a seeded sample of at most ``n`` findings (none of ``exclude``'s values; only ``types`` when given):
    what a version probes to build its inventory, or to extend it to entity types it never saw."""
    table = _io.read_table(findings, FINDINGS_SCHEMA)
    if exclude is not None:
        gone = _io.read_table(exclude, FINDINGS_SCHEMA).column("value_hmac")
        table = table.filter(pc.invert(pc.is_in(table.column("value_hmac"), value_set=gone)))
    if types is not None:
        table = table.filter(pc.is_in(table.column("entity_type"), value_set=pa.array(types, pa.string())))
    table = table.sort_by(CONTENT_ORDER)
    picks = sorted(random.Random(seed).sample(range(table.num_rows), min(n, table.num_rows)))
    run_logger().info("inventory sample: %d of %d findings", len(picks), table.num_rows)
    return _io.write_table(table.take(pa.array(picks, pa.int64())), out, FINDINGS_SCHEMA)


@task(name="split-inventory")
@redact_failures
def split_inventory(inventory: Path, exclude: Path, out_dir: Path, holdout_pct: float, seed: int,
                    holdout_limit: int, extra_guard: Path | None = None) -> dict[str, Any]:
    """Split the memorized findings of an inventory, minus every value of ``exclude`` (what is being erased), into
    the erasure's guard and the audit's held-out slice (seeded; ``holdout_pct`` % held out, at least one of two
    or more, at most ``holdout_limit``; the guard at most :data:`revs_engine.erase_guard.GUARD_ITEMS`).
    ``extra_guard``: findings the guard holds in any case (the run's own retained memorized findings).

    Returns:
        ``{"guard", "holdout", "audit": Path, "n_guard", "n_holdout": int}``: findings tables (``audit`` = both
        parts: what Specificity checks, reported apart as guarded and unseen).
    """
    inv = _read(inventory)
    gone = _io.read_table(exclude, FINDINGS_SCHEMA).column("value_hmac")
    kept = inv.filter(pc.and_(pc.equal(inv.column("status"), MEMORIZED),
                              pc.invert(pc.is_in(inv.column("value_hmac"), value_set=gone))))
    kept = kept.sort_by(CONTENT_ORDER)
    order = list(range(kept.num_rows))
    random.Random(seed).shuffle(order)
    n_hold = round(len(order) * holdout_pct / 100)
    if holdout_pct > 0 and len(order) >= 2:  # a small inventory still holds one out: unseen Specificity exists
        n_hold = max(n_hold, 1)
    hold, guard = order[:n_hold][:holdout_limit], order[n_hold:][:GUARD_ITEMS]
    findings = kept.select(FINDINGS_SCHEMA.names)
    take = lambda rows: findings.take(pa.array(sorted(rows), pa.int64()))  # noqa: E731
    guard_t, hold_t = take(guard), take(hold)
    if extra_guard is not None:
        extra = _io.read_table(extra_guard, FINDINGS_SCHEMA)
        extra = extra.filter(pc.invert(pc.is_in(extra.column("finding_id"), value_set=pa.concat_arrays(
            [guard_t.column("finding_id").combine_chunks(), hold_t.column("finding_id").combine_chunks()]))))
        guard_t = pa.concat_tables([extra, guard_t])
    out_dir = Path(out_dir)
    out = {"guard": _io.write_table(guard_t, out_dir / "inventory_guard.parquet", FINDINGS_SCHEMA),
           "holdout": _io.write_table(hold_t, out_dir / "inventory_holdout.parquet", FINDINGS_SCHEMA),
           "audit": _io.write_table(pa.concat_tables([guard_t, hold_t]), out_dir / "inventory_audit.parquet",
                                    FINDINGS_SCHEMA),
           "n_guard": guard_t.num_rows, "n_holdout": hold_t.num_rows}
    run_logger().info("inventory: %d memorized findings kept; guard %d, held out %d", kept.num_rows, len(guard),
                      len(hold))
    return out


@task(name="update-inventory")
@redact_failures
def update_after_edit(model_name: str, parent: int, version: int, erased: Path, audit: Path, run_id: str,
                      erased_probes: Path | None = None) -> Path:
    """Write version ``version``'s inventory: its parent's, with the erased values ``erased`` and what the audit
    saw of the retained items (still reproduced: ``memorized``; no longer: ``lost``); other rows carry over as
    inherited (``judged_by`` = :data:`INHERITED` + the parent's judge): nothing judged them on this version.

    ``erased_probes``: the erased findings probed on the new version. Their rows take that probe's
    ``exact_match`` and ``extraction_score`` (``memorized`` again when it still reproduces the value), so no row
    judged by this run carries a score measured on the parent; an erased row without a probe there keeps the
    parent's score and is marked inherited."""
    parent_path = inventory_path(model_name, parent)
    rows = _read(parent_path).to_pylist() if parent_path.is_file() else []
    gone = set(_io.read_table(erased, FINDINGS_SCHEMA).column("value_hmac").to_pylist())
    table = _io.read_table(audit, AUDIT_SCHEMA)
    seen = {r["target_id"]: r["score"] > 0 for r in table.to_pylist()
            if r["stage"] == "after" and r["metric"] == "specificity" and r["target_id"] != "*"}
    fresh = {} if erased_probes is None else {
        r["finding_id"]: r for r in _io.read_table(erased_probes, PROBES_SCHEMA).select(
            ["finding_id", "exact_match", "extraction_score"]).to_pylist()}
    out = []
    for r in rows:
        r = {**r, "version": int(version)}
        if r["value_hmac"] in gone and (probe := fresh.get(r["finding_id"])) is not None:
            exact = bool(probe["exact_match"])
            r |= {"status": MEMORIZED if exact else "erased", "exact_match": exact,
                  "extraction_score": float(probe["extraction_score"]), "judged_by": run_id}
        elif r["value_hmac"] in gone:
            judge = r["judged_by"] if r["judged_by"].startswith(INHERITED) else INHERITED + r["judged_by"]
            r |= {"status": "erased", "exact_match": False, "judged_by": judge if fresh else run_id}
        elif r["finding_id"] in seen:
            kept = seen[r["finding_id"]]
            status = MEMORIZED if kept else ("lost" if r["status"] == MEMORIZED else r["status"])
            r |= {"status": status, "exact_match": kept, "judged_by": run_id}
        elif not r["judged_by"].startswith(INHERITED):
            r["judged_by"] = INHERITED + r["judged_by"]
        out.append(r)
    path = _write(pa.Table.from_pylist(out, schema=INVENTORY_SCHEMA), model_name, version)
    lost = sum(r["status"] == "lost" for r in out)
    run_logger().info("inventory of %s v%d: %d rows, %d erased, %d lost", model_name, version, len(out),
                      sum(r["status"] == "erased" for r in out), lost)
    return path
