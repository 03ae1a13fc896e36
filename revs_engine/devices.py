"""Where and in which precision a model runs: ``--device auto|cpu|cuda[:N]`` and ``--dtype auto|fp32|bf16|fp16``.

Offers :data:`DTYPES`, :func:`parse_dtype`, :func:`parse_device`, :func:`device_name` and :func:`dtype_name`. The
commands, the flows' parameters and :func:`revs_engine.loading.load_model` all read these names through here, so a
wrong one gets the same clear error everywhere.
"""

from __future__ import annotations

import torch

#: The dtypes a model can be loaded in (``--dtype``); ``auto`` keeps the checkpoint's own.
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_DTYPE_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """Return the torch dtype named by ``auto`` (None: the checkpoint's own), ``fp32``, ``bf16`` or ``fp16``.

    Raises:
        ValueError: any other name.
    """
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).strip().lower()
    key = _DTYPE_ALIASES.get(key, key)
    if key == "auto":
        return None
    if key not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: use auto (the checkpoint's own), fp32, bf16 or fp16")
    return DTYPES[key]


def device_name(device: str | None) -> str:
    """Return ``device`` as a checked name (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) without looking for the
    device itself (a flow's parameters are checked where it is deployed, its devices where it runs).

    Raises:
        ValueError: another name.
    """
    text = "auto" if device is None else str(device).strip().lower()
    kind, colon, index = text.partition(":")
    if text in ("auto", "cpu", "cuda") or (kind == "cuda" and colon and index.isdigit()):
        return text
    raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N (N a GPU index)")


def parse_device(device: str | torch.device | None) -> torch.device:
    """Return the torch device named by ``auto`` (the first CUDA device when there is one, else the CPU),
    ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ValueError: another name, or a CUDA device this machine does not have (says what it has).
    """
    if isinstance(device, torch.device):
        return device
    text = device_name(device)
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    index = text.partition(":")[2]
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        raise ValueError(f"device {device!r} asked, but torch sees no CUDA device on this machine (torch "
                         f"{torch.__version__}): use --device cpu, or auto to take a GPU only when there is one")
    if int(index or 0) >= n:
        raise ValueError(f"device {device!r} asked, but this machine has {n} CUDA device(s) (cuda:0–cuda:{n - 1})")
    return torch.device(f"cuda:{int(index or 0)}")


def dtype_name(dtype: torch.dtype) -> str:
    """Return the short name of ``dtype`` (``fp32``, ``bf16``, ``fp16``; else torch's own, e.g. ``float64``)."""
    return next((name for name, d in DTYPES.items() if d == dtype), str(dtype).removeprefix("torch."))
