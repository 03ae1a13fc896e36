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


def _config(dist: str):
    return SimpleNamespace(option=SimpleNamespace(dist=dist))


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
