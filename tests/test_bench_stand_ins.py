"""The benchmark's memorizing stand-ins: the rehearsal text never overlaps what the benchmark measures or guards,
and a model built before rehearsal existed keeps its cache key (a rebuild costs 10–30 min of CPU)."""

import dataclasses
import hashlib
import json

from benchmarks.benign_text import benign_texts, guard_texts, prose_paragraphs, rehearsal_texts
from benchmarks.ssn_data import make_dataset
from benchmarks.ssn_model import MEMORIZE, _key


def test_rehearsal_text_is_disjoint_from_the_measured_and_guard_texts_and_holds_both_kinds():
    general = rehearsal_texts()
    assert len(general) == len(set(general)) >= 700
    assert not set(general) & (set(benign_texts()) | set(guard_texts()))
    prose = set(prose_paragraphs(10_000))
    assert 50 <= sum(t in prose for t in general) < len(general)  # prose and number-heavy sentences


def test_a_stand_in_without_rehearsal_keeps_the_key_it_had_before_rehearsal_existed():
    rows = make_dataset(40, 0, "ssn")
    legacy = {k: v for k, v in dataclasses.asdict(MEMORIZE).items() if not k.startswith("rehearsal_")}
    payload = json.dumps({"rows": [dataclasses.astuple(r) for r in rows], "base": "sha", "cfg": legacy},
                         sort_keys=True)
    assert _key(rows, "sha", MEMORIZE, []) == hashlib.sha256(payload.encode()).hexdigest()[:16]
    assert _key(rows, "sha", MEMORIZE, [[1, 2, 3]]) != _key(rows, "sha", MEMORIZE, [])
    assert _key(rows, "sha", MEMORIZE, [[1, 2, 3]]) != _key(rows, "sha", MEMORIZE, [[1, 2, 4]])


def test_the_unseen_number_templates_share_no_template_with_the_guard_or_the_measured_set():
    import re

    from benchmarks.benign_text import numeric_sentences, numeric_sentences_unseen

    shape = lambda t: re.sub(r"\d+", "#", re.sub(r"January|February|March|April|May|June|July|August|September"  # noqa: E731
                                                r"|October|November|December", "M", t))
    unseen = {shape(t) for t in numeric_sentences_unseen()}
    assert len(unseen) == 10
    assert not unseen & {shape(t) for t in numeric_sentences(40) + numeric_sentences(48, seed=54321)}
