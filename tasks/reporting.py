"""Audit reports: build, export with a signed manifest, verify.

Offers :func:`build_report`, :func:`export_report`, :func:`export_run`, :func:`verify_report`,
:class:`VerifyResult`, :class:`ReportDataError`, :data:`RUN_LAYOUT`, :data:`FORMATS` (the default export:
JSON + HTML) and :data:`ALL_FORMATS` (plus ``pdf``, printed from the HTML by headless Chromium, :mod:`tasks.pdf`).

Run directory (written by the flows, read by ``revs report export --run``)::

    .revs/runs/<run_id>/
      report_data.json   the input of build_report (schema below)
      evidence/          files copied verbatim into the export (findings/probes/audit Parquet, patch manifest...)

``report_data.json`` (only ``run_id`` and ``model`` are required; every value is an id, hash, count, score or
masked preview — never a raw personal value)::

    {"run_id": "...", "kind": "deletion-request" | "compliance-sweep",
     "answered_at": "<ISO time the flow wrote its report>",  # kept when the report is exported again later
     "request": {"request_id", "legal_basis", "requester_ref", "received_at", "verified_at",
                 "deadline": {"due", "statutory_due", "source", "extension"},      # tasks.deadlines
                 "subject": {"name_masked", "identifiers": [{"type", "masked_preview", "value_hmac"}]}},
     "model": {"name", "base_version", "new_version", "weights_sha256_before", "weights_sha256_after"},
     "lineage": [{"version", "parent", "weights_sha256", "run_id", "request_id", "audit"}],
     "versions": {"registered": 3, "production": 3, "still_containing_erased_data": [1, 2]},
     "config": {"revs": {...}, "policy": {...}},
     "targets": [{"target_id", "entity_type", "masked_preview", "value_hmac"}],
     "metrics": {"before": {name: number}, "after": {name: number}},
     "layer_ranks": {"before": [rank per layer], "after": [rank per layer]},
     "attacks": [{"name", "score", "threshold"}],      # scores after the edit, percent
     "thresholds": {...},
     "verdict": {"passed": bool, "failures": [...],
                 "checks": [{"name", "label", "value", "threshold", "comparison", "unit", "passed",
                             "explanation"}]}}

:func:`build_report` adds what the evidence files say (:mod:`tasks.report_facts`): ``found`` (per entity type:
occurrences, distinct values, sources, documents), ``found_totals``, ``values`` (one row per distinct erased value:
occurrences, edited tokens' ranks before/after, per-target audit metrics before/after) and ``erased`` (totals).

An export directory holds ``report.json``, ``report.html`` and/or ``report.pdf``, ``evidence/...``,
``manifest.json`` (every other file with its sha256 and size) and ``signature`` (over the exact bytes of
``manifest.json``, see :mod:`tasks.signing`). :func:`verify_report` fails on any changed, added or removed byte.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from tasks import report_facts, signing
from tasks._io import atomic_write_bytes, atomic_write_text, sha256_file
from tasks.redaction import SENSITIVE

REPORT_VERSION = 2
RUN_LAYOUT = {"data": "report_data.json", "evidence": "evidence"}
FORMATS = ("json", "html")
ALL_FORMATS = ("json", "html", "pdf")
MANIFEST = "manifest.json"
SIGNATURE = "signature"
#: Keys that would carry raw text; a report holding one is refused outright.
FORBIDDEN_KEYS = frozenset({"value", "raw", "raw_value", "text", "span_text", "prefix_text", "target_text",
                            "name"})
#: ... except where "name" is a model/attack/metric/audit-check name (and an audit check's numeric "value").
_NAME_ALLOWED_UNDER = frozenset({"model", "attacks", "evidence", "checks"})


class ReportDataError(ValueError):
    """Report data is malformed or would leak a raw personal value."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :func:`verify_report`: ``ok`` iff ``problems`` is empty; ``notes`` are caveats."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _scan(value: Any, path: str, parent: str = "") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ReportDataError(f"{path}: keys must be strings")
            allowed = (key == "name" and parent in _NAME_ALLOWED_UNDER) or (
                key == "value" and parent == "checks" and (item is None or isinstance(item, int | float)))
            if key in FORBIDDEN_KEYS and not allowed:
                raise ReportDataError(f"{path}.{key}: raw-text fields are not allowed in a report; "
                                      "use value_hmac / masked_preview")
            _scan(item, f"{path}.{key}", key)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _scan(item, f"{path}[{i}]", parent)
    elif isinstance(value, str):
        if SENSITIVE.find(value):
            raise ReportDataError(f"{path}: contains a raw personal value")
    elif value is not None and not isinstance(value, bool | int | float):
        raise ReportDataError(f"{path}: {type(value).__name__} is not JSON data")


def _residual_risk(data: Mapping[str, Any]) -> str:
    verdict = data.get("verdict") or {}
    attacks = ", ".join(a.get("name", "?") for a in data.get("attacks", [])) or "none recorded"
    retained = (data.get("versions") or {}).get("still_containing_erased_data") or []
    lines = []
    if verdict.get("passed"):
        lines.append("The audit passed: after the edit, the erased targets were not extracted by the attacks "
                     f"run ({attacks}) within the policy thresholds.")
    elif verdict:
        lines.append("The audit FAILED: at least one erased target may still be extractable; the production "
                     "alias was not moved to this version.")
    else:
        lines.append("No audit verdict was recorded: the erasure is unverified.")
    lines.append("REVS edits the weights so the targets are no longer produced or ranked highly; this lowers "
                 "extraction risk for the attacks measured but is not a proof that no trace of the data "
                 "remains — untested prompts, other white-box methods or fine-tuning may recover fragments.")
    if retained:
        lines.append("Model versions still containing the erased data: "
                     + ", ".join(str(v) for v in retained) + " — retire them (`revs retire`).")
    return " ".join(lines)


def build_report(data: Mapping[str, Any], evidence: Mapping[str, Path] | None = None) -> dict[str, Any]:
    """Turn run data (see the module docstring) and its evidence files into the report document.

    Args:
        data: The run data.
        evidence: Evidence name → path (``findings.parquet``, ``targets.parquet``, ``audit.parquet``...); the
            facts they hold are added to the report (missing files leave their part empty).

    Raises:
        ReportDataError: A required block is missing, a block has the wrong type, a raw value is present, or an
            evidence file is unreadable.
    """
    for key, kind in (("run_id", str), ("model", Mapping)):
        if not isinstance(data.get(key), kind):
            raise ReportDataError(f"{key}: required ({kind.__name__})")
    for key, kind in (("request", Mapping), ("lineage", list), ("versions", Mapping), ("config", Mapping),
                      ("targets", list), ("metrics", Mapping), ("layer_ranks", Mapping), ("attacks", list),
                      ("thresholds", Mapping), ("verdict", Mapping)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise ReportDataError(f"{key}: must be a {kind.__name__}")
    _scan(dict(data), "report")
    try:
        facts = report_facts.evidence_facts(list(data.get("targets") or []), evidence or {})
    except report_facts.EvidenceError as exc:
        raise ReportDataError(f"evidence/{exc}") from None
    _scan(facts, "report.evidence_facts")
    metrics = data.get("metrics") or {}
    generated_at = datetime.now(UTC).isoformat(timespec="seconds")
    report = {
        "report_version": REPORT_VERSION,
        "generated_at": generated_at,
        "answered_at": data.get("answered_at") or generated_at,
        "kind": data.get("kind", "deletion-request" if data.get("request") else "compliance-sweep"),
        "run_id": data["run_id"],
        "request": data.get("request"),
        "model": dict(data["model"]),
        "lineage": list(data.get("lineage") or []),
        "versions": dict(data.get("versions") or {}),
        "config": dict(data.get("config") or {}),
        "targets": list(data.get("targets") or []),
        "metrics": {"before": dict(metrics.get("before") or {}), "after": dict(metrics.get("after") or {})},
        "layer_ranks": dict(data.get("layer_ranks") or {}),
        "attacks": list(data.get("attacks") or []),
        "thresholds": dict(data.get("thresholds") or {}),
        "verdict": dict(data.get("verdict") or {"passed": False, "failures": ["no audit verdict recorded"]}),
        "residual_risk": _residual_risk(data),
        **facts,
    }
    return report


def _check_output(text: str, what: str) -> None:
    if SENSITIVE.find(text):
        raise ReportDataError(f"{what}: contains a raw personal value; refusing to write it")


def _evidence_items(evidence: Iterable[Path] | Mapping[str, Path]) -> list[tuple[str, Path]]:
    items = evidence.items() if isinstance(evidence, Mapping) else ((Path(p).name, p) for p in evidence)
    out = []
    for name, src in items:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ReportDataError(f"evidence name {name!r}: must be a relative path without '..'")
        out.append((str(rel), Path(src)))
    return out


def export_report(report: Mapping[str, Any], out_dir: Path, formats: Iterable[str] = FORMATS,
                  evidence: Iterable[Path] | Mapping[str, Path] = (), root: Path | None = None) -> Path:
    """Write the report, copy evidence in, write ``manifest.json`` and ``signature``; return ``out_dir``.

    Args:
        report: A document from :func:`build_report`.
        out_dir: Export directory; must not exist or be empty (stale files would make it unverifiable).
        formats: Any of ``json``, ``html``, ``pdf`` (printed from the HTML with headless Chromium; raises
            :class:`tasks.pdf.ChromiumNotFoundError` before anything is written when Chromium is missing).
        evidence: Files to include under ``evidence/`` (a mapping gives their names there).
        root: Workspace holding the signing key (default: ``REVS_HOME``).
    """
    formats = list(dict.fromkeys(formats))
    if not formats or set(formats) - set(ALL_FORMATS):
        raise ValueError(f"formats must be a non-empty subset of {ALL_FORMATS}, got {formats}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: not empty; export into a new directory")
    if "pdf" in formats:
        from tasks import pdf

        pdf.find_chromium()  # fail before writing anything
    items = _evidence_items(evidence)
    report = dict(report)
    report["evidence"] = [{"name": f"evidence/{name}", "sha256": sha256_file(src)} for name, src in items]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # built in a sibling temp directory and renamed into place: a failure (no PDF, disk full) leaves no half export
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        _write_export(report, stage, formats, items, root)
        if out_dir.exists():
            out_dir.rmdir()  # checked empty above
        os.rename(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out_dir


def _write_export(report: dict[str, Any], out_dir: Path, formats: list[str], items: list[tuple[str, Path]],
                  root: Path | None) -> None:
    if "json" in formats:
        text = json.dumps(report, indent=2, sort_keys=True) + "\n"
        _check_output(text, "report.json")
        atomic_write_text(out_dir / "report.json", text)
    if "html" in formats or "pdf" in formats:
        from tasks.report_html import render_html

        html = render_html(report)
        _check_output(html, "report.html")
        if "html" in formats:
            atomic_write_text(out_dir / "report.html", html)
        if "pdf" in formats:
            _write_pdf(html, out_dir / "report.pdf")
    for name, src in items:
        dest = out_dir / "evidence" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    files = sorted(p for p in out_dir.rglob("*") if p.is_file())
    manifest = {
        "report_version": REPORT_VERSION, "run_id": report.get("run_id"),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": [{"path": p.relative_to(out_dir).as_posix(), "sha256": sha256_file(p), "size": p.stat().st_size}
                  for p in files],
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    atomic_write_bytes(out_dir / MANIFEST, manifest_bytes)
    signature = signing.sign_bytes(manifest_bytes, root)
    atomic_write_text(out_dir / SIGNATURE, json.dumps(signature, indent=2, sort_keys=True) + "\n")


def _write_pdf(html: str, dest: Path) -> None:
    from tasks import pdf

    with tempfile.TemporaryDirectory(prefix="revs-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        pdf.html_to_pdf(page, dest)


def verify_report(out_dir: Path, root: Path | None = None,
                  trusted_public_key: bytes | None = None) -> VerifyResult:
    """Check an export: signature over the manifest, every listed file's sha256 and size, no extra files."""
    out_dir = Path(out_dir)
    manifest_path, sig_path = out_dir / MANIFEST, out_dir / SIGNATURE
    if not manifest_path.is_file():
        return VerifyResult(False, [f"{MANIFEST}: missing"])
    if not sig_path.is_file():
        return VerifyResult(False, [f"{SIGNATURE}: missing"])
    manifest_bytes = manifest_path.read_bytes()
    try:
        sig_doc = json.loads(sig_path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        sig_doc = None
    problems, notes = signing.verify_bytes(manifest_bytes, sig_doc, root, trusted_public_key)
    try:
        manifest = json.loads(manifest_bytes)
        listed = {entry["path"]: entry for entry in manifest["files"]}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        return VerifyResult(False, [*problems, f"{MANIFEST}: not a valid manifest"], notes)
    for rel, entry in sorted(listed.items()):
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or ".." in parts:
            problems.append(f"{rel}: path escapes the report directory")
            continue
        path = out_dir / rel
        if not path.is_file():
            problems.append(f"{rel}: listed in the manifest but missing")
        elif path.stat().st_size != entry.get("size") or sha256_file(path) != entry.get("sha256"):
            problems.append(f"{rel}: content changed (sha256 does not match the manifest)")
    present = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file() or p.is_symlink()}
    for rel in sorted(present - set(listed) - {MANIFEST, SIGNATURE}):
        problems.append(f"{rel}: not listed in the manifest (added after export)")
    return VerifyResult(not problems, problems, notes)


def load_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """Read a run directory: ``(report_data, {evidence name: path})``."""
    run_dir = Path(run_dir)
    data_path = run_dir / RUN_LAYOUT["data"]
    if not data_path.is_file():
        raise FileNotFoundError(f"{data_path}: missing; a run directory holds {RUN_LAYOUT['data']} and evidence/")
    try:
        data = json.loads(data_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportDataError(f"{data_path}: JSON syntax error at line {exc.lineno} column {exc.colno}") from None
    ev_dir = run_dir / RUN_LAYOUT["evidence"]
    evidence = {p.relative_to(ev_dir).as_posix(): p for p in sorted(ev_dir.rglob("*")) if p.is_file()} \
        if ev_dir.is_dir() else {}
    return data, evidence


def export_run(run_dir: Path, out_dir: Path, formats: Iterable[str] = FORMATS, root: Path | None = None) -> Path:
    """Build and export the report of one run directory (see :data:`RUN_LAYOUT`)."""
    data, evidence = load_run(run_dir)
    return export_report(build_report(data, evidence), out_dir, formats, evidence, root)
