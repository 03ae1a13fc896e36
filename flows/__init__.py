"""Prefect flows that compose the tasks, and the `revs` command line."""
