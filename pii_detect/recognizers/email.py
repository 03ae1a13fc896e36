"""Offline email recognizer.

Offers :class:`OfflineEmailRecognizer`: Presidio's email regex, validated against the public suffix list bundled
with tldextract (``suffix_list_urls=()``), so it never tries to fetch the list over the network.
"""

from __future__ import annotations

import tldextract
from presidio_analyzer.predefined_recognizers import EmailRecognizer

#: Uses tldextract's bundled snapshot; no HTTP fetch, no cache directory writes needed.
OFFLINE_TLD_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's :class:`EmailRecognizer` whose TLD check never touches the network."""

    def validate_result(self, pattern_text: str) -> bool:
        """Return True when the address ends in a known public suffix."""
        return OFFLINE_TLD_EXTRACT(pattern_text).fqdn != ""
