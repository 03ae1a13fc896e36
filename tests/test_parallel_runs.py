"""How ``make test`` splits the suite between pytest-xdist workers (tests/conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import pytest_collection_modifyitems

TESTS = Path(__file__).resolve().parent


class _Item:
    def __init__(self, rel: str, long: bool = False):
        self.path, self.long, self.marks = TESTS / rel, long, []

    def get_closest_marker(self, name):
        return name if self.long and name == "slow" else None

    def add_marker(self, mark):
        self.marks.append(mark)


def _config(dist: str, **more):
    return SimpleNamespace(option=SimpleNamespace(dist=dist, **more))


def test_under_loadgroup_the_store_writers_run_as_one_unit_first_then_long_files_each_file_in_order():
    items = [_Item("pii_detect/test_a.py"), _Item("flows/test_f.py"), _Item("revs_engine/test_real.py"),
             _Item("revs_engine/test_real.py", long=True), _Item("tasks/test_t.py"),
             _Item("tasks/test_zz_last.py"), _Item("test_top.py")]
    before = list(items)
    pytest_collection_modifyitems(_config("loadgroup"), items)
    names = [it.path.relative_to(TESTS).as_posix() for it in items]
    assert names == ["flows/test_f.py", "tasks/test_t.py", "tasks/test_zz_last.py", "revs_engine/test_real.py",
                     "revs_engine/test_real.py", "pii_detect/test_a.py", "test_top.py"]
    assert [items.index(it) for it in before[2:4]] == [3, 4]  # a file's tests keep their order
    groups = [it.marks[0].args[0] for it in items]
    assert groups == ["stores"] * 3 + ["revs_engine/test_real.py"] * 2 + ["pii_detect/test_a.py", "test_top.py"]
    assert all(m.name == "xdist_group" for it in items for m in it.marks)


def test_a_test_file_outside_the_tests_folder_is_its_own_unit(tmp_path):
    items = [_Item("flows/test_f.py"), _Item("pii_detect/test_a.py")]
    items[1].path = tmp_path / "test_elsewhere.py"
    pytest_collection_modifyitems(_config("loadgroup"), items)
    assert [it.marks[0].args[0] for it in items] == ["stores", (tmp_path / "test_elsewhere.py").as_posix()]


def test_a_worker_of_a_loadgroup_run_marks_its_units_too():
    """pytest-xdist's workers, where collection happens, see ``dist == "no"`` and ``loadgroup`` set."""
    items = [_Item("pii_detect/test_a.py"), _Item("flows/test_f.py")]
    pytest_collection_modifyitems(_config("no", loadgroup=True), items)
    assert [it.marks[0].args[0] for it in items] == ["stores", "pii_detect/test_a.py"]


@pytest.mark.parametrize("dist", ["no", "load", "loadfile"])
def test_other_runs_keep_the_collection_as_it_is(dist):
    items = [_Item("pii_detect/test_a.py"), _Item("flows/test_f.py")]
    pytest_collection_modifyitems(_config(dist), items)
    assert [it.path.name for it in items] == ["test_a.py", "test_f.py"]
    assert all(not it.marks for it in items)


def test_an_xdist_worker_takes_its_share_of_the_cores_for_torch_and_the_processes_it_starts():
    env = {**os.environ, "PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "2"}
    env.pop("OMP_NUM_THREADS", None)
    code = "import os, tests.conftest; print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=TESTS.parent, capture_output=True, text=True,  # noqa: S603
                         check=True, timeout=120).stdout.split()
    share = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert out == [share, share]


def test_two_workers_keep_a_file_together_and_the_group_reaches_the_scheduler():
    """The grouping acts in a real two-worker run: the workers' test ids carry their unit (pytest-xdist's
    scheduler reads it there) and a file whose tests depend on their order runs on one worker. Under pytest 9
    with pytest-xdist 3.8 the marks were set but the ids kept no unit, and this file's two tests split."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    cmd = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "-v",
           "-p", "no:cacheprovider", "tests/test_process_settings.py", "tests/test_bench_data.py"]
    run = subprocess.run(cmd, env=env, cwd=TESTS.parent, capture_output=True, text=True, timeout=600)  # noqa: S603
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = [ln for ln in run.stdout.splitlines() if " PASSED " in ln]
    mine = [ln for ln in lines if "test_process_settings.py::" in ln]
    assert len(mine) == 2, mine
    assert all(ln.rstrip().endswith("@test_process_settings.py") for ln in mine), mine
    assert len({ln.split()[0] for ln in mine}) == 1, mine  # one worker, e.g. "[gw0]"
    assert len({ln.split()[0] for ln in lines}) == 2, "both workers took a unit"
