"""The ``compliance-sweep`` flow (DESIGN §5): scan → probe → erase what the policy selects → audit → register →
report, with one MLflow run per flow run. Scheduled by cron through ``deploy/prefect.yaml``.

The model is locked for the whole erase sequence, so a sweep and deletion requests against one model serialize
and every edit builds on the latest production version. A failed audit keeps the version (``audit=failed``),
leaves the ``production`` alias, writes and attaches the report, then fails the flow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows import steps
from flows.policy import load_policy
from tasks import corpus as corpus_check
from tasks import inventory, probing, registry, tracking
from tasks._models import set_model_runtime
from tasks._workspace import workspace_dir
from tasks.locks import model_lock

LOCK_TIMEOUT_S = 6 * 3600.0


@flow(name="compliance-sweep", flow_run_name=tracking.sweep_run_name)
def compliance_sweep(corpus: list[Path], model: str, policy: Path | None = None, model_name: str | None = None,
                     partitions: int = 1, dask_address: str | None = None,
                     follow_symlinks: bool = False, device: str | None = None,
                     dtype: str | None = None) -> dict[str, Any]:
    """Sweep a corpus for memorized personal data and erase it from the model.

    Sweeps are incremental: a document whose text the corpus's previous scan read is not analysed again (its
    findings are carried over), and a finding the production version's memorization inventory has judged is not
    probed again (unless it would be erased: the edit needs its full probe).

    Args:
        corpus: Corpus files or directories.
        model: The model to govern (alias, directory, ``.gguf`` or hub id); registered as version 1 on first use,
            later sweeps edit its ``production`` version.
        policy: Policy TOML (``deploy/policy.example.toml``); defaults apply when omitted.
        model_name: Registered model name (default: derived from ``model``).
        partitions: Corpus partitions scanned, and findings partitions probed, in parallel.
        dask_address: Scan and probe partitions on this Dask scheduler (``partitions > 1`` without it: a local Dask
            cluster; each worker process loads the model once).
        follow_symlinks: Read symlinks in corpus directories that lead outside them (default: skipped, logged).
        device, dtype: Where models run and in which precision (``auto|cpu|cuda[:N]``, ``auto|fp32|bf16|fp16``;
            None: the process's ``REVS_DEVICE`` / ``REVS_DTYPE``, else ``auto``).

    Returns:
        ``{"run_id", "version", "passed", "report"}`` (``version`` is None when nothing needed erasing).
    """
    pol = load_policy(policy)
    runtime = set_model_runtime(device, dtype)
    name = registry.resolve_model_name(model, model_name)
    corpus_check.check_corpus(corpus)  # a missing or unreadable path fails before anything is registered
    run_id = tracking.open_run("compliance-sweep", name)
    run_dir = workspace_dir("runs", run_id)
    params = {"policy": pol.model_dump(mode="json"), "corpus": [str(c) for c in corpus], "model_spec": str(model),
              "partitions": partitions, **runtime}
    failed = True
    try:
        with model_lock(name, timeout=LOCK_TIMEOUT_S):
            base = registry.ensure_base(model, name)
            runner = steps.scan_runner(dask_address, partitions)
            scan = steps.scan_partitions.with_options(task_runner=runner) if runner else steps.scan_partitions
            probe = steps.probe_partitions.with_options(task_runner=runner) if runner else steps.probe_partitions
            # [inventory] types are found and probed too, for the inventory (guard + audit), never erased
            # only documents changed since the corpus's last scan are analysed; only findings the version's
            # inventory has not judged are probed
            findings = scan(corpus, run_dir / "findings.parquet", pol.scan_types, pol.entities.min_score,
                            partitions, pol.entities.phone_regions, follow_symlinks, incremental=True)
            criteria = pol.memorization.model_dump()
            judged = probing.carry_judged(findings, inventory.inventory_path(base.name, base.version), criteria,
                                          run_dir, pol.entities.types)
            fresh = probe(base.dir, judged.unjudged, run_dir / "probes_new.parquet", partitions)
            probes = probing.combine_probes([judged.carried, fresh], run_dir / "probes.parquet")
            selection = probing.select_for_erasure(findings, probes, criteria, run_dir, pol.entities.types)
            selection = steps.split_inventory(base, selection, selection.forget_findings, pol, run_dir, run_id,
                                              probed=(judged.unjudged, fresh))
            edited = audited = None
            if selection.n_forget:
                staging = workspace_dir("models", name, ".staging") / run_id
                edited = steps.edit(base, selection, findings, pol, staging, corpus)
                audited = steps.audit_and_register(base, edited, selection, corpus, pol, run_dir, run_id, None)
            report = steps.report("compliance-sweep", run_id, run_dir, base, edited, audited, findings, selection,
                                  pol, params)
        passed = audited is None or audited.passed
        failed = not passed
    finally:
        tracking.close_run(run_id, failed)
    result = {"run_id": run_id, "version": audited.version if audited else None, "passed": passed,
              "report": str(report)}
    if not passed:
        raise steps.AuditFailedError(f"audit failed for {name} v{audited.version}: "
                                     + "; ".join(audited.verdict["failures"]) + f" (report: {report})", result)
    return result
