"""One module per `revs` subcommand.

Each module exposes ``register(subparsers)`` which adds its parser and sets ``handler=run``; ``run(args) -> int``
does the work. Heavy imports (torch, presidio, prefect) stay inside ``run`` so ``revs --help`` is instant.
Modules are discovered automatically by :func:`flows.cli.build_parser`.
"""
