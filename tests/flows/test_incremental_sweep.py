"""A scheduled sweep over a grown corpus analyses only new or changed documents and probes only findings the
production version's inventory has not judged, with the same findings a full scan gives (issue 21.6)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "fresh_workspace")]

NEW_DOC = "Registry note: Ada Lindqvist, SSN 219-09-9999, reachable at ada.lindqvist@example.org.\n"


def _ids(path: Path) -> list[str]:
    from pii_detect.schema import FINDINGS_SCHEMA
    from tasks import _io

    return sorted(_io.read_table(path, FINDINGS_SCHEMA).column("finding_id").to_pylist())


def test_a_sweep_over_a_grown_corpus_analyses_and_probes_only_what_is_new(world, tmp_path, monkeypatch):
    from flows.sweep import compliance_sweep
    from pii_detect.scanner import Scanner
    from pii_detect.schema import FINDINGS_SCHEMA
    from tasks import _io, pii

    corpus = tmp_path / "corpus"
    shutil.copytree(world.corpus, corpus)
    runs = Path(os.environ["REVS_HOME"]) / "runs"
    analysed: list[int] = []
    scan_documents = Scanner.scan_documents
    monkeypatch.setattr(Scanner, "scan_documents",
                        lambda self, docs: analysed.append(len(docs := list(docs))) or scan_documents(self, docs))
    # given a first sweep (scans and probes everything, erases the memorized SSNs: v1 -> v2) ...
    first = compliance_sweep([corpus], str(world.model), world.sweep_policy, "tiny-incremental")
    assert first["version"] == 2
    n_docs, n_findings = sum(analysed), _io.read_table(runs / first["run_id"] / "findings.parquet").num_rows
    assert n_docs == len(list(corpus.iterdir()))
    # ... whose inventory holds the erased SSNs as probed on v2 by the edit's run, not with their v1 scores
    from tasks.inventory import INVENTORY_SCHEMA, inventory_path

    erased = _ids(runs / first["run_id"] / "forget.parquet")
    inv = {r["finding_id"]: r for r in _io.read_table(inventory_path("tiny-incremental", 2),
                                                       INVENTORY_SCHEMA).to_pylist()}
    v2_probe = {r["finding_id"]: r for r in _io.read_table(runs / first["run_id"] / "erased_probes.parquet")
                .to_pylist()}
    assert erased
    for f in erased:
        assert (inv[f]["status"], inv[f]["judged_by"]) == ("erased", first["run_id"])
        assert inv[f]["extraction_score"] == v2_probe[f]["extraction_score"]
    # and a second sweep on the unchanged corpus: nothing analysed; on v2 it probes again only the memorized values
    # v2 inherited from v1 unjudged; the erased SSNs and what the audit judged are carried over
    analysed.clear()
    second = compliance_sweep([corpus], str(world.model), world.sweep_policy, "tiny-incremental")
    assert sum(analysed) == 0
    assert second["version"] is None
    assert second["passed"]
    reprobed = _ids(runs / second["run_id"] / "unjudged.parquet")
    assert not set(erased) & set(reprobed)
    assert len(reprobed) < n_findings
    # when the corpus grows by one document and the sweep runs again
    (corpus / "zz_new.txt").write_text(NEW_DOC, encoding="utf-8")
    analysed.clear()
    third = compliance_sweep([corpus], str(world.model), world.sweep_policy, "tiny-incremental")
    # then only the new document was analysed, and the findings equal a full scan's
    assert sum(analysed) == 1, f"analysed {sum(analysed)} of {n_docs + 1} documents"
    run = runs / third["run_id"]
    found = _io.read_table(run / "findings.parquet", FINDINGS_SCHEMA)
    full = pii.scan_corpus.fn([corpus], tmp_path / "full.parquet", ["US_SSN", "EMAIL_ADDRESS"], 0.4)
    full = _io.read_table(full, FINDINGS_SCHEMA)
    order = [(c, "ascending") for c in ("source", "doc_key", "start", "entity_type")]
    assert found.sort_by(order).equals(full.sort_by(order))
    # and only the new document's findings were probed: v2 has judged every other one
    new = sorted(r["finding_id"] for r in found.to_pylist() if r["source"].endswith("zz_new.txt"))
    assert len(new) == 2
    assert _ids(run / "unjudged.parquet") == new
    assert third["version"] is None
    assert third["passed"]
