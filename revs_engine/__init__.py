"""REVS engine: model layer, vocabulary lens, capture, memorization probes, attacks, metrics and REVS editing.

Pure library: no Prefect, no MLflow, no environment variables; callers pass paths and configs explicitly.
"""
