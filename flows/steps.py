"""The erase → audit → register → report sequence shared by both flows (composition only: tasks in order).

Offers :class:`AuditFailedError`, :func:`scan_runner` (the task runner for scan partitions: threads, or Dask),
:func:`scan_partitions` (a subflow mapping the scan over corpus partitions), :func:`probe_partitions` (the same for
probing), :func:`edit`,
:func:`audit_and_register` and :func:`report`. Every value passed between them is a path, an id, a hash, a
count or a masked preview.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, unmapped

from flows.policy import Policy
from tasks import auditing, inventory, pii, probing, registry, reports, tracking, unlearning
from tasks.results import AuditOutcome, BaseVersion, EditResult, Selection


class AuditFailedError(RuntimeError):
    """The edit's audit did not meet the policy; the version is kept (``audit=failed``) and reported.

    ``result`` is the flow's would-be return value (run id, version, report path) when the flow knows it.
    """

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message, result)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def result(self) -> dict | None:
        """The failed flow's ``{"run_id", "version", "passed", "report"}`` (None when unknown)."""
        return self.args[1] if len(self.args) > 1 else None


def scan_runner(dask_address: str | None = None, workers: int = 1):
    """Return the task runner for scanning: a Dask cluster (at ``dask_address``, or local) or None (threads)."""
    if dask_address is None and workers <= 1:
        return None
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1})


@flow(name="scan-partitions")
def scan_partitions(corpus: list[Path], out: Path, entities: list[str], min_score: float,
                    partitions: int = 1, phone_regions: list[str] | None = None,
                    follow_symlinks: bool = False, incremental: bool = False) -> Path:
    """Scan the corpus partition by partition (mapped over the flow's task runner); merge the findings.

    ``incremental``: analyse only documents whose text the corpus's last scan did not read (its scan index),
    carry the others' findings over, and replace the index with this scan's.
    """
    parts = pii.partition_corpus(corpus, partitions, follow_symlinks)
    outs = [Path(out).with_name(f"{Path(out).stem}.part{i}.parquet") for i in range(len(parts))]
    index = pii.scan_index_path(corpus, entities, min_score, phone_regions) if incremental else None
    index_outs = [o.with_suffix(".index.parquet") if incremental else None for o in outs]
    futures = pii.scan_corpus.map(parts, outs, entities=unmapped(entities), min_score=unmapped(min_score),
                                  phone_regions=unmapped(phone_regions), index=unmapped(index),
                                  index_out=index_outs)
    merged = pii.merge_findings([f.result() for f in futures], out)
    if index is not None:
        pii.merge_index(index_outs, index)
    return merged


@flow(name="probe-partitions")
def probe_partitions(model_dir: Path, findings: Path, out: Path, partitions: int = 1) -> Path:
    """Probe the findings in up to ``partitions`` contiguous slices mapped over the flow's task runner (threads, or
    Dask workers: each worker process loads the model once) and concatenate the probes in the findings' order;
    one partition probes in this process."""
    if partitions <= 1:
        return probing.probe_findings(model_dir, findings, out)
    parts = probing.split_findings(findings, partitions, Path(out).parent / f"{Path(out).stem}.parts")
    outs = [Path(out).with_name(f"{Path(out).stem}.part{i}.parquet") for i in range(len(parts))]
    futures = probing.probe_findings.map(unmapped(model_dir), parts, outs)
    return probing.combine_probes([f.result() for f in futures], out)


def split_inventory(base: BaseVersion, selection: Selection, exclude: Path, policy: Policy, run_dir: Path,
                    run_id: str, *, probed: tuple[Path, Path] | None = None,
                    corpus_findings: Path | None = None) -> Selection:
    """Make sure the base version has a memorization inventory — this run's probes of the whole scan (``probed``:
    findings, probes), or else a probed seeded sample of ``corpus_findings`` of the entity types the inventory
    does not cover yet (all of them when there is none) — and split it, minus every value of
    ``exclude``, into the erasure's guard (with the run's own retained memorized findings) and the audit's
    held-out slice; return the selection with ``guard_findings`` and ``audit_findings``."""
    name, version = base.name, base.version
    criteria = policy.memorization.model_dump()
    inv = policy.inventory
    if probed is not None:
        inventory.record_inventory(name, version, probed[0], probed[1], run_id, criteria)
    elif corpus_findings is not None and Path(corpus_findings).is_file() and inv.sample \
            and (missing := inventory.missing_types(name, version, corpus_findings)):
        sample = inventory.sample_findings(corpus_findings, inv.sample, inv.seed,
                                           run_dir / "inventory_sample.parquet", exclude, missing)
        probes = probing.probe_findings(base.dir, sample, run_dir / "inventory_probes.parquet")
        inventory.record_inventory(name, version, sample, probes, run_id, criteria)
    if not inventory.inventory_path(name, version).is_file():
        return selection
    split = inventory.split_inventory(inventory.inventory_path(name, version), exclude, run_dir, inv.holdout_pct,
                                      inv.seed, inv.holdout_limit, selection.guard_findings)
    return selection.model_copy(update={"guard_findings": split["guard"], "audit_findings": split["audit"],
                                        "n_guard": split["n_guard"], "n_holdout": split["n_holdout"]})


def edit(base: BaseVersion, selection: Selection, findings: Path, policy: Policy,
         staging: Path, corpus: list[Path] | None = None) -> EditResult:
    """Erase the selected findings from the base version with REVS into ``staging``, guarded by the retained
    findings and benign corpus documents."""
    return unlearning.unlearn(base.dir, selection.forget_probes, Path(findings), staging, policy.revs,
                              selection.guard_findings, corpus)


def audit_and_register(base: BaseVersion, edited: EditResult, selection: Selection,
                       corpus: list[Path], policy: Policy, run_dir: Path, run_id: str,
                       request_id: str | None) -> AuditOutcome:
    """Audit before/after, judge against the policy, register the version (alias only on a pass), publish it."""
    thresholds = policy.audit.to_dict()
    retain = selection.audit_findings or selection.retain_findings
    audit = auditing.audit_model(base.dir, edited.model_dir, selection.forget_findings, retain, corpus,
                                 run_dir / "audit.parquet", [thresholds["efficacy_k"]], policy.audit.settings(),
                                 selection.guard_findings)
    judged = auditing.evaluate_audit(audit, thresholds)
    # the erased findings judged on the new version (one teacher-forced pass over them, before publishing moves
    # its directory), so its inventory carries their scores on this version, not their parent's
    erased_probes = probing.probe_findings(edited.model_dir, selection.forget_findings,
                                           run_dir / "erased_probes.parquet")
    version = registry.register_version(base.name, edited.model_dir, base.version, edited.edited_sha256, run_id,
                                        request_id, judged["verdict"])
    registry.publish_version(base.name, edited.model_dir, version)
    inv = inventory.update_after_edit(base.name, base.version, version, selection.forget_findings, audit, run_id,
                                      erased_probes)
    return AuditOutcome(**judged, audit=audit, version=version, inventory=inv)


def report(kind: str, run_id: str, run_dir: Path, base: BaseVersion, edited: EditResult | None,
           audited: AuditOutcome | None, findings: Path, selection: Selection, policy: Policy,
           params: dict[str, Any], request: dict[str, Any] | None = None) -> Path:
    """Write the signed report, attach it to the flow run, and log params/metrics/artifacts to MLflow."""
    verdict = audited.verdict if audited else {"passed": True, "failures": []}
    new_version = audited.version if audited else None
    summary = tracking.summarize_findings(Path(findings), selection.forget_findings,
                                          run_dir / "findings_summary.json")
    context = registry.lineage(base.name, new_version, bool(verdict["passed"]))
    evidence = {"findings_summary.json": summary["path"], "findings.parquet": Path(findings)}
    if audited:
        evidence["audit.parquet"] = audited.audit
    if edited:
        patch = Path(registry.version_dir(base.name, new_version)) if new_version else edited.model_dir
        evidence |= {"patch/manifest.json": patch / "patch" / "manifest.json",
                     "patch/edits.parquet": patch / "patch" / "edits.parquet",
                     "targets.parquet": patch / "targets.parquet"}
    data = {"run_id": run_id, "kind": kind, "request": request,
            "model": {"name": base.name, "base_version": base.version, "new_version": new_version,
                      "weights_sha256_before": edited.base_sha256 if edited else None,
                      "weights_sha256_after": edited.edited_sha256 if edited else None},
            **context, "config": {"revs": edited.config if edited else {},
                                  "policy": policy.model_dump(mode="json")},
            "targets": [{"target_id": t["finding_id"], "entity_type": t["entity_type"],
                         "masked_preview": t["masked_preview"], "value_hmac": t["value_hmac"]}
                        for t in summary["erased"]],
            "metrics": audited.metrics if audited else {},
            "layer_ranks": audited.layer_ranks if audited else {},
            "attacks": audited.attacks if audited else [], "thresholds": policy.audit.to_dict(),
            "verdict": verdict}
    out = reports.build_report(run_dir, data, evidence)
    reports.attach_report(out, verdict, (request or {}).get("request_id") or run_id)
    tracking.log_run(run_id, params | {"erase": data["config"]["revs"]}, data["metrics"],
                     {"findings_summary": summary["path"], "audit": run_dir / "audit.parquet", "report": out,
                      "patch_manifest": evidence.get("patch/manifest.json", run_dir / "none"),
                      "inventory": (audited.inventory if audited else None) or run_dir / "none"},
                     {"audit": "passed" if verdict["passed"] else "failed",
                      "new_version": "" if new_version is None else str(new_version)})
    return out
