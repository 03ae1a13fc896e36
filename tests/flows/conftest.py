"""Flow-test fixtures: one Prefect test harness per session and the tiny memorized world (tests/flows/world.py)."""

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
