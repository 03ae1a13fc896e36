"""Free text a user types that would be stored (a retirement ``--reason``, a request's ``requester_ref``).

Offers :func:`check_free_text`: the text passes the PII scanner (the structured recognizers plus PERSON) and the
raw values this process knows (:data:`tasks.redaction.SENSITIVE`); text with personal data is refused with the
entity types and character offsets found — never the text itself.
"""

from __future__ import annotations

import functools

from tasks.errors import FreeTextError

#: A name and a few structured identifiers are what people type into a "reason" field by mistake.
MIN_SCORE = 0.4


@functools.lru_cache(maxsize=1)
def _scanner():
    import pii_detect
    from pii_detect.config import STRUCTURED_ENTITIES

    # The HMAC key is irrelevant here: only the spans are used, never a finding.
    return pii_detect.Scanner(pii_detect.ScanConfig(entities=(*STRUCTURED_ENTITIES, "PERSON"),
                                                    min_score=MIN_SCORE), key=b"free-text-check")


def find_personal_data(text: str) -> list[str]:
    """Return ``"<ENTITY> at <start>-<end>"`` for each personal-data span in ``text`` (empty when clean)."""
    from tasks.redaction import SENSITIVE

    found = [f"{s.entity_type} at {s.start}-{s.end}" for s in _scanner().find_spans(text)]
    if SENSITIVE.find(text):
        found.append("a value of a deletion request")
    return found


def check_free_text(text: str, field: str, example: str) -> str:
    """Return ``text`` when it holds no personal data; otherwise refuse it.

    Args:
        text: What the user typed.
        field: Where it came from, for the message (``--reason``).
        example: A good value, for the message.

    Raises:
        FreeTextError: Naming the field, the entity types and offsets found, and an example of a good value.
    """
    found = find_personal_data(text)
    if found:
        raise FreeTextError(f"{field} looks like it contains personal data ({', '.join(found)}); it would be "
                            f"stored, so give ids only, e.g. {example!r}.")
    return text
