"""The only module that imports MLflow: tracking runs and the Model Registry lineage of governed models.

Offers :class:`MlflowAdapter` (and the shortcuts :func:`register_base`, :func:`register_version`, :func:`retire`
on a default adapter) with

- ``start_run(experiment, run_name, tags)`` — a context manager yielding the run id (FINISHED / FAILED on exit);
- ``log_params`` (str / int / float / bool only), ``log_metrics``, ``log_artifacts``, ``set_tags`` — every param
  and tag value is checked against the raw values registered in :data:`tasks.redaction.SENSITIVE`;
- the registry of DESIGN §4: ``register_base`` → version 1 with alias ``production``; ``register_version`` → a new
  version tagged ``parent``, ``weights_sha256``, ``run_id``, ``request_id``, ``audit=passed|failed`` whose alias
  ``production`` moves only when the audit passed; ``retire`` deletes versions that still contain erased data
  (registry entry, the version's artifacts, its registry run, then ``mlflow gc`` on the explicit backend store)
  and records the retirement (``<workspace>/retirements/*.json`` and a run in the ``revs-retirements`` experiment);
  ``lineage``, ``production_version`` and ``model_names`` read it back; ``describe_version`` sets a version's
  description (its audit verdict and a link to the report, ``run_link``).

Storage: ``sqlite:///<workspace>/mlflow.db`` and ``<workspace>/mlartifacts`` (absolute), unless
``REVS_MLFLOW_TRACKING_URI`` names a server (deployment: the compose MLflow service). Never MLflow's defaults.

Each model version's files are logged to a dedicated *registry run* (experiment ``revs-registry``), so retiring a
version deletes exactly its files and never the audit evidence of the flow run that produced it (recorded as the
``run_id`` tag).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

from tasks._io import atomic_write_text
from tasks._workspace import workspace_root
from tasks.redaction import SENSITIVE

logger = logging.getLogger(__name__)

PRODUCTION = "production"
REGISTRY_EXPERIMENT = "revs-registry"
RETIREMENT_EXPERIMENT = "revs-retirements"
DEFAULT_EXPERIMENT = "revs-compliance"
_MAX_TAG = 5000


class RegistryError(RuntimeError):
    """A registry operation is not allowed in the model's current state."""


def _check_value(kind: str, key: str, value: Any) -> str:
    if isinstance(value, bool):
        value = str(value).lower()
    if not isinstance(value, str | int | float):
        raise TypeError(f"{kind} {key!r}: {type(value).__name__} is not allowed; use str or a number "
                        "(log structured data as an artifact)")
    text = str(value)
    if SENSITIVE.find(text) or SENSITIVE.find(key):
        raise ValueError(f"{kind} {key!r}: contains a raw personal value; log its HMAC or masked preview")
    return text


def _name_filter(model_name: str) -> str:
    """Return the filter ``name = <model_name>`` quoted so the name cannot change the filter.

    MLflow's filter strings take no parameters and no escapes: a value is quoted with the quote character it does
    not contain (a name holding both cannot be expressed, and is refused).
    """
    if "'" not in model_name:
        return f"name='{model_name}'"
    if '"' not in model_name:
        return f'name="{model_name}"'
    raise RegistryError("a model name containing both ' and \" cannot be searched; use letters, digits, "
                        "'.', '_' and '-' only")


def _verdict_passed(verdict: Any) -> tuple[bool, list[str]]:
    if isinstance(verdict, bool):
        return verdict, []
    if isinstance(verdict, Mapping):
        return bool(verdict.get("passed")), list(verdict.get("failures") or [])
    return bool(verdict.passed), list(getattr(verdict, "failures", []) or [])


class MlflowAdapter:
    """MLflow tracking + registry for one workspace (explicit URIs, no global MLflow state)."""

    def __init__(self, root: Path | None = None, tracking_uri: str | None = None):
        self.root = Path(root) if root is not None else workspace_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = (tracking_uri or os.environ.get("REVS_MLFLOW_TRACKING_URI")
                             or f"sqlite:///{(self.root / 'mlflow.db').resolve()}")
        self.artifact_root = (self.root / "mlartifacts").resolve()

    @functools.cached_property
    def client(self) -> MlflowClient:
        """The MLflow client on this adapter's URIs (created, and the DB migrated, on first use)."""
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    # ------------------------------------------------------------------------------------------------ tracking
    def experiment_id(self, name: str = DEFAULT_EXPERIMENT) -> str:
        """Return the id of experiment ``name``, creating it with its artifacts under the workspace."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.tracking_uri.startswith("sqlite:"):
            location = (self.artifact_root / name).as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    @contextlib.contextmanager
    def start_run(self, experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None,
                  tags: Mapping[str, Any] | None = None) -> Iterator[str]:
        """Open a run; yield its id; end it FINISHED, or FAILED when the block raises."""
        checked = {k: _check_value("tag", k, v) for k, v in (tags or {}).items()}
        run = self.client.create_run(self.experiment_id(experiment), tags=checked, run_name=run_name)
        run_id = run.info.run_id
        try:
            yield run_id
        except BaseException:
            self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))

    def open_run(self, experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None,
                 tags: Mapping[str, Any] | None = None) -> str:
        """Create a run that outlives this call (a flow's run spans many tasks); end it with :meth:`close_run`."""
        checked = {k: _check_value("tag", k, v) for k, v in (tags or {}).items()}
        return self.client.create_run(self.experiment_id(experiment), tags=checked, run_name=run_name).info.run_id

    def close_run(self, run_id: str, failed: bool = False) -> None:
        """End a run opened with :meth:`open_run` as FINISHED (or FAILED)."""
        status = RunStatus.FAILED if failed else RunStatus.FINISHED
        self.client.set_terminated(run_id, RunStatus.to_string(status))

    def find_version(self, model_name: str, tags: Mapping[str, str]) -> int | None:
        """Return the newest live version whose tags include ``tags`` (None when there is none)."""
        found = [int(v.version) for v in self._versions(model_name)
                 if all(v.tags.get(k) == str(val) for k, val in tags.items())]
        return max(found) if found else None

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log params; values must be str / int / float / bool and free of registered raw values."""
        checked = {k: _check_value("param", k, v) for k, v in params.items()}
        for key, value in checked.items():
            self.client.log_param(run_id, key, value)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log numeric metrics (bools count as 0/1)."""
        for key, value in metrics.items():
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, int | float):
                raise TypeError(f"metric {key!r}: {type(value).__name__} is not a number")
            _check_value("metric", key, 0)
            self.client.log_metric(run_id, key, float(value), step=step or 0)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set run tags (same value rules as params)."""
        for key, value in tags.items():
            self.client.set_tag(run_id, key, _check_value("tag", key, value))

    def log_artifacts(self, run_id: str, local_dir: Path, artifact_path: str | None = None) -> None:
        """Copy a directory (or one file) into the run's artifacts."""
        local = Path(local_dir)
        if local.is_file():
            self.client.log_artifact(run_id, str(local), artifact_path)
        else:
            self.client.log_artifacts(run_id, str(local), artifact_path)

    # ------------------------------------------------------------------------------------------------ registry
    def _versions(self, model_name: str) -> list[Any]:
        found = self.client.search_model_versions(_name_filter(model_name))
        return sorted(found, key=lambda v: int(v.version))

    def _store_version_files(self, model_name: str, files: Path, tags: Mapping[str, str]) -> tuple[str, str]:
        self._drop_orphan_file_runs(model_name, tags["weights_sha256"])
        with self.start_run(REGISTRY_EXPERIMENT, run_name=f"{model_name}-files", tags=tags) as run_id:
            self.log_artifacts(run_id, files, "model")
        source = self.client.get_run(run_id).info.artifact_uri.rstrip("/") + "/model"
        return run_id, source

    def _drop_orphan_file_runs(self, model_name: str, weights_sha256: str) -> None:
        """Delete (and gc) registry runs holding these weights' files that no model version uses.

        They are what an earlier attempt left when it was killed between logging a version's files and creating
        the version: a full copy of the model that nothing points at. Registration runs under the model's lock
        (:func:`tasks.locks.model_lock`), so no other process is registering these weights at the same time.
        """
        experiment = self.client.get_experiment_by_name(REGISTRY_EXPERIMENT)
        if experiment is None or not re.fullmatch(r"[0-9a-f]{1,128}", weights_sha256):
            return
        used = {v.run_id for v in self._versions(model_name)}
        orphans = [r.info.run_id for r in self.client.search_runs(
            [experiment.experiment_id], filter_string=f"tags.weights_sha256 = '{weights_sha256}'")
            if r.data.tags.get("model") == model_name and r.info.run_id not in used]
        for run_id in orphans:
            self.client.delete_run(run_id)
        if orphans:
            self.gc(orphans)
            logger.info("deleted %d orphan registry run(s) of %s", len(orphans), model_name)

    def register_base(self, model_name: str, model_dir: Path, weights_sha256: str,
                      tags: Mapping[str, Any] | None = None) -> int:
        """Register the base model as version 1 of ``model_name`` and point ``production`` at it.

        Raises:
            RegistryError: ``model_name`` already has versions.
        """
        _check_value("model name", "name", model_name)
        with contextlib.suppress(MlflowException):
            self.client.create_registered_model(model_name)  # already exists: checked just below
        if self._versions(model_name):
            raise RegistryError(f"{model_name!r} already has versions; the base is registered once")
        version_tags = {"parent": "", "weights_sha256": weights_sha256, "audit": "base", "run_id": "",
                        "request_id": "", **{k: _check_value("tag", k, v) for k, v in (tags or {}).items()}}
        registry_run, source = self._store_version_files(model_name, Path(model_dir),
                                                         {"model": model_name, "weights_sha256": weights_sha256})
        mv = self.client.create_model_version(model_name, source, run_id=registry_run, tags=version_tags)
        if int(mv.version) != 1:
            raise RegistryError(f"{model_name!r}: base registered as version {mv.version}, expected 1")
        self.client.set_registered_model_alias(model_name, PRODUCTION, mv.version)
        logger.info("registered %s v1 (base)", model_name)
        return 1

    def register_version(self, model_name: str, artifacts_dir: Path, parent_version: int, weights_sha256: str,
                         run_id: str, request_id: str | None, verdict: Any) -> int:
        """Register an edited model as a new version; move ``production`` to it only if the audit passed.

        Args:
            model_name: Registered model name.
            artifacts_dir: The version's files (always the patch; the weights when materialized).
            parent_version: The version the edit was applied to.
            weights_sha256: sha256 of the edited weights.
            run_id: The flow's MLflow run id (audit evidence).
            request_id: Deletion request id, or None for a sweep.
            verdict: A :class:`tasks.verdict.Verdict`, ``{"passed": ..., "failures": [...]}`` or a bool.

        Returns:
            The new version number.
        """
        passed, failures = _verdict_passed(verdict)
        known = {int(v.version) for v in self._versions(model_name)}
        if parent_version not in known:
            raise RegistryError(f"{model_name!r} has no version {parent_version} to be the parent")
        tags = {"parent": str(parent_version), "weights_sha256": weights_sha256, "run_id": run_id,
                "request_id": request_id or "", "audit": "passed" if passed else "failed"}
        if failures:
            tags["audit_failures"] = "; ".join(failures)[:_MAX_TAG]
        tags = {k: _check_value("tag", k, v) for k, v in tags.items()}
        registry_run, source = self._store_version_files(model_name, Path(artifacts_dir),
                                                         {"model": model_name, "flow_run_id": run_id,
                                                          "weights_sha256": weights_sha256})
        mv = self.client.create_model_version(model_name, source, run_id=registry_run, tags=tags)
        if passed:
            self.client.set_registered_model_alias(model_name, PRODUCTION, mv.version)
        logger.info("registered %s v%s (audit %s)", model_name, mv.version, tags["audit"])
        return int(mv.version)

    def set_production(self, model_name: str, version: int) -> None:
        """Point ``production`` at ``version`` (used when a retried registration finds its passed version)."""
        self.client.set_registered_model_alias(model_name, PRODUCTION, str(version))

    def production_version(self, model_name: str) -> int | None:
        """Return the version the ``production`` alias points at (None when unset)."""
        try:
            return int(self.client.get_model_version_by_alias(model_name, PRODUCTION).version)
        except MlflowException:
            return None

    def lineage(self, model_name: str) -> list[dict[str, Any]]:
        """Return every live version with its tags and aliases, oldest first."""
        out = []
        for v in self._versions(model_name):
            mv = self.client.get_model_version(model_name, v.version)
            out.append({"version": int(mv.version), "tags": dict(mv.tags), "aliases": list(mv.aliases),
                        "source": mv.source, "registry_run_id": mv.run_id})
        return out

    def model_names(self) -> list[str]:
        """Return the names of every registered model, sorted."""
        return sorted(m.name for m in self.client.search_registered_models())

    def describe_version(self, model_name: str, version: int, description: str) -> None:
        """Set a version's description (markdown in the MLflow UI); refused if it holds a registered raw value."""
        self.client.update_model_version(model_name, str(version),
                                         description=_check_value("description", "description", description))

    def run_link(self, run_id: str, artifact_path: str = "") -> str:
        """Return the MLflow UI link (relative, hash-routed) to a run or to one of its artifacts."""
        experiment = self.client.get_run(run_id).info.experiment_id
        link = f"#/experiments/{experiment}/runs/{run_id}"
        return f"{link}/artifactPath/{artifact_path}" if artifact_path else link

    def retire(self, model_name: str, versions: Sequence[int], reason: str) -> Path:
        """Delete versions that still contain erased data, with their files, and record it.

        Deletes each version's registry entry, then its registry run (whose artifacts are exactly the version's
        files), then runs ``mlflow gc`` on those runs against the explicit backend store so the deletion is
        physical. Returns the path of the retirement record.

        Raises:
            RegistryError: A version does not exist, or is the current ``production`` version.
        """
        reason = _check_value("tag", "reason", reason)
        production = self.production_version(model_name)
        live = {int(v.version): v for v in self._versions(model_name)}
        for version in versions:
            if version not in live:
                raise RegistryError(f"{model_name!r} has no version {version}")
            if version == production:
                raise RegistryError(f"{model_name!r} v{version} is production; move the alias first")
        retired = []
        for version in sorted(set(versions)):
            mv = live[version]
            self.client.delete_model_version(model_name, str(version))
            if mv.run_id:
                self.client.delete_run(mv.run_id)
            retired.append({"version": version, "registry_run_id": mv.run_id, "source": mv.source,
                            "weights_sha256": mv.tags.get("weights_sha256", "")})
        self.gc([r["registry_run_id"] for r in retired if r["registry_run_id"]])
        leftovers = [r["source"] for r in retired if r["source"].startswith("file:")
                     and Path(r["source"].removeprefix("file://")).exists()]
        for path in leftovers:  # gc skips artifact roots it cannot resolve; never leave erased data behind
            shutil.rmtree(Path(path.removeprefix("file://")), ignore_errors=False)
        at = datetime.now(UTC)
        record = {"model": model_name, "versions": retired, "reason": reason, "retired_at": at.isoformat(),
                  "production_version": production, "tracking_uri": self.tracking_uri}
        with self.start_run(RETIREMENT_EXPERIMENT, run_name=f"retire-{model_name}",
                            tags={"model": model_name, "retired_versions": ",".join(str(r["version"])
                                                                                     for r in retired),
                                  "reason": reason}) as run_id:
            record["record_run_id"] = run_id
        safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", model_name)
        path = self.root / "retirements" / f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{safe_name}.json"
        atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
        with contextlib.suppress(MlflowException):
            self.client.set_registered_model_tag(model_name, "last_retirement",
                                                 f"{at.isoformat()} v{record['versions'][0]['version']}"
                                                 + "".join(f",v{r['version']}" for r in retired[1:]))
        logger.info("retired %s versions %s", model_name, [r["version"] for r in retired])
        return path

    def gc(self, run_ids: Sequence[str]) -> None:
        """Permanently delete runs already marked deleted (``mlflow gc`` on this adapter's backend store)."""
        if not run_ids:
            return
        from mlflow.cli import gc as gc_command

        # In-process (a subprocess costs ~4 s of imports). gc insists on a tracking URI; give it through the
        # environment for the duration of the call instead of mutating MLflow's process-global URI.
        previous = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = self.tracking_uri
        try:
            gc_command.main(["--backend-store-uri", self.tracking_uri, "--run-ids", ",".join(run_ids)],
                            standalone_mode=False)
        finally:
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous


def register_base(model_name: str, model_dir: Path, weights_sha256: str) -> int:
    """Register the base model as version 1 in the workspace registry (see :class:`MlflowAdapter`)."""
    return MlflowAdapter().register_base(model_name, model_dir, weights_sha256)


def register_version(model_name: str, artifacts_dir: Path, parent_version: int, weights_sha256: str,
                     run_id: str, request_id: str | None, verdict: Any) -> int:
    """Register an edited version in the workspace registry (see :meth:`MlflowAdapter.register_version`)."""
    return MlflowAdapter().register_version(model_name, artifacts_dir, parent_version, weights_sha256, run_id,
                                            request_id, verdict)


def retire(model_name: str, versions: Sequence[int], reason: str) -> Path:
    """Retire versions in the workspace registry (see :meth:`MlflowAdapter.retire`)."""
    return MlflowAdapter().retire(model_name, versions, reason)


