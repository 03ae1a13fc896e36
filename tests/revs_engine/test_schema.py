"""The result dataclasses serialise to exactly the declared Parquet schemas."""

import dataclasses

from revs_engine.audit import AuditRow
from revs_engine.probes import ProbeResult
from revs_engine.schema import AUDIT_SCHEMA, PROBES_SCHEMA


def test_probe_result_fields_are_the_probes_schema():
    assert [f.name for f in dataclasses.fields(ProbeResult)] == PROBES_SCHEMA.names


def test_audit_row_fields_are_the_audit_schema():
    assert [f.name for f in dataclasses.fields(AuditRow)] == AUDIT_SCHEMA.names


def test_schemas_carry_name_and_version():
    assert PROBES_SCHEMA.metadata == {b"name": b"probes", b"version": b"1"}
    assert AUDIT_SCHEMA.metadata == {b"name": b"audit", b"version": b"1"}
