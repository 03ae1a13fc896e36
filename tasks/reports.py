"""Prefect task that writes a run's report: run directory (data + evidence) → signed JSON/HTML export.

Offers :func:`build_report`. The run directory follows :data:`tasks.reporting.RUN_LAYOUT`, so
``revs report export --run .revs/runs/<run_id>`` can re-export it later; the export written here is
``.revs/runs/<run_id>/report/`` (report.json, report.html, evidence/, manifest.json, signature).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import task

from tasks import _io, reporting
from tasks._logging import run_logger
from tasks.redaction import redact_failures


@task(name="build-report")
@redact_failures
def build_report(run_dir: Path, data: dict[str, Any], evidence: dict[str, Path]) -> Path:
    """Write ``report_data.json`` and ``evidence/`` into ``run_dir``, then export and sign the report.

    Raises:
        tasks.reporting.ReportDataError: The data holds a raw personal value or a raw-text field.
    """
    run_dir = Path(run_dir)
    # the time of the answer, kept in report_data.json so a later `revs report export` states the same date
    data = {**data, "answered_at": datetime.now(UTC).isoformat(timespec="seconds")}
    files = {name: Path(src) for name, src in evidence.items() if Path(src).is_file()}
    report = reporting.build_report(data, files)  # validates (and refuses raw values) before anything is written
    ev_dir = run_dir / reporting.RUN_LAYOUT["evidence"]
    for name, src in evidence.items():
        src, dest = Path(src), ev_dir / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copyfile(src, dest)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    _io.atomic_write_text(run_dir / reporting.RUN_LAYOUT["data"], text)
    out = run_dir / "report"
    if out.exists():
        shutil.rmtree(out)  # a re-run of this step replaces its own earlier export
    _, files = reporting.load_run(run_dir)
    reporting.export_report(report, out, reporting.FORMATS, files)
    run_logger().info("report written and signed: %s (audit %s)", out,
                          "passed" if report["verdict"].get("passed") else "FAILED")
    return out


@task(name="attach-report")
@redact_failures
def attach_report(report_dir: Path, verdict: dict[str, Any], key: str) -> str:
    """Attach the report to the flow run as a markdown artifact (verdict, failures, where the report is)."""
    from prefect.artifacts import create_markdown_artifact

    lines = [f"**Audit {'passed' if verdict.get('passed') else 'FAILED'}**", "",
             f"Signed report: `{report_dir}` (verify with `revs report verify {report_dir}`)", ""]
    lines += [f"- {failure}" for failure in verdict.get("failures") or []]
    slug = "".join(c if c.isalnum() else "-" for c in key.lower()).strip("-")[:60] or "report"
    return str(create_markdown_artifact("\n".join(lines), key=f"report-{slug}",
                                        description="REVS compliance report"))
