"""Held-out benign text for the perplexity check: real English prose and number-heavy sentences.

Offers :func:`prose_paragraphs` (paragraphs of the Python standard library's own module documentation — real
English prose that ships with every Python, so no download) and :func:`numeric_sentences` (seeded synthetic
sentences full of dates, amounts, times, phone-like and id-like numbers that are NOT in any benchmark set), and
:func:`benign_texts` (both, deterministic).

The number-heavy half matters on digit-level tokenizers (reference/revs-method.md §8): an edit that demotes digits
globally shows up there first.
"""

from __future__ import annotations

import importlib
import random
import re

_MODULES = ("argparse", "textwrap", "json", "csv", "logging", "unittest", "pathlib", "datetime", "decimal",
            "fractions", "statistics", "calendar", "heapq", "bisect", "collections", "functools", "itertools",
            "string", "difflib", "shutil", "tempfile", "zipfile", "tarfile", "sqlite3", "email", "http",
            "urllib", "socket", "threading", "subprocess", "pickle", "shelve", "random", "math", "locale",
            # read only past the first 244 paragraphs (rehearsal text): appending keeps the ones above in place
            "typing", "enum", "dataclasses", "inspect", "ast", "asyncio", "contextlib", "copy", "glob", "gzip",
            "hashlib", "hmac", "io", "ipaddress", "mailbox", "operator", "optparse", "platform", "pprint", "queue",
            "sched", "selectors", "smtplib", "ssl", "struct", "timeit", "trace", "traceback", "types", "uuid",
            "warnings", "weakref", "configparser", "codecs", "doctest", "ftplib", "imaplib", "poplib", "pdb",
            "pydoc", "tokenize", "xmlrpc.client", "wave", "zipimport", "shlex", "netrc", "mimetypes", "filecmp")


def _prose(doc: str, min_chars: int) -> list[str]:
    """The paragraphs of ``doc`` that read as prose: whitespace collapsed, at least ``min_chars`` long, no code."""
    out = []
    for para in re.split(r"\n\s*\n", doc):
        text = " ".join(para.split())
        if len(text) >= min_chars and not re.search(r"[>{}\[\]=|]|\w\(", text):
            out.append(text)
    return out


def prose_paragraphs(n: int = 40, min_chars: int = 200) -> list[str]:
    """Return up to ``n`` prose paragraphs (≥ ``min_chars``) from standard-library docstrings, in a fixed order."""
    out: list[str] = []
    for name in _MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:  # a stripped-down Python may lack one; the others suffice
            continue
        docs = [mod.__doc__ or ""] + [getattr(getattr(mod, a), "__doc__", "") or "" for a in sorted(dir(mod))
                                      if not a.startswith("_")]
        for doc in docs:
            if not isinstance(doc, str):  # a class's ``__doc__`` slot, seen through the module
                continue
            for text in _prose(doc, min_chars):
                out.append(text)
                if len(out) >= n:
                    return out
    return out


_NUMERIC = [
    "The train left platform {a} at {h}:{m:02d} and arrived {b} minutes late, on {d} {mon} {y}.",
    "Order {a}{b} totals ${p}.{c:02d}, including ${q}.{c2:02d} shipping; it ships on {mon} {d}, {y}.",
    "Room {a} on floor {f} holds {b} chairs, {c} tables and {q} boxes of paper.",
    "In {y} the town counted {a},{b:03d} residents, up {c}.{f}% from {y0}.",
    "Call the front desk at extension {a} or the main line between {h} and {h2} o'clock.",
    "The invoice dated {d}/{mm}/{y} lists {b} items at {p}.{c:02d} euros each, {q} in total.",
    "Flight {a} departs gate {f}{c} at {h}:{m:02d}; boarding closes {b} minutes earlier.",
    "The recipe needs {f} eggs, {a} grams of flour, {b} ml of milk and {c} minutes in the oven at {q} degrees.",
    "Version {f}.{c}.{b} fixed {a} bugs and was released on {y}-{mm}-{d:02d}.",
    "Sum {a} and {b} to get {s}; multiply {f} by {c} to get {fc}.",
]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def numeric_sentences(n: int = 40, seed: int = 12345) -> list[str]:
    """Return ``n`` seeded number-heavy benign sentences."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, c, f = rng.randint(10, 999), rng.randint(10, 999), rng.randint(1, 99), rng.randint(1, 9)
        values = dict(a=a, b=b, c=c, f=f, q=rng.randint(100, 999), p=rng.randint(1, 500), c2=rng.randint(0, 99),
                      h=rng.randint(1, 12), h2=rng.randint(1, 12), m=rng.randint(0, 59), d=rng.randint(1, 28),
                      mm=rng.randint(1, 12), y=rng.randint(1990, 2024), y0=rng.randint(1950, 1989),
                      mon=rng.choice(_MONTHS), s=a + b, fc=f * c)
        out.append(_NUMERIC[i % len(_NUMERIC)].format(**values))
    return out


#: Number-heavy sentences of templates neither the guard's nor the measured set uses (both draw on ``_NUMERIC``):
#: perplexity on text whose very shape the guard never held.
_NUMERIC_UNSEEN = [
    "Parcel {a}-{b} weighed {f}.{c} kg and was scanned at {h}:{m:02d} in depot {q}.",
    "The {y} census lists {a} households on {b} streets, {c} of them new since {y0}.",
    "Meeting {f} of {c} moved from {mon} {d} to {mon} {d2}, room {q}, {h} pm.",
    "Lot {q} sold for {a},{b:03d} euros after {c} bids; the reserve was {p} hundred.",
    "Patch {f}.{c} raised the limit from {a} to {b} requests per {h} minutes.",
    "Bus {c} runs every {f} minutes from {h}:{m:02d}; the fare rose to {p}.{c2:02d} on {d} {mon}.",
    "Between {y0} and {y} the river rose {f}.{c} metres at gauge {a}.",
    "Shelf {f}{c} holds {a} folders, {b} binders and {q} loose pages.",
    "Test run {a} passed {b} of {s} checks in {c}.{f} seconds on {d}/{mm}/{y}.",
    "The thermostat reads {c} degrees at {h}:{m:02d}; the target is {f}{c2:02d} tenths higher.",
]


def numeric_sentences_unseen(n: int = 40, seed: int = 24680) -> list[str]:
    """Return ``n`` seeded number-heavy sentences of templates no other set here uses (:data:`_NUMERIC_UNSEEN`)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, f = rng.randint(10, 999), rng.randint(10, 999), rng.randint(1, 9)
        values = dict(a=a, b=b, c=rng.randint(1, 99), f=f, q=rng.randint(100, 999), p=rng.randint(1, 500),
                      c2=rng.randint(0, 99), h=rng.randint(1, 12), m=rng.randint(0, 59), d=rng.randint(1, 28),
                      d2=rng.randint(1, 28), mm=rng.randint(1, 12), y=rng.randint(1990, 2024),
                      y0=rng.randint(1950, 1989), mon=rng.choice(_MONTHS), s=a + b)
        out.append(_NUMERIC_UNSEEN[i % len(_NUMERIC_UNSEEN)].format(**values))
    return out


def benign_texts(n_prose: int = 40, n_numeric: int = 40) -> list[str]:
    """Return prose paragraphs followed by number-heavy sentences (held-out text for perplexity)."""
    return prose_paragraphs(n_prose) + numeric_sentences(n_numeric)


def guard_texts(n_prose: int = 48, n_numeric: int = 48, *, skip_prose: int = 40) -> list[str]:
    """Return benign text for an edit's retain guard, disjoint from :func:`benign_texts`: the prose paragraphs
    after the first ``skip_prose`` and number-heavy sentences from another seed, interleaved."""
    prose = prose_paragraphs(skip_prose + n_prose)[skip_prose:]
    numeric = numeric_sentences(n_numeric, seed=54321)
    out = [t for pair in zip(prose, numeric, strict=False) for t in pair]
    return out + prose[len(numeric):] + numeric[len(prose):]


def reference_paragraphs(min_chars: int = 200) -> list[str]:
    """Return the prose paragraphs of the Python language reference that ships with Python
    (``pydoc_data.topics``), in a fixed order: general text no benchmark set holds."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # a stripped-down Python may lack it; the docstrings suffice
        return []
    return [text for _, doc in sorted(topics.items()) for text in _prose(doc, min_chars)]


def rehearsal_texts(n_numeric: int = 200, *, skip_prose: int = 88) -> list[str]:
    """Return general text for memorizing with rehearsal (:func:`revs_engine.memorize.memorize`), disjoint from
    :func:`benign_texts` and :func:`guard_texts`: the standard-library prose paragraphs after the first
    ``skip_prose`` (those two use the first 88; a paragraph the library repeats is left out if either holds it),
    the language reference's paragraphs (:func:`reference_paragraphs`), and number-heavy sentences from a third
    seed, interleaved."""
    held = set(benign_texts()) | set(guard_texts())
    pool = prose_paragraphs(100_000)[skip_prose:] + reference_paragraphs()
    prose = [t for t in dict.fromkeys(pool) if t not in held]
    numeric = numeric_sentences(n_numeric, seed=999)
    out = [t for pair in zip(prose, numeric, strict=False) for t in pair]
    return out + prose[len(numeric):] + numeric[len(prose):]
