"""Prefect tasks that record a flow run in MLflow: one MLflow run per flow run (DESIGN §4, issue 6 item 3).

Offers :func:`open_run` (creates the run: kind, model, Prefect flow-run id, library versions and code commit as
params), :func:`summarize_findings` (counts per entity type, memorized and erased findings by id / masked preview /
HMAC — never a raw value), :func:`log_run` (configs as params, metrics before/after, artifacts; and, when the run
registered a model version, that version's description: :func:`version_description`) and :func:`close_run`; and
the Prefect flow-run names :func:`deletion_run_name` (the request id, never the subject) and
:func:`sweep_run_name`.
Values pass :class:`tasks._mlflow.MlflowAdapter`'s raw-value guard on the way in.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from prefect import task
from prefect.runtime import flow_run

from tasks import _io
from tasks._logging import run_logger
from tasks._mlflow import MlflowAdapter
from tasks.caching import IO_RETRIES
from tasks.redaction import redact_failures

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
LIBRARIES = ("revs-compliance", "torch", "transformers", "prefect", "mlflow", "presidio-analyzer", "pyarrow")


def library_versions() -> dict[str, str]:
    """Return ``{"version.<dist>": version}`` of the libraries that shape a result."""
    out = {}
    for dist in LIBRARIES:
        try:
            out[f"version.{dist}"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[f"version.{dist}"] = "not installed"
    return out


def code_commit() -> str:
    """Return the git commit of this checkout (``unknown`` outside a git checkout)."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,  # noqa: S603, S607
                             timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out or "unknown"


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Flatten nested config dicts into ``prefix.key.sub`` params (lists become JSON strings)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    if isinstance(value, list | tuple):
        return {prefix: json.dumps(list(value))}
    return {prefix: "" if value is None else value}


def request_run_name(parameters: dict[str, Any]) -> str:
    """Return a deletion-request flow run's name: its request id, read from the request file; never a value.

    The request file's path is not used (its name may be the subject's); an unreadable file or an id that is not
    a safe id gives ``deletion-request`` (the flow itself then reports the problem).
    """
    try:
        request_id = json.loads(Path(parameters["request"]).read_text(encoding="utf-8")).get("request_id")
    except (KeyError, TypeError, OSError, ValueError, AttributeError):
        return "deletion-request"
    return request_id if isinstance(request_id, str) and _SAFE_NAME.fullmatch(request_id) else "deletion-request"


def deletion_run_name() -> str:
    """``flow_run_name`` of the deletion-request flow (see :func:`request_run_name`)."""
    return request_run_name(dict(flow_run.parameters or {}))


def sweep_run_name() -> str:
    """``flow_run_name`` of the compliance-sweep flow: ``sweep-<model name>-<UTC time>``."""
    params = dict(flow_run.parameters or {})
    name = str(params.get("model_name") or Path(str(params.get("model") or "model")).name)
    name = name if _SAFE_NAME.fullmatch(name) else "model"
    return f"sweep-{name}-{datetime.now(UTC).strftime('%Y%m%dT%H%MZ')}"


@task(name="open-mlflow-run", **IO_RETRIES)
@redact_failures
def open_run(kind: str, model_name: str, request_id: str | None = None) -> str:
    """Create this flow run's MLflow run; return its id (also the name of the run's workspace folder)."""
    tags = {"kind": kind, "model": model_name, "request_id": request_id or "",
            "prefect_flow_run_id": str(flow_run.get_id() or ""), "code_commit": code_commit()}
    adapter = MlflowAdapter()
    run_id = adapter.open_run(run_name=f"{kind}-{flow_run.get_name() or 'local'}", tags=tags)
    adapter.log_params(run_id, {"kind": kind, "model": model_name, "code_commit": tags["code_commit"],
                                **library_versions()})
    run_logger().info("MLflow run %s", run_id)
    return run_id


@task(name="summarize-findings")
@redact_failures
def summarize_findings(findings: Path, forget: Path | None, out: Path) -> dict[str, Any]:
    """Write a JSON summary of the findings: counts per entity type and the erased ones (ids/previews/HMACs).

    Returns:
        The summary, with ``path`` (where it was written).
    """
    from pii_detect.schema import FINDINGS_SCHEMA

    rows = _io.read_table(findings, FINDINGS_SCHEMA).to_pylist()
    erased = _io.read_table(forget, FINDINGS_SCHEMA).to_pylist() if forget is not None else []
    doc = {"findings": len(rows), "by_entity_type": dict(Counter(r["entity_type"] for r in rows)),
           "erased": [{k: r[k] for k in ("finding_id", "entity_type", "masked_preview", "value_hmac")}
                      for r in erased]}
    _io.atomic_write_text(out, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return {**doc, "path": Path(out)}


def _cell(check: dict[str, Any], key: str) -> str:
    value, unit = check.get(key), str(check.get("unit") or "")
    if value is None:
        return "not measured"
    from tasks.report_format import fmt

    return fmt(float(value) if isinstance(value, int) and not isinstance(value, bool) else value, unit)


def version_description(report: dict[str, Any], report_link: str, run_id: str) -> str:
    """Return a model version's description (markdown): the audit verdict, each check, and where the report is.

    Args:
        report: The signed ``report.json`` of the run that registered the version.
        report_link: MLflow UI link to the report's HTML artifact.
        run_id: The run whose artifact ``report/`` holds the signed report.
    """
    verdict = report.get("verdict") or {}
    checks = verdict.get("checks") or []
    request = (report.get("request") or {}).get("request_id")
    origin = f"deletion request `{request}`" if request else "compliance sweep"
    head = (f"**Audit {'passed' if verdict.get('passed') else 'FAILED'}**: "
            f"{sum(1 for c in checks if c.get('passed'))} of {len(checks)} checks met their thresholds "
            f"({origin}; built from v{(report.get('model') or {}).get('base_version')}).")
    lines = [head, "", "| check | measured | threshold | result |", "|---|---|---|---|"]
    for c in checks:
        sign = {">=": "≥", "<=": "≤"}.get(str(c.get("comparison")), str(c.get("comparison")))
        lines.append(f"| {c.get('label') or c.get('name')} | {_cell(c, 'value')} | {sign} {_cell(c, 'threshold')} "
                     f"| {'PASS' if c.get('passed') else 'FAIL'} |")
    lines += ["", f"Signed report: [report.html]({report_link}) (artifact `report/` of run `{run_id}`: "
                  "report.json, report.html, evidence, manifest.json, signature; check it with "
                  "`revs report verify`)."]
    return "\n".join(lines)


@task(name="log-mlflow-run", **IO_RETRIES)
@redact_failures
def log_run(run_id: str, params: dict[str, Any], metrics: dict[str, dict[str, float]],
            artifacts: dict[str, Path], tags: dict[str, Any]) -> str:
    """Log configs as params, ``metrics[stage][name]`` as ``<stage>.<name>``, artifacts and tags to the run.

    When ``artifacts["report"]`` is a report directory whose run registered a model version, that version's
    description is set to the verdict, every check and a link to the report artifact.
    """
    adapter = MlflowAdapter()
    adapter.log_params(run_id, flatten("", params))
    adapter.log_metrics(run_id, {f"{stage}.{name}".replace("@", "_at_"): float(value)
                                 for stage, values in metrics.items() for name, value in values.items()
                                 if isinstance(value, int | float)})
    for name, path in artifacts.items():
        if Path(path).exists():
            adapter.log_artifacts(run_id, Path(path), name if Path(path).is_dir() else None)
    adapter.set_tags(run_id, tags)
    report_json = Path(artifacts.get("report") or "none") / "report.json"
    if report_json.is_file():
        report = json.loads(report_json.read_text(encoding="utf-8"))
        model = report.get("model") or {}
        if model.get("new_version") is not None:
            link = adapter.run_link(run_id, "report/report.html")
            adapter.describe_version(model["name"], int(model["new_version"]),
                                     version_description(report, link, run_id))
            run_logger().info("%s v%s: description set (verdict and report link)", model["name"],
                              model["new_version"])
    return run_id


@task(name="close-mlflow-run", **IO_RETRIES)
@redact_failures
def close_run(run_id: str, failed: bool) -> None:
    """End the MLflow run as FINISHED or FAILED."""
    MlflowAdapter().close_run(run_id, failed)
