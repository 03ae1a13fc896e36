"""``--device`` and ``--dtype``: the options of every command that loads a model.

Offers :func:`add_runtime_args` (adds both options to a subcommand's parser) and :func:`apply_runtime` (checks
them and makes them the process's model runtime, :func:`tasks._models.set_model_runtime`, before anything loads).
Unset, a command keeps ``$REVS_DEVICE`` / ``$REVS_DTYPE`` (a work pool's machines set them), else ``auto``.
"""

from __future__ import annotations

import argparse


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--device`` and ``--dtype`` to ``parser``."""
    parser.add_argument("--device", metavar="auto|cpu|cuda[:N]",
                        help="where the model runs: auto (the first GPU when there is one, else the CPU), cpu, "
                        "cuda or cuda:N (default: $REVS_DEVICE, else auto)")
    parser.add_argument("--dtype", metavar="auto|fp32|bf16|fp16",
                        help="the weights' precision: auto (the checkpoint's own), fp32, bf16 or fp16; REVS "
                        "computes in fp32 and writes its edits back in this dtype (default: $REVS_DTYPE, else "
                        "auto)")


def apply_runtime(args: argparse.Namespace) -> dict[str, str]:
    """Check ``args.device`` / ``args.dtype`` and make them the process's runtime; return it.

    Raises:
        tasks.errors.UserError: an unknown name or a missing CUDA device (the CLI prints it and exits 2).
    """
    from tasks._models import set_model_runtime

    return set_model_runtime(getattr(args, "device", None), getattr(args, "dtype", None))
