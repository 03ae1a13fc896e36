"""Report signing: Ed25519 with a 0600 workspace key, HMAC fallback without `cryptography`."""

import json
import os

import pytest

from tasks import signing
from tasks._io import sha256_file
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


def test_verification_without_a_trusted_key_fails(tmp_path):
    doc = signing.sign_bytes(b"m", tmp_path / "a")
    problems, _ = signing.verify_bytes(b"m", doc, tmp_path / "elsewhere")
    assert len(problems) == 1
    assert problems[0].startswith("signature: no trusted key")
    assert "--public-key" in problems[0]
    pinned, _ = signing.verify_bytes(b"m", doc, tmp_path / "elsewhere",
                                     trusted_public_key=signing.public_key_pem(tmp_path / "a"))
    assert pinned == []


def test_report_re_signed_with_another_key_fails_in_a_fresh_workspace(tmp_path, report_data):
    # given: a genuine export, then an attacker edits report.json, rebuilds the manifest and re-signs it
    out = export_report(build_report(report_data), tmp_path / "out", ["json"], root=tmp_path / "issuer")
    forged_text = (out / "report.json").read_text().replace('"passed": true', '"passed": false')
    (out / "report.json").write_text(forged_text)
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        path = out / entry["path"]
        entry["sha256"], entry["size"] = sha256_file(path), path.stat().st_size
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (out / "manifest.json").write_bytes(manifest_bytes)
    forged = signing.sign_bytes(manifest_bytes, tmp_path / "attacker")
    (out / "signature").write_text(json.dumps(forged))
    # when / then: a fresh workspace (no key) refuses it; the issuer's key refuses it; the issuer's workspace too
    fresh = verify_report(out, tmp_path / "fresh")
    assert not fresh.ok
    assert fresh.problems[0].startswith("signature: no trusted key")
    issuer_key = signing.public_key_pem(tmp_path / "issuer")
    assert verify_report(out, tmp_path / "fresh", trusted_public_key=issuer_key).problems == [
        "signature: signed by a key other than the trusted public key"]
    assert not verify_report(out, tmp_path / "issuer").ok


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
