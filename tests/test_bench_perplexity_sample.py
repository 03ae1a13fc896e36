"""The perplexity-sample benchmark's arithmetic and its choice of runs."""

import json
import math

import pytest

from benchmarks.perplexity_sample import audited_runs, change, demo_corpus


def test_the_change_is_the_token_weighted_pooled_perplexity_change():
    # given two texts: one of 1 token whose NLL rises by 1, one of 3 tokens unchanged
    before = [(2.0, 1), (3.0, 3)]
    after = [(3.0, 1), (3.0, 3)]
    # then pooling weighs the first by its 1 of 4 tokens
    assert change(before, after, [0, 1]) == pytest.approx(100 * (math.exp(1 / 4) - 1))
    assert change(before, after, [1]) == pytest.approx(0.0)


def test_only_audited_runs_on_demo_models_are_read(tmp_path):
    # given a workspace with a demo sweep, a seed's sweep, a run on another model and a run without its tables
    for rid, name in (("a", "smollm2-135m-demo-abc"), ("b", "demo-seed2-def"), ("c", "my-model"),
                      ("d", "demo-seed1-xyz")):
        run = tmp_path / "runs" / rid
        run.mkdir(parents=True)
        model = {"name": name, "base_version": 1, "new_version": 2}
        (run / "report_data.json").write_text(json.dumps({"model": model, "kind": "sweep"}))
        if rid != "d":
            (run / "forget.parquet").write_bytes(b"")
    for corpus in (tmp_path / "demo" / "corpus", tmp_path / "demo-seeds" / "seed2" / "corpus",
                   tmp_path / "demo-seeds" / "seed1" / "corpus"):
        corpus.mkdir(parents=True)
    # then the two demo runs with their tables are read, each with its own corpus
    runs = audited_runs(tmp_path)
    assert sorted((m["name"], c) for _, m, _, c in runs) == [
        ("demo-seed2-def", tmp_path / "demo-seeds" / "seed2" / "corpus"),
        ("smollm2-135m-demo-abc", tmp_path / "demo" / "corpus")]
    assert demo_corpus(tmp_path, "my-model") is None
