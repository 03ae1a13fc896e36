"""The memorization inventory: recorded per version, split into guard and held-out slice, updated by an edit."""

import pyarrow as pa
import pytest

from pii_detect.schema import FINDINGS_SCHEMA
from revs_engine.schema import AUDIT_SCHEMA, PROBES_SCHEMA
from tasks import _io, inventory


def _findings(n, hmac_of=lambda i: f"{i:02d}" * 32):
    return [{"finding_id": f"f{i:02d}", "source": "c.txt", "doc_key": str(i), "doc_sha256": "00" * 32, "start": 0,
             "end": 5, "entity_type": "US_SSN", "score": 1.0, "recognizer": "t", "value_hmac": hmac_of(i),
             "masked_preview": "***"} for i in range(n)]


def _probes(rows, memorized):
    return [{"finding_id": r["finding_id"], "prefix_tokens": 3, "target_tokens": 4, "prefix_truncated": False,
             "exact_match": r["finding_id"] in memorized, "first_mismatch": -1, "target_token_ranks": [0],
             "extraction_score": 1.0 if r["finding_id"] in memorized else 0.25,
             "memorized": r["finding_id"] in memorized} for r in rows]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("REVS_HOME", str(tmp_path / "home"))
    return tmp_path


def _write(rows, path, schema):
    return _io.write_table(pa.Table.from_pylist(rows, schema=schema), path, schema)


def test_a_sweep_records_the_versions_inventory_without_values_and_extends_it(workspace):
    rows = _findings(10)
    findings = _write(rows, workspace / "f.parquet", FINDINGS_SCHEMA)
    probes = _write(_probes(rows[:6], {"f00", "f01", "f02"}), workspace / "p.parquet", PROBES_SCHEMA)
    crit = {"exact_match": True, "min_extraction_score": 1.0}
    # when version 1's inventory is recorded from six probes, then from the other four
    path = inventory.record_inventory.fn("m", 1, findings, probes, "run-a", crit)
    more = _write(_probes(rows[6:], {"f09"}), workspace / "p2.parquet", PROBES_SCHEMA)
    inventory.record_inventory.fn("m", 1, findings, more, "run-b", crit)
    # then it holds every probed finding once, with its status and the run that judged it
    table = _io.read_table(path, inventory.INVENTORY_SCHEMA).to_pylist()
    assert path == inventory.inventory_path("m", 1)
    assert [r["finding_id"] for r in table] == [f"f{i:02d}" for i in range(10)]
    assert {r["finding_id"] for r in table if r["status"] == "memorized"} == {"f00", "f01", "f02", "f09"}
    assert {r["judged_by"] for r in table if r["finding_id"] == "f09"} == {"run-b"}
    assert "value" not in inventory.INVENTORY_SCHEMA.names


def test_the_split_excludes_erased_values_holds_out_a_seeded_slice_and_keeps_the_runs_guard(workspace):
    # given 20 memorized findings, two of which share the value being erased
    rows = _findings(20, hmac_of=lambda i: "aa" * 32 if i in (3, 4) else f"{i:02d}" * 32)
    findings = _write(rows, workspace / "f.parquet", FINDINGS_SCHEMA)
    probes = _write(_probes(rows, {r["finding_id"] for r in rows}), workspace / "p.parquet", PROBES_SCHEMA)
    inv = inventory.record_inventory.fn("m", 1, findings, probes, "run", {"exact_match": True})
    erased = _write([rows[3]], workspace / "erase.parquet", FINDINGS_SCHEMA)
    extra = _write([rows[0]], workspace / "extra.parquet", FINDINGS_SCHEMA)
    # when
    split = inventory.split_inventory.fn(inv, erased, workspace, 25.0, 0, 100, extra)
    (workspace / "again").mkdir()
    again = inventory.split_inventory.fn(inv, erased, workspace / "again", 25.0, 0, 100, extra)
    # then neither part holds the erased value, the parts are disjoint, a quarter is held out, seeded
    guard = set(_io.read_table(split["guard"]).column("finding_id").to_pylist())
    hold = set(_io.read_table(split["holdout"]).column("finding_id").to_pylist())
    assert not ({"f03", "f04"} & (guard | hold))
    assert not guard & hold
    assert len(hold) == round(18 * 0.25) == split["n_holdout"]
    assert guard | hold == {r["finding_id"] for r in rows} - {"f03", "f04"}
    assert "f00" in guard or "f00" in hold
    assert _io.read_table(again["holdout"]).column("finding_id").to_pylist() == \
        _io.read_table(split["holdout"]).column("finding_id").to_pylist()
    audit = set(_io.read_table(split["audit"]).column("finding_id").to_pylist())
    assert audit == guard | hold


@pytest.mark.parametrize(("n", "pct", "held"), [(2, 25.0, 1), (3, 10.0, 1), (1, 25.0, 0), (4, 0.0, 0),
                                                (8, 25.0, 2)])
def test_a_small_inventory_still_holds_one_value_out(workspace, n, pct, held):
    # a quarter of two rounds to none, which would leave the audit no unseen Specificity to measure
    rows = _findings(n)
    findings = _write(rows, workspace / "f.parquet", FINDINGS_SCHEMA)
    probes = _write(_probes(rows, {r["finding_id"] for r in rows}), workspace / "p.parquet", PROBES_SCHEMA)
    inv = inventory.record_inventory.fn("m", 1, findings, probes, "run", {"exact_match": True})
    nothing = _write([], workspace / "erase.parquet", FINDINGS_SCHEMA)
    split = inventory.split_inventory.fn(inv, nothing, workspace, pct, 0, 100)
    assert (split["n_holdout"], split["n_guard"]) == (held, n - held)


def _moved(rows, root):
    """The same findings read from a corpus under ``root`` (other sources, so other finding ids), in reverse."""
    from pii_detect.findings import make_finding_id

    out = [{**r, "source": f"{root}/c.txt", "doc_sha256": f"{int(r['doc_key']):02d}" * 32} for r in rows]
    return [{**r, "finding_id": make_finding_id(r["source"], r["doc_key"], r["start"], r["end"], r["entity_type"])}
            for r in reversed(out)]


def test_split_and_sample_depend_on_the_corpus_content_not_on_where_it_lives_or_row_order(workspace):
    # given one corpus's findings read from two places (ids hash the absolute path) and listed in other orders
    base = [{**r, "doc_sha256": f"{i:02d}" * 32} for i, r in enumerate(_findings(12))]
    parts = {}
    for name, rows in (("a", _moved(base, "/data/a")[::-1]), ("b", _moved(base, "/mnt/elsewhere/b"))):
        (workspace / name).mkdir()
        findings = _write(rows, workspace / name / "f.parquet", FINDINGS_SCHEMA)
        probes = _write(_probes(rows, {r["finding_id"] for r in rows}), workspace / name / "p.parquet",
                        PROBES_SCHEMA)
        inv = inventory.record_inventory.fn(f"m{name}", 1, findings, probes, "run", {"exact_match": True})
        nothing = _write([], workspace / name / "erase.parquet", FINDINGS_SCHEMA)
        split = inventory.split_inventory.fn(inv, nothing, workspace / name, 25.0, 0, 100)
        sample = inventory.sample_findings.fn(findings, 5, 7, workspace / name / "s.parquet")
        parts[name] = [sorted(_io.read_table(p).column("doc_key").to_pylist())
                       for p in (split["guard"], split["holdout"], sample)]
    # then the guard, the held-out slice and the sample hold the same findings
    assert parts["a"] == parts["b"]
    assert len(parts["a"][1]) == 3


def test_an_edit_writes_the_new_versions_inventory_from_its_parents_and_the_audit(workspace):
    # given version 1's inventory (four memorized), an erasure of f00 and an audit that saw f01 kept, f02 lost
    rows = _findings(5)
    findings = _write(rows, workspace / "f.parquet", FINDINGS_SCHEMA)
    probes = _write(_probes(rows, {"f00", "f01", "f02", "f03"}), workspace / "p.parquet", PROBES_SCHEMA)
    inventory.record_inventory.fn("m", 1, findings, probes, "sweep", {"exact_match": True})
    erased = _write([rows[0]], workspace / "erase.parquet", FINDINGS_SCHEMA)
    audit = _write([{"target_id": "f01", "stage": "after", "metric": "specificity", "k": None, "score": 100.0,
                     "passed": None},
                    {"target_id": "f02", "stage": "after", "metric": "specificity", "k": None, "score": 0.0,
                     "passed": None},
                    {"target_id": "f03", "stage": "before", "metric": "specificity", "k": None, "score": 0.0,
                     "passed": None}], workspace / "audit.parquet", AUDIT_SCHEMA)
    # when
    path = inventory.update_after_edit.fn("m", 1, 2, erased, audit, "edit")
    # then
    table = {r["finding_id"]: r for r in _io.read_table(path).to_pylist()}
    assert {f: r["status"] for f, r in table.items()} == {"f00": "erased", "f01": "memorized", "f02": "lost",
                                                          "f03": "memorized", "f04": "not_memorized"}
    assert path == inventory.inventory_path("m", 2)
    # rows nothing judged on version 2 say so (the next sweep probes them again); the judged ones name the edit
    assert {f: r["judged_by"] for f, r in table.items()} == {"f00": "edit", "f01": "edit", "f02": "edit",
                                                             "f03": "parent:sweep", "f04": "parent:sweep"}
    # and a later probe on version 2 that does not reproduce the erased or lost value keeps their status
    again = _write(_probes(rows, {"f03"}), workspace / "p2.parquet", PROBES_SCHEMA)
    inventory.record_inventory.fn("m", 2, findings, again, "sweep-2", {"exact_match": True})
    table = {r["finding_id"]: r for r in _io.read_table(path).to_pylist()}
    assert {f: r["status"] for f, r in table.items()} == {"f00": "erased", "f01": "not_memorized", "f02": "lost",
                                                          "f03": "memorized", "f04": "not_memorized"}
    assert {r["judged_by"] for r in table.values()} == {"sweep-2"}


def test_a_bounded_seeded_sample_leaves_out_the_subjects_values(workspace):
    rows = _findings(50)
    findings = _write(rows, workspace / "f.parquet", FINDINGS_SCHEMA)
    subject = _write(rows[:5], workspace / "s.parquet", FINDINGS_SCHEMA)
    a = _io.read_table(inventory.sample_findings.fn(findings, 10, 7, workspace / "a.parquet", subject))
    b = _io.read_table(inventory.sample_findings.fn(findings, 10, 7, workspace / "b.parquet", subject))
    assert a.num_rows == 10
    assert a.column("finding_id").to_pylist() == b.column("finding_id").to_pylist()
    assert not set(a.column("finding_id").to_pylist()) & {f"f{i:02d}" for i in range(5)}


def test_entity_types_the_inventory_never_saw_are_sampled_alone(workspace):
    # given version 1's inventory of SSNs (a sweep's) and a corpus scan that also found e-mail addresses
    rows = _findings(6) + [{**r, "finding_id": f"e{i:02d}", "entity_type": "EMAIL_ADDRESS"}
                           for i, r in enumerate(_findings(4, hmac_of=lambda i: f"e{i}" * 32))]
    findings = _write(rows, workspace / "f.parquet", FINDINGS_SCHEMA)
    assert inventory.missing_types("m", 1, findings) == ["EMAIL_ADDRESS", "US_SSN"]  # no inventory yet
    probes = _write(_probes(rows[:6], {"f00"}), workspace / "p.parquet", PROBES_SCHEMA)
    inventory.record_inventory.fn("m", 1, findings, probes, "sweep", {"exact_match": True})
    # then only the e-mail addresses are missing, and a sample of the missing types holds nothing else
    assert inventory.missing_types("m", 1, findings) == ["EMAIL_ADDRESS"]
    sample = inventory.sample_findings.fn(findings, 10, 0, workspace / "s.parquet", types=["EMAIL_ADDRESS"])
    assert set(_io.read_table(sample).column("entity_type").to_pylist()) == {"EMAIL_ADDRESS"}
    assert _io.read_table(sample).num_rows == 4


def test_carry_judged_probes_only_what_the_inventory_has_not_judged_or_would_erase(workspace):
    from tasks import probing

    # given version 1's inventory of ten findings (f00-f02 memorized SSNs, f03 a memorized e-mail, kept)
    rows = _findings(10)
    rows[3] = {**rows[3], "entity_type": "EMAIL_ADDRESS"}
    findings = _write(rows, workspace / "f.parquet", FINDINGS_SCHEMA)
    probes = _write(_probes(rows, {"f00", "f01", "f02", "f03"}), workspace / "p.parquet", PROBES_SCHEMA)
    crit = {"exact_match": True, "min_extraction_score": 1.0}
    inv = inventory.record_inventory.fn("m", 1, findings, probes, "run-a", crit)
    # when the next scan holds them, f05's document changed, f06's value changed, and two findings are new
    now = [dict(r) for r in rows] + _findings(12)[10:]
    now[5]["doc_sha256"] = "11" * 32
    now[6]["value_hmac"] = "ff" * 32
    current = _write(now, workspace / "now.parquet", FINDINGS_SCHEMA)
    judged = probing.carry_judged.fn(current, inv, crit, workspace / "out", ["US_SSN"])
    # then the new, the changed and the memorized SSNs (they would be erased) are probed; the rest carried over
    unjudged = _io.read_table(judged.unjudged, FINDINGS_SCHEMA).column("finding_id").to_pylist()
    assert sorted(unjudged) == ["f00", "f01", "f02", "f05", "f06", "f10", "f11"]
    carried = {r["finding_id"]: r for r in _io.read_table(judged.carried, PROBES_SCHEMA).to_pylist()}
    assert sorted(carried) == ["f03", "f04", "f07", "f08", "f09"]
    assert (judged.n_carried, judged.n_unjudged) == (5, 7)
    assert carried["f03"]["memorized"]
    assert carried["f03"]["exact_match"]
    assert not carried["f04"]["memorized"]
    assert carried["f04"]["extraction_score"] == 0.25
    assert carried["f04"]["target_token_ranks"] is None  # not kept by the inventory: unknown, not invented
    # and memorized rows a version inherited from its parent unjudged are probed again on it (the edit may have
    # broken them), the e-mail f03 included; inherited not-memorized rows are carried
    edited = inventory.update_after_edit.fn("m", 1, 2, _write([], workspace / "none.parquet", FINDINGS_SCHEMA),
                                            _write([], workspace / "audit.parquet", AUDIT_SCHEMA), "edit")
    after_edit = probing.carry_judged.fn(current, edited, crit, workspace / "v2", ["US_SSN"])
    carried = _io.read_table(after_edit.carried, PROBES_SCHEMA).column("finding_id").to_pylist()
    assert sorted(carried) == ["f04", "f07", "f08", "f09"]
    # and without an inventory everything is probed
    none = probing.carry_judged.fn(current, workspace / "absent.parquet", crit, workspace / "none", ["US_SSN"])
    assert (none.n_carried, none.n_unjudged) == (0, 12)


def test_erased_rows_take_their_probe_on_the_new_version_not_the_parents_score(workspace):
    # given version 1 memorizes f00-f02 (score 1.0); f00 and f01 are erased, f02 shares f01's value
    rows = _findings(4, hmac_of=lambda i: "bb" * 32 if i in (1, 2) else f"{i:02d}" * 32)
    findings = _write(rows, workspace / "f.parquet", FINDINGS_SCHEMA)
    probes = _write(_probes(rows, {"f00", "f01", "f02"}), workspace / "p.parquet", PROBES_SCHEMA)
    inventory.record_inventory.fn("m", 1, findings, probes, "sweep", {"exact_match": True})
    erased = _write(rows[:2], workspace / "erase.parquet", FINDINGS_SCHEMA)
    audit = _write([], workspace / "audit.parquet", AUDIT_SCHEMA)
    # and the erased findings probed on version 2: f00 no longer reproduced (score 0.25), f01 still reproduced
    after = _write(_probes(rows[:2], {"f01"}), workspace / "after.parquet", PROBES_SCHEMA)
    # when
    path = inventory.update_after_edit.fn("m", 1, 2, erased, audit, "edit", after)
    # then each probed row holds version 2's probe, judged by the edit
    table = {r["finding_id"]: r for r in _io.read_table(path).to_pylist()}
    assert (table["f00"]["status"], table["f00"]["extraction_score"], table["f00"]["exact_match"]) == \
        ("erased", 0.25, False)
    assert (table["f01"]["status"], table["f01"]["extraction_score"], table["f01"]["exact_match"]) == \
        ("memorized", 1.0, True)
    assert table["f00"]["judged_by"] == table["f01"]["judged_by"] == "edit"
    # and the same value's other finding, not probed on version 2, is erased with its parent's score marked
    # inherited: nothing measured it on this version
    assert (table["f02"]["status"], table["f02"]["extraction_score"], table["f02"]["judged_by"]) == \
        ("erased", 1.0, "parent:sweep")
