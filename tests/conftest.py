"""Session-wide test settings: offline hub, workspace in a temp dir, no telemetry."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path, monkeypatch):
    """Give every test its own REVS_HOME so no test writes into the user's workspace."""
    monkeypatch.setenv("REVS_HOME", str(tmp_path / "revs_home"))
