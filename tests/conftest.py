"""Session-wide test settings: offline hub, workspace in a temp dir, Prefect home in a temp dir, no telemetry."""

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect reads its home when imported: keep its results, storage and logs out of ~/.prefect (greppable by tests).
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="revs-test-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path, monkeypatch):
    """Give every test its own REVS_HOME so no test writes into the user's workspace."""
    monkeypatch.setenv("REVS_HOME", str(tmp_path / "revs_home"))
