"""Signatures over report manifests.

Offers :func:`sign_bytes` and :func:`verify_bytes`, :func:`signing_available` and :func:`public_key_pem`.

Choice of scheme: **Ed25519** (``cryptography``, installed with MLflow/Prefect) whenever it imports — an auditor
can check a report with the public key alone, without any secret. The private key is created on first use as
``<workspace>/keys/report_signing.ed25519`` (PKCS#8 PEM, mode 0600) with its public half next to it
(``report_signing.pub``). An auditor receives that public key through a trusted channel and passes it to
``revs report verify --public-key``; verification without a trusted key fails, since the key embedded in a
signature only says who claims to have signed. Without ``cryptography`` the fallback is **HMAC-SHA256** under a
workspace secret (``keys/report_signing.hmac``, 0600, distinct from the subject-hashing key): tamper-evident for
anyone holding the workspace, but not publicly verifiable.

A signature document is JSON: ``{"algorithm": "ed25519"|"hmac-sha256", "key_id": ..., "signature": <base64>,
"public_key": <PEM, ed25519 only>}``. The key id is the first 16 hex of the sha256 of the public key (or of the
HMAC key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from tasks._workspace import workspace_root

try:  # optional dependency: see the module docstring for the fallback
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError:  # pragma: no cover - exercised only where cryptography is absent
    serialization = None

ED25519 = "ed25519"
HMAC_SHA256 = "hmac-sha256"
PUBLIC_KEY_FILE = "report_signing.pub"


def signing_available() -> str:
    """Return the algorithm this installation signs with (``ed25519`` or ``hmac-sha256``)."""
    return ED25519 if serialization is not None else HMAC_SHA256


def _keys_dir(root: Path | None) -> Path:
    keys = (root or workspace_root()) / "keys"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    return keys


def _create_0600(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return True


def _ed25519_private(root: Path | None) -> Ed25519PrivateKey:
    keys = _keys_dir(root)
    path = keys / "report_signing.ed25519"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    if _create_0600(path, pem):
        key = serialization.load_pem_private_key(pem, password=None)
        (keys / PUBLIC_KEY_FILE).write_bytes(_public_pem(key.public_key()))
        return key
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _hmac_key(root: Path | None) -> bytes:
    path = _keys_dir(root) / "report_signing.hmac"
    _create_0600(path, secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 16:
        raise ValueError(f"{path}: signing key is truncated; restore it from backup")
    return key


def _key_id(material: bytes) -> str:
    return hashlib.sha256(material).hexdigest()[:16]


def public_key_pem(root: Path | None = None) -> bytes | None:
    """Return the workspace's Ed25519 public key (PEM), creating the key pair if needed; None without Ed25519."""
    if serialization is None:
        return None
    return _public_pem(_ed25519_private(root).public_key())


def sign_bytes(data: bytes, root: Path | None = None) -> dict[str, str]:
    """Sign ``data`` with the workspace key; return the signature document."""
    if serialization is not None:
        key = _ed25519_private(root)
        pub = _public_pem(key.public_key())
        return {"algorithm": ED25519, "key_id": _key_id(pub), "public_key": pub.decode("ascii"),
                "signature": base64.b64encode(key.sign(data)).decode("ascii")}
    key = _hmac_key(root)
    return {"algorithm": HMAC_SHA256, "key_id": _key_id(key),
            "signature": base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode("ascii")}


def verify_bytes(data: bytes, doc: Any, root: Path | None = None,
                 trusted_public_key: bytes | None = None) -> tuple[list[str], list[str]]:
    """Check a signature document over ``data``.

    Args:
        data: The signed bytes.
        doc: The parsed signature document.
        root: Workspace whose keys are trusted (its public key pins the signer).
        trusted_public_key: A PEM public key to pin the signer explicitly (takes precedence).

    Verification needs a trusted key: ``trusted_public_key``, else the workspace's public key. Without either it
    fails — the public key embedded in a signature document only says who *claims* to have signed.

    Returns:
        ``(problems, notes)``: problems make verification fail; notes are caveats.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("signature"), str):
        return ["signature: not a signature document"], []
    try:
        sig = base64.b64decode(doc["signature"], validate=True)
    except ValueError:
        return ["signature: not valid base64"], []
    algorithm = doc.get("algorithm")
    if algorithm == ED25519:
        if serialization is None:
            return ["signature: ed25519 signature but the `cryptography` package is not installed"], []
        notes: list[str] = []
        embedded = str(doc.get("public_key", "")).encode("ascii", "replace")
        trusted = trusted_public_key
        if trusted is None:
            pub_path = (root or workspace_root()) / "keys" / PUBLIC_KEY_FILE
            if not pub_path.is_file():
                # the key embedded in the signature proves nothing: anyone can re-sign with their own key
                return [f"signature: no trusted key to check it against (no --public-key given and {pub_path} "
                        "does not exist); get the issuer's public key (`revs report public-key` in their "
                        "workspace) and pass it with --public-key"], []
            trusted = pub_path.read_bytes()
        if trusted.strip() != embedded.strip():
            return ["signature: signed by a key other than the trusted public key"], []
        try:
            public = serialization.load_pem_public_key(trusted)
        except ValueError:
            return ["signature: public key is not a valid PEM key"], notes
        if not isinstance(public, Ed25519PublicKey):
            return ["signature: public key is not an Ed25519 key"], notes
        try:
            public.verify(sig, data)
        except InvalidSignature:
            return ["signature: does not match manifest.json (manifest or signature changed)"], notes
        return [], notes
    if algorithm == HMAC_SHA256:
        key_path = (root or workspace_root()) / "keys" / "report_signing.hmac"
        if not key_path.exists():
            return ["signature: HMAC-signed, and this workspace has no report_signing.hmac key to check it"], []
        expected = hmac.new(key_path.read_bytes(), data, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, sig):
            return ["signature: does not match manifest.json (manifest or signature changed)"], []
        return [], []
    return [f"signature: unknown algorithm {algorithm!r}"], []
