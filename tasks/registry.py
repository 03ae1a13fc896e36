"""Prefect tasks for the model registry (DESIGN §4) and the workspace copies of each version.

Offers :func:`model_name_for` (a model spec → its registered name), :func:`check_model_name` (the one naming
rule, for every command and flow), :func:`resolve_model_name`, :func:`check_model_spec` (refuse a model that
cannot be loaded or edited before anything runs), :func:`version_dir`, :func:`ensure_base`
(register the base as version 1 on first use; return the production version to edit), :func:`register_version`
(idempotent: a retried or resumed run finds the version it already registered) and :func:`publish_version`
(move an edit's staging directory to ``models/<name>/v<N>``).

Workspace layout: ``.revs/models/<name>/v<N>/`` holds version N (safetensors, tokenizer, and for edits ``patch/``
and ``targets.parquet``); edits are staged in ``.revs/models/<name>/.staging/<key>/`` until registered. The
registry stores each version's patch and, when the version is small (:data:`MAX_WEIGHTS_BYTES`), its weights.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from prefect import task

from tasks._logging import run_logger
from tasks._mlflow import MlflowAdapter
from tasks._workspace import check_name, workspace_dir
from tasks.caching import IO_RETRIES
from tasks.errors import UserError, retry_unless_user_error
from tasks.redaction import redact_failures
from tasks.results import BaseVersion

#: Versions whose files total at most this many bytes are stored in the registry with their weights.
MAX_WEIGHTS_BYTES = 64 << 20


def model_name_for(model: str) -> str:
    """Return the registered name of a model spec: an alias as is, a path's folder name, a hub id with ``--``.

    The result always follows :func:`check_model_name`'s rule.
    """
    text = str(model).rstrip("/")
    name = Path(text).name if Path(text).exists() else text
    return re.sub(r"[^A-Za-z0-9._-]+", "--", name).lstrip("-._")[:100].rstrip("-.") or "model"


def check_model_name(name: str, what: str = "--name") -> str:
    """Return ``name`` when it is a valid registered model name: one rule for every command and flow.

    Raises:
        tasks.errors.InvalidNameError: It is not 1-100 letters, digits, ``.``, ``_`` or ``-`` starting with a
            letter or digit (it names a folder under ``REVS_HOME/models``).
    """
    return check_name(name, what)


def resolve_model_name(model: str, model_name: str | None) -> str:
    """Return the registered name a flow uses: ``model_name`` checked, or derived from the model spec."""
    return check_model_name(model_name) if model_name is not None else model_name_for(model)


def check_model_spec(model: str, flag: str = "--model") -> str:
    """Refuse a model spec that cannot be loaded or edited, before anything runs (cheap: reads config.json only).

    A local directory must hold a ``config.json`` whose ``model_type`` is in the architecture table; a path that
    does not exist is refused; aliases, ``.gguf`` files and hub ids are checked when loaded.

    Raises:
        tasks.errors.UserError: Naming the flag, what is wrong and what to do.
    """
    from revs_engine.arch import supported_model_types
    from revs_engine.loading import EMBEDDED_ALIASES

    text = str(model).strip()
    path = Path(text).expanduser()
    if text.lower() in EMBEDDED_ALIASES or (not path.exists() and not text.startswith((".", "/", "~"))
                                            and path.suffix.lower() not in {".gguf", ".safetensors", ".json"}):
        return text  # an alias or a hub id
    if not path.exists():
        raise UserError(f"{flag} {text}: no such file or directory; give a model directory (with config.json), a "
                        f".gguf file, a hub id or one of the aliases {', '.join(sorted(EMBEDDED_ALIASES))}.")
    if path.is_dir():
        config = path / "config.json"
        try:
            model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except FileNotFoundError:
            raise UserError(f"{flag} {text}: no config.json in the directory; point {flag} at a Hugging Face "
                            "model directory (save_pretrained output).") from None
        except (OSError, ValueError, AttributeError):
            raise UserError(f"{flag} {text}: config.json is not a readable JSON object; re-save the model with "
                            "save_pretrained.") from None
        if model_type not in supported_model_types():
            raise UserError(f"{flag} {text}: model_type {model_type!r} is not supported; REVS edits "
                            f"{', '.join(supported_model_types())} (decoder-only causal LMs).")
    return text


def version_dir(model_name: str, version: int) -> Path:
    """Return ``.revs/models/<name>/v<version>`` (not created; the name is checked, the path stays inside)."""
    return workspace_dir("models", check_model_name(model_name, "model name")) / f"v{int(version)}"


def _registry_copy(src: Path) -> Path:
    """Return where :func:`_registry_files` copies ``src`` (beside it, hidden)."""
    return src.parent / f".registry-{src.name}"


def _registry_files(src: Path) -> tuple[Path, Path]:
    """Return ``(tmp root, dir to log)``: all of ``src`` when small, else only its patch and summaries."""
    tmp = _registry_copy(src)
    shutil.rmtree(tmp, ignore_errors=True)  # one name per source: a killed attempt's copy is replaced
    tmp.mkdir()
    dest = tmp / "files"
    size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    if size <= MAX_WEIGHTS_BYTES:
        shutil.copytree(src, dest)
    else:
        dest.mkdir()
        for name in ("patch", "targets.parquet", "config.json", "base.json"):
            if (src / name).is_dir():
                shutil.copytree(src / name, dest / name)
            elif (src / name).is_file():
                shutil.copyfile(src / name, dest / name)
    return tmp, dest


@task(name="ensure-base", **IO_RETRIES, retry_condition_fn=retry_unless_user_error)
@redact_failures
def ensure_base(model: str, model_name: str) -> BaseVersion:
    """Register ``model`` as version 1 of ``model_name`` on first use; return the version the ``production``
    alias points at."""
    from revs_engine.loading import load_model, save_model
    from tasks._models import model_runtime

    adapter = MlflowAdapter()
    version = adapter.production_version(model_name)
    if version is None:
        base = version_dir(model_name, 1)
        # saved in the dtype the versions are edited in (the runtime's; auto: the model's own), on the CPU
        loaded = load_model(model, cache_dir=workspace_dir("cache"), dtype=model_runtime()["dtype"])
        if not (base / "base.json").is_file():
            save_model(loaded.model, loaded.tokenizer, base)
            (base / "base.json").write_text(json.dumps({"source": str(model), "weights_sha256":
                                                        loaded.weights_sha256}, indent=2) + "\n")
        tmp, files = _registry_files(base)
        try:
            version = adapter.register_base(model_name, files, loaded.weights_sha256)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        run_logger().info("registered %s v1 (base)", model_name)
    path = version_dir(model_name, version)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: the production version v{version} of {model_name!r} is not in this "
                                "workspace; restore it or run in the workspace that produced it")
    return BaseVersion(name=model_name, version=int(version), dir=path)


@task(name="register-version", **IO_RETRIES, retry_condition_fn=retry_unless_user_error)
@redact_failures
def register_version(model_name: str, staged: Path, parent: int, edited_sha256: str, run_id: str,
                     request_id: str | None, verdict: dict[str, Any]) -> int:
    """Register an edit as a new version (alias ``production`` moves only on a passed audit); idempotent."""
    adapter = MlflowAdapter()
    found = adapter.find_version(model_name, {"weights_sha256": edited_sha256, "parent": str(parent),
                                              "request_id": request_id or ""})
    if found is not None:
        run_logger().info("%s v%d already registered for this edit; reusing it", model_name, found)
        shutil.rmtree(_registry_copy(Path(staged)), ignore_errors=True)  # left by the attempt that registered it
        production = adapter.production_version(model_name)
        if verdict.get("passed") and (production is None or production < found):
            adapter.set_production(model_name, found)  # the earlier attempt stopped before moving the alias
        return found
    tmp, files = _registry_files(Path(staged))
    try:
        return adapter.register_version(model_name, files, parent, edited_sha256, run_id, request_id, verdict)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@task(name="publish-version")
@redact_failures
def publish_version(model_name: str, staged: Path, version: int) -> Path:
    """Move the staged edit to ``models/<name>/v<version>`` (a no-op when an earlier attempt already did)."""
    dest = version_dir(model_name, version)
    if Path(staged).is_dir() and not dest.exists():
        os.rename(staged, dest)
    if not dest.is_dir():
        raise FileNotFoundError(f"{dest}: version files missing and nothing staged at {staged}")
    return dest


@task(name="read-lineage", **IO_RETRIES)
@redact_failures
def lineage(model_name: str, new_version: int | None, passed: bool) -> dict[str, Any]:
    """Return the report's lineage rows and version summary.

    ``still_containing_erased_data`` lists the ancestors of ``new_version`` (and the new version itself when its
    audit failed): the versions that hold what this run erased, which ``revs retire`` should delete.
    """
    rows = _lineage_rows(model_name)
    parents = {r["version"]: r["parent"] for r in rows}
    holding, v = [], parents.get(new_version) if new_version is not None else None
    while v is not None:
        holding.append(v)
        v = parents.get(v)
    if new_version is not None and not passed:
        holding.append(new_version)
    production = next((r["version"] for r in rows if "production" in r["aliases"]), None)
    return {"lineage": rows, "versions": {"registered": len(rows), "production": production,
                                          "still_containing_erased_data": sorted(holding)}}


def _lineage_rows(model_name: str) -> list[dict[str, Any]]:
    rows = []
    for v in MlflowAdapter().lineage(model_name):
        tags = v["tags"]
        rows.append({"version": v["version"], "parent": int(tags["parent"]) if tags.get("parent") else None,
                     "weights_sha256": tags.get("weights_sha256"), "run_id": tags.get("run_id") or None,
                     "request_id": tags.get("request_id") or None, "audit": tags.get("audit"),
                     "aliases": v["aliases"]})
    return rows
