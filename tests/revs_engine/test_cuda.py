"""On a CUDA device (skipped without one): the guarded erase and the whole audit run on the GPU, in fp32 and bf16,
and reach what they reach on the CPU — on tiny models built here (no download). The real-model version of the
verdict comparison is ``tests/revs_engine/test_real_dtype.py`` (it needs the embedded SmolLM2 on the device)."""

from __future__ import annotations

import copy

import pytest
import torch

from revs_engine.arch import resolve_arch
from revs_engine.audit import AuditConfig, AuditInputs, audit
from revs_engine.audit_formats import FormatAuditConfig
from revs_engine.devices import dtype_name
from revs_engine.edit import restore
from revs_engine.erase import erase
from revs_engine.format_entities import ssn_format
from revs_engine.hashing import weights_sha256
from revs_engine.probes import ProbeItem
from revs_engine.targets import targets_at
from tests.revs_engine.test_attacks import lens_model
from tests.revs_engine.test_audit import inputs
from tests.revs_engine.test_dtype import GUARDED, guarded_erase_inputs
from tests.revs_engine.test_format_aware import SSN, SSN_PROMPT, bpe_decode, bpe_encode, plant
from tests.revs_engine.test_revs import _model

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

DTYPES = [torch.float32, torch.bfloat16]


def _on(model, dtype):
    return copy.deepcopy(model).to("cuda", dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_name)
def test_a_guarded_erase_on_cuda_edits_in_place_and_restores_bit_exactly(dtype):
    # given a tiny llama (SmolLM2's family) on the CPU and the same weights on the GPU
    cpu, arch = _model("llama")
    data = guarded_erase_inputs(cpu)
    gpu = _on(cpu, dtype)
    garch = resolve_arch(gpu)
    base = weights_sha256(gpu)
    # when both erase the same secrets with the guard
    want = erase(cpu, arch, data, GUARDED)
    got = erase(gpu, garch, data, GUARDED)
    # then the GPU edited its own weights, in place and in its dtype
    assert got.edits
    assert weights_sha256(gpu) != base
    assert all(p.device.type == "cuda" and p.dtype == dtype for p in gpu.parameters())
    # and in fp32 it made the CPU's edits: the same neurons of the same layers, the same changes
    if dtype == torch.float32:
        assert [(e.layer, e.neurons.tolist()) for e in got.edits] == [(e.layer, e.neurons.tolist())
                                                                      for e in want.edits]
        for a, b in zip(got.edits, want.edits, strict=True):
            torch.testing.assert_close(a.delta.cpu(), b.delta.cpu(), rtol=1e-3, atol=1e-4)
    # and its backup restores the base weights bit for bit
    restore(gpu, garch, got.backup)
    assert weights_sha256(gpu) == base


def _scores(report):
    return {(r.target_id, r.metric, r.k): (r.score, r.passed) for r in report.rows}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_name)
def test_the_audit_on_cuda_reports_what_the_cpu_reports(dtype):
    # given the memorizing lens model (token 400 top-1 at every layer) on the CPU and on the GPU
    cpu, arch = lens_model("memorized")
    gpu = _on(cpu, dtype)
    cfg = AuditConfig(ks=(10, 20), n_samples=3)
    # when both audit the same items
    want = _scores(audit(cpu, arch, inputs(), cfg, stage="before"))
    got = _scores(audit(gpu, resolve_arch(gpu), inputs(), cfg, stage="before"))
    # then the same rows, the same pass/fail flags, the same scores (perplexity within bf16's rounding)
    assert got.keys() == want.keys()
    for key, (score, passed) in want.items():
        assert got[key][1] == passed, key
        if got[key][0] == score:  # perplexity is inf on this model
            continue
        tol = 0.02 * abs(score) if key[1] in ("perplexity", "layer_rank") and dtype != torch.float32 else 1e-3
        assert abs(got[key][0] - score) <= max(tol, 1e-3), (key, got[key][0], score)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_name)
def test_the_format_attacks_on_cuda_find_a_planted_ssn_as_on_the_cpu(dtype):
    # given a tiny llama that memorized one SSN after its prompt, on the CPU and on the GPU
    cpu = plant(bpe_encode, 300, [SSN_PROMPT + SSN])
    item = ProbeItem(tuple(bpe_encode(SSN_PROMPT)), tuple(bpe_encode(SSN)))
    forget = tuple(targets_at(item.prefix_ids, item.target_ids, [1], secret_index=0))
    data = AuditInputs(forget, ("f0",), (item,), (SSN_PROMPT,), bpe_encode, bpe_decode, formats=(ssn_format(SSN),))
    cfg = AuditConfig(ks=(10,), n_samples=0, formats=FormatAuditConfig(candidates=64))
    # when both audit it with the format-aware attacks
    want = audit(cpu, resolve_arch(cpu), data, cfg, stage="after").summary()
    gpu = _on(cpu, dtype)
    got = audit(gpu, resolve_arch(gpu), data, cfg, stage="after").summary()
    # then the GPU finds it exposed and recovered as the CPU does, and the never-seen control not
    for metric in ("exposure_above_6_bits", "constrained_fraction", "neighbourhood_in_top_k", "partial_completes",
                   "format_typed"):
        assert got[(metric, None)] == want[(metric, None)] == 100.0, metric
    assert got[("control_exposure_bits", None)] < 6.0
    assert abs(got[("exposure_bits", None)] - want[("exposure_bits", None)]) <= (0.05 if dtype == torch.float32
                                                                                else 1.0)
