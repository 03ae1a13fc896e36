"""After the whole suite: no planted raw value in any store any test wrote (issue 18, "Done when").

Named ``test_zz_*`` so it runs after the flow and task tests (pytest runs ``tests/flows`` before ``tests/tasks``
and each directory's files in name order). It reads every file of every store the session created — each test's
workspace (``REVS_HOME``: state, runs, reports, models, MLflow database and artifacts, logs), the session's
``PREFECT_HOME`` (results, storage, logs) and the Prefect server database of the test harness — and looks for
every value the suite plants in its corpora and requests, as written and lower-cased. Inputs (corpora, request
files) live outside the workspaces and are not stores.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from tests.flows import test_cli_scan, test_params
from tests.flows.world import PLANTED
from tests.tasks.conftest import PLANTED_EMAIL, PLANTED_SSN

NEEDLES = sorted({*PLANTED, PLANTED_EMAIL, PLANTED_SSN, test_params.EMAIL, test_params.SSN, test_params.PHONE,
                  test_params.NAME, test_cli_scan.SSN, test_cli_scan.EMAIL})
#: Inside a workspace but user input by design: the demo writes its generated corpus and request there.
INPUTS_IN_WORKSPACES = ("demo",)


def _workspaces(base: Path) -> list[Path]:
    found = []
    for path in base.rglob("*"):
        if path.is_dir() and (path.name == "revs_home" or (path / "mlflow.db").is_file()):
            found.append(path)
    return found


def _prefect_db_dir() -> Path | None:
    import prefect.settings

    url = prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or ""
    if "sqlite" not in url:
        return None
    return Path(urlparse(url.replace("sqlite+aiosqlite", "file")).path).parent


def _files(store: Path):
    for path in store.rglob("*"):
        rel = path.relative_to(store).parts
        if rel and rel[0] in INPUTS_IN_WORKSPACES:
            continue
        if path.is_file() and not path.is_symlink():
            yield path


def test_no_planted_raw_value_in_any_store_of_the_session(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    stores = _workspaces(base) + [Path(os.environ["PREFECT_HOME"])]
    db_dir = _prefect_db_dir()
    if db_dir is not None and db_dir.is_dir():
        stores.append(db_dir)
    needles = {n.encode() for n in NEEDLES} | {n.lower().encode() for n in NEEDLES}
    scanned, hits = 0, []
    for store in stores:
        for path in _files(store):
            scanned += 1
            data = path.read_bytes()
            hits += [(str(path), n.decode()) for n in needles if n in data]
    assert scanned > 0
    assert hits == []
