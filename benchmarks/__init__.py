"""Reproducible benchmarks, each against its named baseline; run by `make bench`."""
