"""Runtime settings a test changes for the process do not reach the next test (tests/conftest.py restores them).

A CLI call with ``--dtype bf16`` once left ``REVS_DTYPE=bf16`` behind, and every later in-process flow and every
process started afterwards ran the tiny world in bf16: its concurrent-request audit failed in full runs only.
The two tests run in file order: the first changes the settings the way the CLI and a Dask cluster do.
"""

import os

import torch

from tasks._models import model_runtime, set_model_runtime

BEFORE: dict = {}


def test_a_cli_runtime_and_dask_thread_pins_change_the_process():
    BEFORE.update(runtime=model_runtime(), omp=os.environ.get("OMP_NUM_THREADS"), threads=torch.get_num_threads())
    assert set_model_runtime("cpu", "bf16") == {"device": "cpu", "dtype": "bf16"}
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    assert model_runtime()["dtype"] == "bf16"


def test_the_next_test_starts_with_the_settings_it_had_before():
    assert BEFORE, "runs after the test above (file order)"
    assert model_runtime() == BEFORE["runtime"]
    assert os.environ.get("OMP_NUM_THREADS") == BEFORE["omp"]
    assert torch.get_num_threads() == BEFORE["threads"]
