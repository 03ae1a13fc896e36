"""Report signing: Ed25519 with a 0600 workspace key, HMAC fallback without `cryptography`."""

import json
import os

import pytest

from tasks import signing
from tasks.reporting import build_report, export_report, verify_report


def test_ed25519_sign_and_verify(tmp_path):
    doc = signing.sign_bytes(b"manifest", tmp_path)
    assert doc["algorithm"] == "ed25519"
    key = tmp_path / "keys" / "report_signing.ed25519"
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    assert signing.verify_bytes(b"manifest", doc, tmp_path) == ([], [])
    problems, _ = signing.verify_bytes(b"manifesT", doc, tmp_path)
    assert problems == ["signature: does not match manifest.json (manifest or signature changed)"]


def test_key_is_reused_across_calls(tmp_path):
    assert signing.sign_bytes(b"a", tmp_path)["key_id"] == signing.sign_bytes(b"b", tmp_path)["key_id"]


def test_signature_from_another_key_is_rejected_when_signer_is_pinned(tmp_path):
    foreign = signing.sign_bytes(b"m", tmp_path / "attacker")
    problems, _ = signing.verify_bytes(b"m", foreign, tmp_path / "victim",
                                       trusted_public_key=signing.public_key_pem(tmp_path / "victim"))
    assert problems == ["signature: signed by a key other than the trusted public key"]


def test_unpinned_verification_says_so(tmp_path):
    doc = signing.sign_bytes(b"m", tmp_path / "a")
    problems, notes = signing.verify_bytes(b"m", doc, tmp_path / "elsewhere")
    assert problems == []
    assert notes[0].startswith("signer not pinned")


def test_hmac_fallback_without_cryptography(tmp_path, monkeypatch, report_data):
    monkeypatch.setattr(signing, "serialization", None)
    assert signing.signing_available() == "hmac-sha256"
    out = export_report(build_report(report_data), tmp_path / "out", ["json"], root=tmp_path)
    assert json.loads((out / "signature").read_text())["algorithm"] == "hmac-sha256"
    assert oct(os.stat(tmp_path / "keys" / "report_signing.hmac").st_mode & 0o777) == "0o600"
    assert verify_report(out, tmp_path).ok
    manifest = out / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"size"', b'"Size"', 1))
    assert not verify_report(out, tmp_path).ok
    assert not verify_report(out, tmp_path / "other-workspace").ok


@pytest.mark.parametrize("doc", [None, {"signature": "!!"}, {"algorithm": "rsa", "signature": "AAAA"}])
def test_malformed_signature_documents_fail(tmp_path, doc):
    problems, _ = signing.verify_bytes(b"m", doc, tmp_path)
    assert len(problems) == 1
