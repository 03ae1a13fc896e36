"""Prefect flow-run names carry the request id (deletion requests) or the model (sweeps), never the subject."""

import json

import pytest
from prefect import flow
from prefect.runtime import flow_run

from tasks import tracking


def test_request_run_name_is_the_request_id_not_the_file_name(tmp_path):
    path = tmp_path / "jane-doe-erasure.json"  # the file name may name the subject
    path.write_text(json.dumps({"request_id": "REQ-2026-0042", "subject": {"name": "Jane Doe"}}))
    assert tracking.request_run_name({"request": str(path)}) == "REQ-2026-0042"


@pytest.mark.parametrize("content", ["not json", json.dumps({"request_id": "Jane Doe <jane@x.org>"}),
                                     json.dumps(["x"]), None])
def test_unusable_request_files_give_a_neutral_name(tmp_path, content):
    path = tmp_path / "jane-doe.json"
    if content is not None:
        path.write_text(content)
    assert tracking.request_run_name({"request": str(path)}) == "deletion-request"


def test_the_flows_use_these_names():
    from flows.deletion import deletion_request
    from flows.sweep import compliance_sweep

    assert deletion_request.flow_run_name is tracking.deletion_run_name
    assert compliance_sweep.flow_run_name is tracking.sweep_run_name


@pytest.mark.usefixtures("prefect_harness")
def test_a_flow_run_gets_the_request_id_as_its_name(tmp_path):
    path = tmp_path / "jane-doe.json"
    path.write_text(json.dumps({"request_id": "REQ-7"}))

    @flow(name="name-probe", flow_run_name=tracking.deletion_run_name)
    def probe(request: str) -> str:
        return flow_run.get_name()

    @flow(name="sweep-name-probe", flow_run_name=tracking.sweep_run_name)
    def sweep_probe(model: str, model_name: str | None = None) -> str:
        return flow_run.get_name()

    assert probe(str(path)) == "REQ-7"
    assert sweep_probe("/models/tiny-llama").startswith("sweep-tiny-llama-")
