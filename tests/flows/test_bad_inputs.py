"""The bad-input suite (issue 18): every case is refused with one line (what, where, what to do), losing nothing.

Each row of :data:`CASES` runs one `revs` command in-process on a workspace that already holds a key and a
request's state. It asserts the exit code, exactly one ``revs <command>: error: ...`` line containing the expected
words (no traceback, no planted value), and that no file changed or appeared in the workspace, in the inputs or
next to the workspace. ``docs/bad-inputs.md`` lists the same rows (checked below).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flows.cli import main
from tests.flows.world import JANE_EMAIL, JANE_NAME, PLANTED_SSNS, request_doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-inputs.md"
RAW = (JANE_EMAIL, JANE_NAME, *PLANTED_SSNS)


@dataclass
class Env:
    """A workspace with a key and a started request, and the user's inputs beside it."""

    home: Path
    inp: Path

    @property
    def corpus(self) -> Path:
        return self.inp / "corpus"

    @property
    def request(self) -> Path:
        return self.inp / "request.json"

    @property
    def model(self) -> Path:
        return self.inp / "model"

    def file(self, name: str, text: str | bytes) -> Path:
        path = self.inp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    def policy(self, text: str) -> str:
        return self.file("policy.toml", text)

    def request_with(self, **changes) -> str:
        doc = request_doc("REQ-BI", JANE_NAME, JANE_EMAIL)
        for key, value in changes.items():
            node, *path = key.split(".")
            target = doc
            for part in [node, *path][:-1]:
                target = target[int(part)] if part.isdigit() else target[part]
            last = [node, *path][-1]
            target[int(last) if last.isdigit() else last] = value
        return self.file("request2.json", json.dumps(doc))


@dataclass
class Case:
    """One bad input: the command line, the exit code and the words its one error line must hold."""

    id: str
    argv: Callable[[Env], list[str]]
    code: int
    message: str | Callable[[Env], str]
    setup: Callable[[Env], object] | None = None
    defect: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


def _forget(e: Env, *extra: str, request: str | None = None, corpus: str | None = None,
            model: str | None = None) -> list[str]:
    return ["forget", request or str(e.request), "--model", model or str(e.model), "--corpus",
            corpus or str(e.corpus), "--name", "bi-model", *extra]


def _sweep(e: Env, *extra: str, corpus: str | None = None) -> list[str]:
    return ["sweep", "--corpus", corpus or str(e.corpus), "--model", str(e.model), *extra]


def _scan(e: Env, *extra: str, corpus: str | None = None, out: str | None = None) -> list[str]:
    return ["scan", corpus or str(e.corpus), "--out", out or str(e.inp / "out" / "f.parquet"), "--no-progress",
            *extra]


def _chmod_key(mode: int):
    return lambda e: (e.home / "keys" / "hmac.key").chmod(mode)


def _fifo(e: Env) -> None:
    os.mkfifo(e.inp / "pipe.txt")


CASES = [
    # ------------------------------------------------------------------------------------------------- scan
    Case("scan-missing-path", lambda e: _scan(e, corpus=str(e.inp / "corpsu")), 2,
         "CORPUS {inp}/corpsu: no such file or directory", defect="1"),
    Case("scan-one-path-missing", lambda e: ["scan", str(e.corpus), str(e.inp / "gone.txt"), "--out",
                                             str(e.inp / "out.parquet")], 2, "gone.txt: no such file", defect="1"),
    Case("scan-no-supported-file", lambda e: _scan(e, corpus=e.file("odd/data.bin", b"x")[:-9]), 2,
         "holds no corpus file", defect="1"),
    Case("scan-fifo-corpus", lambda e: _scan(e, corpus=str(e.inp / "pipe.txt")), 2,
         "not a regular file or a directory", setup=_fifo, defect="1"),
    Case("scan-only-binary", lambda e: _scan(e, corpus=e.file("bin/a.txt", b"\x00\x01\x02")), 1,
         "no document could be read"),
    Case("scan-config-wrong-type", lambda e: _scan(e, "--config", e.file("c.json", '{"min_score": "high"}')), 2,
         "a setting has the wrong type or value", defect="5"),
    Case("scan-config-wrong-type-toml", lambda e: _scan(e, "--config", e.file("c.toml", "entities = 5\n")), 2,
         "a setting has the wrong type or value", defect="5"),
    Case("scan-config-unknown-key", lambda e: _scan(e, "--config", e.file("c.json", '{"entites": []}')), 2,
         "unknown settings"),
    Case("scan-config-missing", lambda e: _scan(e, "--config", str(e.inp / "nope.json")), 2, "nope.json"),
    Case("scan-config-bad-json", lambda e: _scan(e, "--config", e.file("c.json", "{oops")), 2, "c.json"),
    Case("scan-workers-0", lambda e: _scan(e, "--workers", "0"), 2, "--workers: must be >= 1"),
    Case("scan-min-score-1.5", lambda e: _scan(e, "--min-score", "1.5"), 2, "--min-score: must be a number"),
    Case("scan-min-score-nan", lambda e: _scan(e, "--min-score", "nan"), 2, "--min-score: must be a number",
         defect="4"),
    Case("scan-unknown-entity", lambda e: _scan(e, "--entities", "SSN_US"), 2, "unknown entities"),
    Case("scan-out-is-a-directory", lambda e: _scan(e, out=str(e.corpus)), 2, "--out {inp}/corpus: is a directory",
         defect="5"),
    Case("scan-out-under-a-file", lambda e: _scan(e, out=e.file("afile", "x") + "/f.parquet"), 2,
         "is not a directory", defect="5"),
    Case("scan-revs-home-is-a-file", lambda e: _scan(e), 2, "REVS_HOME=", defect="5",
         setup=lambda e: os.environ.__setitem__("REVS_HOME", e.file("homefile", "x"))),
    Case("scan-key-group-readable", lambda e: _scan(e), 2, "chmod 600", setup=_chmod_key(0o640), defect="8"),
    Case("scan-key-world-readable", lambda e: _scan(e), 2, "mode 0644", setup=_chmod_key(0o644), defect="8"),
    Case("scan-key-truncated", lambda e: _scan(e), 2, "HMAC key is truncated",
         setup=lambda e: (e.home / "keys" / "hmac.key").write_bytes(b"short")),
    # ----------------------------------------------------------------------------------------------- locate
    Case("locate-request-missing", lambda e: ["locate", "--request", str(e.inp / "no.json"), str(e.corpus),
                                              "--out", str(e.inp / "o.parquet")], 2, "cannot read the request"),
    Case("locate-request-not-json", lambda e: ["locate", "--request", e.file("r.json", "{x"), str(e.corpus),
                                               "--out", str(e.inp / "o.parquet")], 2, "not valid JSON"),
    Case("locate-value-in-type-field", lambda e: [
        "locate", "--request", e.file("r.json", json.dumps({"subject": {"identifiers": [
            {"type": JANE_EMAIL, "value": "x"}]}})), str(e.corpus), "--out", str(e.inp / "o.parquet")], 2,
         "subject.identifiers[0].type: must be one of", defect="6"),
    Case("locate-missing-corpus", lambda e: ["locate", "--request", str(e.request), str(e.inp / "nope"),
                                             "--out", str(e.inp / "o.parquet")], 2, "no such file or directory"),
    # ----------------------------------------------------------------------------------------------- forget
    Case("forget-misspelled-corpus", lambda e: _forget(e, corpus=str(e.inp / "corpsu")), 2,
         "--corpus {inp}/corpsu: no such file or directory", defect="1"),
    Case("forget-empty-corpus-dir", lambda e: _forget(e, corpus=str(e.inp / "empty")), 2, "holds no corpus file",
         setup=lambda e: (e.inp / "empty").mkdir(), defect="1"),
    Case("forget-other-corpus-without-rerun", lambda e: _forget(e, corpus=str(e.inp / "corpus2")), 2,
         "against another corpus; to answer it again against this corpus, re-run it deliberately with --rerun",
         setup=lambda e: e.file("corpus2/b.txt", "other notes"), defect="1"),
    Case("forget-same-id-other-content", lambda e: _forget(e, request=e.request_with(
        **{"subject.identifiers.0.value": "someone.else@example.com"})), 2,
         "already exists with different content; use a new request_id"),
    Case("forget-name-traversal", lambda e: _forget(e)[:-1] + ["../../escaped"], 2,
         "--name: a model name is 1-100 letters", defect="2"),
    Case("forget-name-slash", lambda e: _forget(e)[:-1] + ["team/model"], 2, "--name: a model name", defect="2"),
    Case("forget-name-quote", lambda e: _forget(e)[:-1] + ["it's"], 2, "--name: a model name", defect="2"),
    Case("forget-name-empty", lambda e: _forget(e)[:-1] + [""], 2, "--name: a model name", defect="2"),
    Case("forget-name-dotdot", lambda e: _forget(e)[:-1] + [".."], 2, "--name: a model name", defect="2"),
    Case("forget-policy-nan", lambda e: _forget(e, "--policy", e.policy(
        "[audit]\nmax_perplexity_increase_pct = nan\n")), 2,
         "audit.max_perplexity_increase_pct: must be a finite number", defect="4"),
    Case("forget-policy-inf", lambda e: _forget(e, "--policy", e.policy("[audit]\nmin_specificity = inf\n")), 2,
         "audit.min_specificity: must be a finite number", defect="4"),
    Case("forget-policy-unknown-entity", lambda e: _forget(e, "--policy", e.policy(
        '[entities]\ntypes = ["EMAIL", "US_SSN"]\n')), 2, "entities.types: unknown entity type(s) 'EMAIL'",
         defect="4"),
    Case("forget-policy-duplicate-entity", lambda e: _forget(e, "--policy", e.policy(
        '[entities]\ntypes = ["US_SSN", "US_SSN"]\n')), 2, "US_SSN listed more than once", defect="4"),
    Case("forget-policy-select-everything", lambda e: _forget(e, "--policy", e.policy(
        "[memorization]\nexact_match = false\nmin_extraction_score = 0\n")), 2,
         "memorization.min_extraction_score: 0 with exact_match = false", defect="4"),
    Case("forget-policy-unknown-key", lambda e: _forget(e, "--policy", e.policy("[audits]\nx = 1\n")), 2,
         "audits: unknown field"),
    Case("forget-policy-bad-range", lambda e: _forget(e, "--policy", e.policy("[entities]\nmin_score = 2\n")), 2,
         "entities.min_score"),
    Case("forget-policy-syntax", lambda e: _forget(e, "--policy", e.policy("[audit\n")), 2, "TOML syntax error"),
    Case("forget-policy-missing", lambda e: _forget(e, "--policy", str(e.inp / "nope.toml")), 2,
         "nope.toml: No such file or directory; check the path"),
    Case("forget-request-missing", lambda e: _forget(e, request=str(e.inp / "nope.json")), 2,
         "nope.json: No such file or directory"),
    Case("forget-request-not-json", lambda e: _forget(e, request=e.file("r.json", "{x")), 2, "JSON syntax error"),
    Case("forget-request-bad-fields", lambda e: _forget(e, request=e.request_with(
        legal_basis="because", **{"subject.identifiers.0.value": "not-an-email"})), 2,
         "subject.identifiers[0].value: not a valid email address"),
    Case("forget-request-id-traversal", lambda e: _forget(e, request=e.request_with(request_id="../../x")), 2,
         "request_id: must be 1-128 letters"),
    Case("forget-requester-ref-with-pii", lambda e: _forget(e, request=e.request_with(
        requester_ref=f"{JANE_NAME} {PLANTED_SSNS[0]}")), 2, "requester_ref looks like it contains personal data",
         defect="6"),
    Case("forget-unsupported-architecture", lambda e: _forget(e, model=e.file(
        "bert/config.json", '{"model_type": "bert"}')[:-12]), 2, "model_type 'bert' is not supported", defect="5"),
    Case("forget-model-missing", lambda e: _forget(e, model=str(e.inp / "no-model")), 2,
         "--model {inp}/no-model: no such file or directory"),
    Case("forget-model-without-config", lambda e: _forget(e, model=str(e.corpus)), 2,
         "no config.json in the directory"),
    # ------------------------------------------------------------------------------------------------ sweep
    Case("sweep-name-traversal", lambda e: _sweep(e, "--name", "../../escaped"), 2, "--name: a model name",
         defect="2"),
    Case("sweep-missing-corpus", lambda e: _sweep(e, corpus=str(e.inp / "corpsu")), 2, "no such file or directory",
         defect="1"),
    Case("sweep-policy-nan", lambda e: _sweep(e, "--policy", e.policy("[audit]\nmin_efficacy = nan\n")), 2,
         "audit.min_efficacy: must be a finite number", defect="4"),
    Case("sweep-partitions-0", lambda e: _sweep(e, "--partitions", "0"), 2, "--partitions: must be >= 1"),
    # ----------------------------------------------------------------------------------------------- retire
    Case("retire-name-quote", lambda e: ["retire", "it's", "--versions", "1", "--reason", "holds REQ-1 data"], 2,
         "MODEL: a model name", defect="5"),
    Case("retire-name-traversal", lambda e: ["retire", "../../x", "--versions", "1", "--reason", "REQ-1"], 2,
         "MODEL: a model name", defect="2"),
    Case("retire-reason-name-and-ssn", lambda e: ["retire", "m", "--versions", "1", "--reason",
                                                  f"{JANE_NAME} {PLANTED_SSNS[0]}"], 2,
         "--reason looks like it contains personal data (PERSON at 0-8, US_SSN at 9-20)", defect="6"),
    Case("retire-reason-email", lambda e: ["retire", "m", "--versions", "1", "--reason", f"for {JANE_EMAIL}"], 2,
         "--reason looks like it contains personal data (EMAIL_ADDRESS", defect="6"),
    Case("retire-no-reason", lambda e: ["retire", "m", "--versions", "1"], 2,
         "--versions and --reason are required"),
    # ------------------------------------------------------------------------------------------------ probe
    Case("probe-findings-missing", lambda e: ["probe", "--model", str(e.model), "--findings", str(e.inp / "f.pq"),
                                              "--out", str(e.inp / "p.parquet")], 2,
         "--findings {inp}/f.pq: no such"),
    Case("probe-findings-not-parquet", lambda e: ["probe", "--model", str(e.model), "--findings", e.file(
        "f.parquet", "not parquet"), "--out", str(e.inp / "p.parquet")], 2, "not a readable Parquet file"),
    Case("probe-batch-size-0", lambda e: ["probe", "--model", str(e.model), "--findings", str(e.inp / "f.pq"),
                                          "--out", str(e.inp / "p.pq"), "--batch-size", "0"], 2, "--batch-size"),
    Case("probe-threshold-2", lambda e: ["probe", "--model", str(e.model), "--findings", str(e.inp / "f.pq"),
                                         "--out", str(e.inp / "p.pq"), "--memorized-threshold", "2"], 2,
         "--memorized-threshold: must be in (0, 1]"),
    # --------------------------------------------------------------------------------------------- serve / ui
    Case("serve-port-out-of-range", lambda e: ["serve", "--port", "70000"], 2, "--port: must be a TCP port"),
    Case("serve-interval-0", lambda e: ["serve", "--interval", "0"], 2, "--interval: must be a positive number"),
    Case("ui-port-0", lambda e: ["ui", "--port", "0", "--print-command"], 2, "--port: must be a TCP port"),
]


def _tree(root: Path, home: Path) -> dict[str, str]:
    """Every file (sha256) under ``root``, and every directory outside the workspace ``home``."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_relative_to(home / "logs"):
            continue
        if path.is_file() and not path.is_symlink():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif not path.is_relative_to(home):
            out[rel] = "dir" if path.is_dir() else "other"
    return out


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A workspace holding a key and request REQ-BI (started against ``inp/corpus_old``), and the inputs."""
    from flows.params import load_request
    from tasks import corpus
    from tasks._workspace import hmac_key
    from tasks.redaction import SENSITIVE
    from tasks.requests import RequestStore

    home, inp = tmp_path / "work" / "revs_home", tmp_path / "work" / "inputs"
    monkeypatch.setenv("REVS_HOME", str(home))
    e = Env(home, inp)
    e.file("corpus/a.txt", f"Contact {JANE_NAME} at {JANE_EMAIL}; SSN {PLANTED_SSNS[0]}.")
    e.file("corpus_old/a.txt", "old notes")
    e.file("request.json", json.dumps(request_doc("REQ-BI", JANE_NAME, JANE_EMAIL)))
    e.file("model/config.json", '{"model_type": "llama"}')
    hmac_key()
    RequestStore().begin(load_request(e.request), corpus.corpus_fingerprint([inp / "corpus_old"]))
    SENSITIVE.clear()
    return e


def test_the_suite_has_at_least_40_cases_with_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line_and_loses_nothing(case: Case, env: Env, capsys):
    from tasks.redaction import SENSITIVE

    # given
    argv = case.argv(env)  # builds the inputs the case names
    if case.setup is not None:
        case.setup(env)
    work = env.home.parent
    before = _tree(work, env.home)
    state = (env.home / "requests" / "REQ-BI" / "state.json").read_bytes()
    capsys.readouterr()
    # when
    try:
        code = main(argv)
    finally:
        SENSITIVE.clear()
    captured = capsys.readouterr()
    # then: the exit code and exactly one error line that says what, where and what to do
    assert code == case.code, captured.err
    err = captured.err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith(f"revs {argv[0]}: error: ")]
    assert len(lines) == 1, err
    message = case.message(env) if callable(case.message) else case.message.format(inp=env.inp, home=env.home)
    assert message in lines[0], lines[0]
    # no planted value is echoed
    for raw in RAW:
        assert raw not in captured.out + err, raw
    # nothing was lost or half-written: the workspace, the inputs and the folder around them are unchanged
    assert _tree(work, env.home) == before
    assert (env.home / "requests" / "REQ-BI" / "state.json").read_bytes() == state
    assert not (env.home / "logs").exists()  # a user error leaves no crash log


def test_the_docs_table_lists_every_case():
    rows = re.findall(r"^\| `([a-z0-9.-]+)` \|", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert sorted(rows) == sorted(c.id for c in CASES)
