"""Issue 18, defects 6 and 8: raw values through free text, log records and worker processes, and the key's
permissions; one test per defect, each failing before its fix. The slow test runs the deletion flow on the tiny
memorized world (tests/flows/world.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from flows.cli import main
from tests.flows.test_hardening import MODEL, _one_line_error
from tests.flows.world import JANE_EMAIL, JANE_NAME, PLANTED_SSNS

# ------------------------------------------------------------------------------ 6. raw values through free text


def test_a_retirement_reason_with_personal_data_is_refused_and_stored_nowhere(tmp_path, capsys, mlflow_template):
    from tests.flows.conftest import seed_workspace

    home = seed_workspace(Path(os.environ["REVS_HOME"]), mlflow_template)
    before = (home / "mlflow.db").read_bytes()
    reason = f"{JANE_NAME} {PLANTED_SSNS[0]}"
    assert main(["retire", "m", "--versions", "1", "--reason", reason]) == 2
    line = _one_line_error(capsys, "retire")
    assert "--reason looks like it contains personal data (PERSON at 0-8, US_SSN at 9-20)" in line
    assert JANE_NAME not in line
    assert PLANTED_SSNS[0] not in line
    assert (home / "mlflow.db").read_bytes() == before
    assert not (home / "retirements").exists()


def test_locate_does_not_echo_a_value_put_in_the_type_field(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("text", encoding="utf-8")
    request = tmp_path / "r.json"
    request.write_text(json.dumps({"subject": {"name": "X Y", "identifiers": [{"type": JANE_EMAIL,
                                                                                "value": "x"}]}}))
    assert main(["locate", "--request", str(request), str(tmp_path / "a.txt"), "--out",
                 str(tmp_path / "o.parquet")]) == 2
    line = _one_line_error(capsys, "locate")
    assert "subject.identifiers[0].type: must be one of" in line
    assert JANE_EMAIL not in line


def _find_in_child(queue, value: str) -> None:
    from tasks.redaction import SENSITIVE

    queue.put((SENSITIVE.find(f"x {value} y"), SENSITIVE.redact(value)))


def test_the_raw_value_registry_reaches_worker_processes(world):
    from tasks.redaction import SENSITIVE

    SENSITIVE.register_source(world.jane_request)
    try:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter, as a Dask worker is
        queue = ctx.Queue()
        child = ctx.Process(target=_find_in_child, args=(queue, JANE_EMAIL))
        child.start()
        found, redacted = queue.get(timeout=120)
        child.join(60)
    finally:
        SENSITIVE.clear()
    assert found is True
    assert redacted == "[REDACTED]"


def test_log_records_and_re_raised_exceptions_are_redacted():
    import logging

    from tasks.redaction import SENSITIVE, RedactedError

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    logger = logging.getLogger("tests.redaction")
    handler = Keep()
    logger.addHandler(handler)
    SENSITIVE.register([JANE_EMAIL])
    try:
        try:
            raise ValueError(f"cannot tokenize {JANE_EMAIL}")
        except ValueError:
            logger.exception("failed on %s", JANE_EMAIL)
        exc = ValueError(f"bad {JANE_EMAIL}")
        exc.__cause__ = KeyError(JANE_EMAIL)
        assert SENSITIVE.redact_exception(exc) is exc
        assert str(exc) == "bad [REDACTED]"
        assert exc.__cause__ is None

        class CustomError(Exception):
            def __str__(self):
                return f"custom {JANE_EMAIL}"

        assert isinstance(SENSITIVE.redact_exception(CustomError()), RedactedError)
    finally:
        SENSITIVE.clear()
        logger.removeHandler(handler)
    assert records
    assert all(JANE_EMAIL not in r for r in records)
    assert "failed on [REDACTED]" in records[0]
    assert "cannot tokenize [REDACTED]" in records[0]


# ------------------------------------------------------------------------------------------------------- 8. keys


def test_the_workspace_and_its_key_are_private_even_under_umask_000(tmp_path, monkeypatch):
    from tasks._workspace import hmac_key, workspace_dir, workspace_root

    monkeypatch.setenv("REVS_HOME", str(tmp_path / "new" / "ws"))
    old = os.umask(0)
    try:
        root = workspace_root()
        runs = workspace_dir("runs", "r1")
        hmac_key()
    finally:
        os.umask(old)
    for directory in (tmp_path / "new", root, root / "runs", runs, root / "keys"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stat.S_IMODE((root / "keys" / "hmac.key").stat().st_mode) == 0o600


def test_a_group_readable_key_is_refused_with_the_command_that_fixes_it(tmp_path, capsys):
    from tasks._workspace import hmac_key
    from tasks.errors import WorkspaceError

    key = hmac_key()
    path = Path(os.environ["REVS_HOME"]).resolve() / "keys" / "hmac.key"
    path.chmod(0o640)
    with pytest.raises(WorkspaceError, match=f"chmod 600 {path}"):
        hmac_key()
    (tmp_path / "a.txt").write_text("text", encoding="utf-8")
    assert main(["scan", str(tmp_path / "a.txt"), "--out", str(tmp_path / "o.parquet")]) == 2
    assert "readable or writable by group/others (mode 0640)" in _one_line_error(capsys, "scan")
    path.chmod(0o600)
    assert hmac_key() == key


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_workspace")
def test_an_exception_carrying_a_raw_value_inside_the_deletion_flow_reaches_no_store(world, prefect_harness,
                                                                                      monkeypatch, capsys):
    import time
    from urllib.parse import urlparse

    import pii_detect

    def broken(*args, **kwargs):
        raise ValueError(f"cannot read the document of {JANE_NAME} <{JANE_EMAIL}>")

    monkeypatch.setattr(pii_detect, "iter_documents", broken)  # inside the flow's corpus inspection task
    code = main(["forget", str(world.jane_request), "--model", str(world.model), "--corpus", str(world.corpus),
                 "--policy", str(world.request_policy), "--name", MODEL])
    err = capsys.readouterr().err
    assert code == 1
    assert "internal error (ValueError)" in err
    time.sleep(1.0)  # let Prefect's log batches reach its server
    db_dir = Path(urlparse(prefect_harness.replace("sqlite+aiosqlite", "file")).path).parent
    hits = []
    for store in (Path(os.environ["REVS_HOME"]), Path(os.environ["PREFECT_HOME"]), db_dir):
        for path in (p for p in store.rglob("*") if p.is_file()):
            data = path.read_bytes()
            hits += [(str(path), raw) for raw in (JANE_EMAIL, JANE_NAME) if raw.encode() in data]
    assert hits == []
    assert JANE_EMAIL not in err
