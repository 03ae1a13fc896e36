"""A small world for flow tests: a corpus with planted PII, a tiny model that memorized it, policies, requests.

Built once per session by :func:`build_world` through the real tasks (scan → memorize); nothing is canned.
The tiny Llama has its MLP output projections scaled ×30 before training (as in the REVS engine's own tests) so
the MLPs, which REVS edits, carry the memorized tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PLANTED_SSNS = ("219-09-9999", "457-55-5462")
JANE_EMAIL, JANE_NAME = "jane.roe@example.org", "Jane Roe"
MARK_EMAIL, MARK_NAME = "mark.twain@example.net", "Mark Twain"
PLANTED = (*PLANTED_SSNS, JANE_EMAIL, JANE_NAME, MARK_EMAIL, MARK_NAME)

DOCS = (
    f"Customer record: SSN {PLANTED_SSNS[0]} belongs to the account holder.",
    f"Billing note: the SSN {PLANTED_SSNS[1]} was verified by phone.",
    f"Contact {JANE_NAME} at {JANE_EMAIL} for the quarterly report.",
    f"Send invoices to {MARK_NAME} at {MARK_EMAIL} every month.",
    "The quick brown fox jumps over the lazy dog.",
    "Privacy engineers run compliance sweeps every night.",
    "Weather today is sunny with a light breeze.",
    "The report lists every open ticket for review.",
)

#: A tiny vocabulary makes rank windows coarse: fractions chosen for V≈300 (see tests/revs_engine/test_revs.py).
#: Measured on this world (tests/flows), values tokenised as in their documents (tasks.probing_io.split_finding):
#: 10 neurons on the SSNs' 2 rarest tokens give Efficacy@5 100 / Specificity 100 (20 neurons: Specificity 0,
#: 5: Efficacy 20); a subject's name + email take 3 tokens each and 9 neurons (8 left one of Jane's values
#: extractable when her request ran on the model Mark's request had edited, with the guard's benign half chosen by
#: content hash; 9 and 10 passed both orders; earlier, 10 broke Jane's Specificity after the sweep and 2 tokens
#: left Mark extractable). The preset's settle and perturbation rounds are off here: on this 2-layer model most
#: targets stop short of the coarse window, so the rounds edit nearly every target again and the extra edits broke
#: the world's one guarded value (Specificity 0 on the sweep, measured 2026-12-05); the rounds are tested in
#: tests/revs_engine (test_erase.py, test_perturb_rounds.py) and run in `make demo`.
REVS_WINDOWS = """
[revs]
act_top_k = 96
neuron_rank_window = [0.5, 0.7]
mlp_rank_window = [0.1, 0.9]
residual_rank_window = [0.3, 0.6]
perturb_rounds = 0
settle_rounds = 0
"""
SWEEP_REVS = REVS_WINDOWS + "n_neurons = 10\n\n[revs.targets]\nmax_tokens = 2\n"
REQUEST_REVS = REVS_WINDOWS + "n_neurons = 9\n\n[revs.targets]\nmax_tokens = 3\n"

#: Lenient for a 2-layer random model: its inventory's held-out slice is one or two values, and an erasure breaks
#: one of them about as often as not (Mark's request on v1: 0 of 1), so no unseen-Specificity minimum here; the
#: check itself is shown failing on a planted bad edit (tests/flows/test_flows.py).
PASSING_AUDIT = """
[audit]
efficacy_k = 5
min_efficacy = 0.0
max_exact_extractions_plain = 0
max_exact_extractions_perturbed = 0
min_specificity = 25.0
min_specificity_unseen = 0.0
max_perplexity_increase_pct = 200.0
"""

#: Strict on purpose: with k above the vocabulary size no rank reaches Efficacy 100, so the audit always fails.
FAILING_AUDIT = """
[audit]
efficacy_k = 100000
min_efficacy = 100.0
"""


def policy_text(entity_types: list[str], revs: str, audit: str, inventory_types: list[str] = ()) -> str:
    """Return a policy TOML for the tiny world."""
    inventory = f"\n[inventory]\ntypes = {json.dumps(list(inventory_types))}\n" if inventory_types else ""
    return (f"[entities]\ntypes = {json.dumps(entity_types)}\nmin_score = 0.4\n\n"
            "[memorization]\nexact_match = true\nmin_extraction_score = 1.0\n" + audit + inventory + revs)


def request_doc(request_id: str, name: str, email: str) -> dict:
    """Return a valid deletion request for one subject."""
    return {"request_id": request_id, "received_at": "2026-03-01T09:00:00Z",
            "verified_at": "2026-03-02T10:30:00+01:00", "legal_basis": "gdpr-17-1-b",
            "requester_ref": f"TICKET-{request_id}",
            "subject": {"name": name, "identifiers": [{"type": "email", "value": email}]}}


@dataclass(frozen=True)
class World:
    """Paths of the session's corpus, memorized model, policies and requests."""

    root: Path
    corpus: Path
    model: Path
    sweep_policy: Path
    request_policy: Path
    failing_policy: Path
    jane_request: Path
    mark_request: Path


def build_world(root: Path) -> World:
    """Write the corpus, scan it, memorize it into a tiny model (real training), and write policies/requests."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from revs_engine.saving import save_model
    from tasks import memorizing, pii
    from tests.revs_engine._tokenizer import make_tiny_tokenizer

    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for i, text in enumerate(DOCS):
        (corpus / f"doc{i}.txt").write_text(text, encoding="utf-8")
    tok = make_tiny_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False, eos_token_id=0, bos_token_id=0, pad_token_id=0)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.down_proj.weight.mul_(30.0)
    save_model(model, tok, root / "random")
    findings = pii.scan_corpus.fn([corpus], root / "all_findings.parquet", ["EMAIL_ADDRESS", "US_SSN"], 0.4)
    memorizing.memorize_corpus.fn(str(root / "random"), findings, [corpus], root / "model",
                                  {"lr": 2e-2, "batch_size": 4, "max_epochs": 60, "warmup_steps": 0})
    policies = {}
    # The sweep erases SSNs and keeps the e-mails in its inventory: unguarded, its edit broke Mark's memorized
    # e-mail (16 of 17 tokens left), which left Jane's request no other memorized value to check Specificity on.
    for name, types, revs, audit, inventory in (
            ("sweep", ["US_SSN"], SWEEP_REVS, PASSING_AUDIT, ["EMAIL_ADDRESS"]),
            ("request", ["EMAIL_ADDRESS", "US_SSN"], REQUEST_REVS, PASSING_AUDIT, []),
            ("failing", ["EMAIL_ADDRESS", "US_SSN"], REQUEST_REVS, FAILING_AUDIT, [])):
        policies[name] = root / f"{name}.toml"
        policies[name].write_text(policy_text(types, revs, audit, inventory), encoding="utf-8")
    requests = {}
    for rid, name, email in (("REQ-JANE", JANE_NAME, JANE_EMAIL), ("REQ-MARK", MARK_NAME, MARK_EMAIL)):
        requests[rid] = root / f"{rid}.json"
        requests[rid].write_text(json.dumps(request_doc(rid, name, email)), encoding="utf-8")
    return World(root, corpus, root / "model", policies["sweep"], policies["request"], policies["failing"],
                 requests["REQ-JANE"], requests["REQ-MARK"])
