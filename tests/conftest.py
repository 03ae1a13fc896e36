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
