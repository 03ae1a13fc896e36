"""The ``demo`` flow: the whole product on the embedded SmolLM2, end to end, on generated data (DESIGN §7).

generate a corpus (a few thousand documents, synthetic PII of 20 people, four formats) → fine-tune SmolLM2 on the
records it repeats most until it reproduces their PII (the stand-in for a production model trained on that
corpus; cached) → ``compliance-sweep`` (version 1 = that model; finds, probes, erases what the sweep policy
flags, audits, version 2 + ``production``) → ``deletion-request`` for one person (name, e-mail, phone — the phone
is outside the sweep's entity types) → version 3 → the two signed reports → a summary. A failed audit does not
stop the demo: its version stays out of production, its report is written, and the summary shows the verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows.deletion import deletion_request
from flows.steps import AuditFailedError
from flows.sweep import compliance_sweep
from tasks import demo

MODEL_NAME = "smollm2-135m-demo"


@flow(name="demo")
def run_demo(root: Path, model_name: str | None = None) -> dict[str, Any]:
    """Run the demo in ``root`` (inputs) and the workspace (models, runs, MLflow); return its summary.

    The registered name defaults to ``smollm2-135m-demo-<cache key>``: a demo model built from other inputs or
    another fine-tuning config is another model, never a new version of an earlier one.
    """
    prep = demo.prepare_demo(root)
    model = demo.memorized_model(prep["training"])
    model_name = model_name or f"{MODEL_NAME}-{Path(model['model_dir']).name.rsplit('-', 1)[-1][:8]}"
    # a failed audit keeps its version out of production and is reported; the demo goes on to the request (which
    # then edits the production version) and its summary shows both verdicts
    sweep = _reported(lambda: compliance_sweep([prep["corpus"]], str(model["model_dir"]), prep["sweep_policy"],
                                               model_name))
    request = _reported(lambda: deletion_request(prep["request"], str(model["model_dir"]), [prep["corpus"]],
                                                 prep["request_policy"], model_name))
    return demo.summarize(prep, model, sweep, request)


def _reported(run) -> dict[str, Any]:
    """Run a flow; a failed audit returns its reported result instead of stopping the demo."""
    try:
        return run()
    except AuditFailedError as exc:
        if exc.result is None:
            raise
        return exc.result
