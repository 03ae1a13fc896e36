"""The fault suite (issue 18): ``kill -9`` inside every step of a deletion request, then run it again.

One request is killed once at each point of :data:`tests.flows.fault_driver.POINTS` — scan, probe, edit, audit,
registry files, registration, report — each run resuming where the last one died (real processes: the child
runs `revs forget` and SIGKILLs itself, so no ``finally`` runs). A last run completes it. The request must then be
answered exactly once: every step recorded once, one new version (no half version: registered, published and in
the registry with its files), no orphan (no temp file, no staging copy, no registry run without a version).
Two requests started at the same moment on one model in two processes must both land, one after the other.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flows.fault_driver import POINTS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_workspace")]
MODEL = "tiny-llama"
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900
#: The steps recorded when each kill hits (the kills follow each other: each run resumes the previous one).
RECORDED_AFTER_KILL = {
    "scan": ["received"],
    "probe": ["received", "located"],
    "edit": ["received", "located", "probed"],
    "audit": ["received", "located", "probed", "edited"],
    "register-files": ["received", "located", "probed", "edited"],
    "register": ["received", "located", "probed", "edited"],
    "report": ["received", "located", "probed", "edited", "audited"],
}


class Zygote:
    """A `tests.flows.fault_driver --zygote` process: imports once, forks one child per run (see its docstring)."""

    def __init__(self, api_url: str) -> None:
        env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.flows.fault_driver", "--zygote"],  # noqa: S603
                                     cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def run(self, jobs: list[tuple[str, list[str], Path]]) -> list[int]:
        """Run ``(point, args, log)`` jobs at once in the current workspace; return their exit statuses."""
        env = {"REVS_HOME": os.environ["REVS_HOME"]}
        line = [{"point": point, "args": args, "log": str(log), "env": env} for point, args, log in jobs]
        self.proc.stdin.write(json.dumps(line) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT_S)
        if not ready:
            self.proc.kill()
            pytest.fail(f"no answer from the fault driver in {TIMEOUT_S} s (a run hangs); logs: {line}")
        return json.loads(self.proc.stdout.readline())["status"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def zygote(prefect_harness):
    import prefect.settings

    started = Zygote(prefect.settings.PREFECT_API_URL.value())
    yield started
    started.close()


def _forget_args(world, request: Path) -> list[str]:
    return ["forget", str(request), "--model", str(world.model), "--corpus", str(world.corpus), "--policy",
            str(world.request_policy), "--name", MODEL]


def _orphans(home: Path) -> list[str]:
    """Temp files, staging copies and registry copies left anywhere in the workspace."""
    found = [str(p) for p in home.rglob("*") if p.name.endswith((".tmp", ".partial")) or p.name.startswith(
        (".registry-", ".tmp"))]
    found += [str(p) for p in home.glob(f"models/{MODEL}/.staging/*")]
    return found


def _registry_state():
    from tasks._mlflow import REGISTRY_EXPERIMENT, MlflowAdapter

    adapter = MlflowAdapter()
    versions = adapter.lineage(MODEL)
    experiment = adapter.client.get_experiment_by_name(REGISTRY_EXPERIMENT)
    runs = adapter.client.search_runs([experiment.experiment_id]) if experiment else []
    return adapter, versions, {r.info.run_id for r in runs}


def test_kill_9_at_every_step_then_a_rerun_answers_the_request_exactly_once(world, zygote, tmp_path):
    from tasks.requests import RequestStore

    home = Path(os.environ["REVS_HOME"])
    args = _forget_args(world, world.jane_request)
    for point in POINTS:
        # when: the request is killed inside this step
        log = tmp_path / f"{point}.log"
        status = zygote.run([(point, args, log)])[0]
        assert status == -9, f"{point}: the child was not killed (exit {status})\n{log.read_text()[-3000:]}"
        # then: exactly the earlier steps are recorded, and nothing is registered twice
        state = RequestStore().status("REQ-JANE")
        assert list(state.completed) == RECORDED_AFTER_KILL[point], point
        _, versions, _ = _registry_state()
        assert [v["version"] for v in versions] in ([1], [1, 2]), point
    # when: it runs once more, undisturbed
    assert zygote.run([("-", args, tmp_path / "last.log")]) == [0], (tmp_path / "last.log").read_text()[-3000:]
    # then: answered once
    state = RequestStore().status("REQ-JANE")
    assert state.status == "reported"
    assert [e["to"] for e in state.history if e["event"] == "advance"] == [
        "located", "probed", "edited", "audited", "reported"]
    # one new version, whole: registered with its tags and files, published, production
    adapter, versions, registry_runs = _registry_state()
    assert [v["version"] for v in versions] == [1, 2]
    tags = versions[1]["tags"]
    assert (tags["request_id"], tags["parent"], tags["audit"]) == ("REQ-JANE", "1", "passed")
    assert adapter.production_version(MODEL) == 2
    assert sorted(p.name for p in (home / "models" / MODEL).iterdir() if p.name[0] != ".") == ["v1", "v2"]
    manifest = json.loads((home / "models" / MODEL / "v2" / "patch" / "manifest.json").read_text())
    assert manifest["edited_weights_sha256"] == tags["weights_sha256"]
    assert Path(versions[1]["source"].removeprefix("file://")).is_dir()
    # no orphans: no temp or staging file, no registry run (a model copy) without its version
    orphans = _orphans(home)
    assert orphans == [], "\n".join(orphans)
    assert registry_runs == {v["registry_run_id"] for v in versions}


def test_two_requests_started_together_on_one_model_both_land(world, zygote, tmp_path):
    from tasks.requests import RequestStore

    jobs = [("-", _forget_args(world, request), tmp_path / f"{request.stem}.log")
            for request in (world.jane_request, world.mark_request)]
    statuses = zygote.run(jobs)
    assert statuses == [0, 0], "\n".join(log.read_text()[-3000:] for _, _, log in jobs)
    adapter, versions, registry_runs = _registry_state()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[2]["tags"]["parent"] == "2"  # the second edit was applied on top of the first
    assert {versions[1]["tags"]["request_id"], versions[2]["tags"]["request_id"]} == {"REQ-JANE", "REQ-MARK"}
    assert adapter.production_version(MODEL) == 3
    for rid in ("REQ-JANE", "REQ-MARK"):
        assert RequestStore().status(rid).status == "reported"
    assert _orphans(Path(os.environ["REVS_HOME"])) == []
    assert registry_runs == {v["registry_run_id"] for v in versions}
