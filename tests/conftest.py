"""Session-wide test settings: offline hub, workspace in a temp dir, Prefect home in a temp dir, no telemetry."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect reads its home when imported: keep its results, storage and logs out of ~/.prefect (greppable by tests).
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="revs-test-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # a pytest-xdist worker (``make test`` runs two): the cores are split between the workers before torch starts
    # its thread pool, and the processes a test starts inherit the share. Two workers with a pool of every core
    # each spent 1.8× the CPU time of one run on the same tests (spinning threads) and finished later.
    _share = max(1, len(os.sched_getaffinity(0)) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    for _key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_key] = str(_share)

import pytest  # noqa: E402

#: Test directories whose tests write workspaces and Prefect stores. The run's last check
#: (tests/tasks/test_zz_no_raw_value_in_any_store.py) reads every store of its process, so under pytest-xdist
#: these run as one unit on one worker, in collection order, that check last.
STORE_WRITERS = ("flows", "tasks")
#: Markers of tests that run for tens of seconds: under pytest-xdist their files are handed out first, so that
#: no worker starts one when the others are nearly done.
LONG_MARKERS = ("slow", "real_model")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist's ``--dist loadgroup``: one work unit per test file, the store writers' files together
    (:data:`STORE_WRITERS`) and first, then the files holding long tests (:data:`LONG_MARKERS`), then the rest,
    each file's tests in their order. Any other run keeps its collection as it is."""
    # an xdist worker (where collection happens) sees ``dist == "no"`` and ``loadgroup`` set; the controller sees
    # ``dist == "loadgroup"``
    if not (getattr(config.option, "loadgroup", False) or getattr(config.option, "dist", "no") == "loadgroup"):
        return
    tests_dir = Path(__file__).resolve().parent
    unit, rank = {}, {}
    for item in items:
        path = Path(str(item.path)).resolve()
        rel = path.relative_to(tests_dir) if path.is_relative_to(tests_dir) else None
        group = "stores" if rel and rel.parts[0] in STORE_WRITERS else (rel or path).as_posix()
        unit[item] = group
        long = any(item.get_closest_marker(m) for m in LONG_MARKERS)
        rank[group] = min(rank.get(group, 2), 0 if group == "stores" else 1 if long else 2)
    order = {item: i for i, item in enumerate(items)}
    items.sort(key=lambda it: (rank[unit[it]], order[it]))
    for item in items:
        item.add_marker(pytest.mark.xdist_group(unit[item]))


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path, monkeypatch):
    """Give every test its own REVS_HOME so no test writes into the user's workspace."""
    monkeypatch.setenv("REVS_HOME", str(tmp_path / "revs_home"))


#: Process settings that code under test may change for the rest of the process: the CLI's ``--device/--dtype``
#: become ``REVS_DEVICE``/``REVS_DTYPE`` (tasks._models.set_model_runtime), and a Dask cluster pins its workers'
#: thread counts in the parent's environment. Left over, they changed later tests (a bf16 runtime and one-thread
#: BLAS made the tiny world's concurrent-request audit fail, in full runs only).
_PROCESS_SETTINGS = ("REVS_DEVICE", "REVS_DTYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "MALLOC_TRIM_THRESHOLD_")


@pytest.fixture(autouse=True)
def _restored_process_settings():
    """Put the process-wide runtime settings back after every test (environment and torch's thread count)."""
    import torch

    saved = {key: os.environ.get(key) for key in _PROCESS_SETTINGS}
    threads = torch.get_num_threads()
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
