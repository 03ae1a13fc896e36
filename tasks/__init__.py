"""Prefect tasks: thin adapters between files/MLflow and the pure libraries."""
