"""Config-declared regex recognizers (e.g. employee ids).

Offers :func:`build_custom_recognizer`: a :class:`~pii_detect.config.CustomRecognizerSpec` -> Presidio
``PatternRecognizer`` with the spec's patterns and context words.
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

from pii_detect.config import CustomRecognizerSpec


def build_custom_recognizer(spec: CustomRecognizerSpec) -> PatternRecognizer:
    """Return a ``PatternRecognizer`` for ``spec`` (context words boost scores, see :func:`apply_context`)."""
    return PatternRecognizer(
        supported_entity=spec.entity,
        name=spec.name,
        patterns=[Pattern(name=n, regex=r, score=s) for n, r, s in spec.patterns],
        context=list(spec.context) or None,
    )
