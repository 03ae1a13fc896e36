"""The ``deletion-request`` flow (DESIGN §5): answer one verified erasure request (GDPR Art. 17).

received → located → probed → edited → audited → reported (or failed). Every step records its evidence in the
request's state (``.revs/requests/<id>/state.json``) and is skipped when a later run finds it done, so re-running
a request resumes where it stopped and never edits twice (the edit is also idempotent on its staging directory,
and registration on the version's tags). Requests against one model are serialized by the model lock; each
edits the current ``production`` version, so concurrent requests all end up in the final version.

Flow parameters are paths and names only: the request file stays where the user keeps it and its values live
only in this process's memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows import steps
from flows.params import load_request
from flows.policy import load_policy
from tasks import corpus as corpus_check
from tasks import corpus_inspection, free_text, pii, probing, registry, requesting, tracking
from tasks._models import set_model_runtime
from tasks._workspace import workspace_dir
from tasks.locks import model_lock
from tasks.redaction import SENSITIVE
from tasks.results import AuditOutcome, BaseVersion, EditResult, Selection

LOCK_TIMEOUT_S = 6 * 3600.0


@flow(name="deletion-request", flow_run_name=tracking.deletion_run_name)
def deletion_request(request: Path, model: str, corpus: list[Path], policy: Path | None = None,
                     model_name: str | None = None, rerun: bool = False,
                     follow_symlinks: bool = False, device: str | None = None,
                     dtype: str | None = None) -> dict[str, Any]:
    """Locate a data subject in the corpus, erase what the model memorized of them, audit, register, report.

    Args:
        request: Path to the deletion-request JSON (validated; see :mod:`flows.params`).
        model: The governed model (alias, directory, ``.gguf`` or hub id).
        corpus: Corpus files or directories.
        policy: Policy TOML; defaults apply when omitted.
        model_name: Registered model name (default: derived from ``model``).
        rerun: Answer the request again from the start (a new attempt, history kept), e.g. against a corrected
            corpus; without it a request started against another corpus is refused.
        follow_symlinks: Read symlinks in corpus directories that lead outside them (default: skipped, logged).
        device, dtype: Where models run and in which precision (``auto|cpu|cuda[:N]``, ``auto|fp32|bf16|fp16``;
            None: the process's ``REVS_DEVICE`` / ``REVS_DTYPE``, else ``auto``).

    Returns:
        ``{"request_id", "run_id", "version", "passed", "report", "warnings"}``.
    """
    req, pol = load_request(request), load_policy(policy)
    runtime = set_model_runtime(device, dtype)
    free_text.check_free_text(req.requester_ref, f"{request}: requester_ref", "TICKET-4711")  # stored as is
    name = registry.resolve_model_name(model, model_name)
    corpus_check.check_corpus(corpus)  # a missing or unreadable path fails before anything is recorded
    state = requesting.begin_request(req, corpus_check.corpus_fingerprint(corpus), rerun, Path(request))
    rid, ev = req.request_id, state["evidence"]
    if state["status"] == "reported":
        return {"request_id": rid, "run_id": ev["reported"]["run_id"], "version": ev["audited"].get("version"),
                "passed": ev["audited"]["passed"], "report": ev["reported"]["report"],
                "warnings": ev["located"].get("warnings", [])}
    run_id = tracking.open_run("deletion-request", name, rid)
    run_dir = workspace_dir("runs", run_id)
    params = {"policy": pol.model_dump(mode="json"), "corpus": [str(c) for c in corpus], "model_spec": str(model),
              "request_id": rid, "legal_basis": req.legal_basis, **runtime}
    try:
        with model_lock(name, timeout=LOCK_TIMEOUT_S):
            result = _run_steps(request, req, pol, name, model, corpus, ev, state["completed"], run_id, run_dir,
                                params, state["attempt"], follow_symlinks)
    except BaseException as exc:
        requesting.fail_request(rid, f"{type(exc).__name__}: {exc}")
        tracking.close_run(run_id, True)
        safe = SENSITIVE.redact_exception(exc)  # before Prefect logs or stores it
        if safe is exc:
            raise
        raise safe from None
    tracking.close_run(run_id, not result["passed"])
    if not result["passed"]:
        requesting.fail_request(rid, f"audit failed; version {result['version']} kept with audit=failed; "
                                f"report: {result['report']}")
        raise steps.AuditFailedError(f"request {rid}: audit failed for {name} v{result['version']} "
                                     f"(report: {result['report']})", result)
    return result


def _run_steps(request: Path, req, pol, name: str, model: str, corpus: list[Path], ev: dict[str, Any],
               done: list[str], run_id: str, run_dir: Path, params: dict[str, Any],
               attempt: int = 1, follow_symlinks: bool = False) -> dict[str, Any]:
    """Run every step not yet done, recording evidence after each; return the flow's result."""
    rid = req.request_id
    base = registry.ensure_base(model, name) if "edited" not in done else \
        BaseVersion.model_validate(ev["edited"]["base"])
    if "located" not in done:
        inspection = corpus_inspection.inspect_corpus(corpus, run_dir / "corpus_issues.json", follow_symlinks)
        # the corpus's scan index (shared with sweeps) spares re-analysing documents a previous scan read
        scan = steps.scan_partitions(corpus, run_dir / "scan.parquet", pol.scan_types, pol.entities.min_score,
                                     phone_regions=pol.entities.phone_regions, follow_symlinks=follow_symlinks,
                                     incremental=True)
        found = pii.locate_subject(Path(request), corpus, run_dir / "findings.parquet", scan, follow_symlinks)
        located = corpus_inspection.located_evidence(found, inspection)
        ev["located"] = requesting.advance_request(rid, "located", {"run_id": run_id, **located})[
            "evidence"]["located"]
    findings = Path(ev["located"]["findings"])
    if "probed" not in done:
        probes = probing.probe_findings(base.dir, findings, run_dir / "probes.parquet")
        sel = probing.select_for_erasure(findings, probes, pol.memorization.model_dump(), run_dir)
        if sel.n_forget:  # guard with the version's inventory (built from a corpus sample when it has none)
            sel = steps.split_inventory(base, sel, findings, pol, run_dir, run_id,
                                        corpus_findings=run_dir / "scan.parquet")
        ev["probed"] = requesting.advance_request(rid, "probed", sel.model_dump(mode="json"))["evidence"]["probed"]
    selection = Selection.model_validate(ev["probed"])
    if "edited" not in done:
        edited = None
        if selection.n_forget:
            staging = workspace_dir("models", name, ".staging") / (rid if attempt == 1 else f"{rid}.a{attempt}")
            edited = steps.edit(base, selection, findings, pol, staging, corpus).model_dump(mode="json")
        ev["edited"] = requesting.advance_request(rid, "edited", {"base": base.model_dump(mode="json"),
                                                                  "edit": edited})["evidence"]["edited"]
    edited = EditResult.model_validate(ev["edited"]["edit"]) if ev["edited"]["edit"] else None
    if "audited" not in done:
        audited = None
        if edited:
            audited = steps.audit_and_register(base, edited, selection, corpus, pol, run_dir, run_id, rid)
        record = audited.model_dump(mode="json") if audited else \
            {"version": None, "verdict": {"passed": True, "failures": []}}
        ev["audited"] = requesting.advance_request(rid, "audited", {**record,
                                                                    "passed": record["verdict"]["passed"]})[
            "evidence"]["audited"]
    audited = AuditOutcome.model_validate({k: v for k, v in ev["audited"].items() if k != "passed"}) \
        if ev["audited"].get("version") is not None else None
    report = steps.report("deletion-request", run_id, run_dir, base, edited, audited, findings, selection, pol,
                          params, requesting.request_block(rid))
    result = {"request_id": rid, "run_id": run_id, "version": ev["audited"].get("version"),
              "passed": bool(ev["audited"]["passed"]), "report": str(report),
              "warnings": ev["located"].get("warnings", [])}
    if result["passed"]:
        requesting.advance_request(rid, "reported", {"run_id": run_id, "report": str(report)})
    return result
