"""Flow-test fixtures: one Prefect test harness per session, the tiny memorized world (tests/flows/world.py), and
workspaces that start from a pre-migrated MLflow database (a fresh migration costs ~5-10 s per workspace)."""

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    """Run flows against one temporary Prefect server for the whole session; yield its database URL."""
    import prefect.settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL.value()


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """The corpus with planted PII and a tiny model that memorized it (built once per session)."""
    from tests.flows.world import build_world

    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory):
    """One migrated MLflow SQLite database per session."""
    from tasks._mlflow import MlflowAdapter

    root = tmp_path_factory.mktemp("mlflow-template")
    MlflowAdapter(root=root, tracking_uri=f"sqlite:///{root / 'mlflow.db'}").client.search_experiments()
    return root / "mlflow.db"


def seed_workspace(home: Path, template: Path) -> Path:
    """Create workspace ``home`` holding a copy of the migrated MLflow database; return it."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "mlflow.db").exists():
        shutil.copyfile(template, home / "mlflow.db")
    return home


@pytest.fixture
def fresh_workspace(mlflow_template, monkeypatch):
    """This test's REVS_HOME, seeded with the migrated MLflow database (tracking URI from the workspace)."""
    monkeypatch.delenv("REVS_MLFLOW_TRACKING_URI", raising=False)
    return seed_workspace(Path(os.environ["REVS_HOME"]), mlflow_template)
