"""Signed bundles for the hybrid deployment: a model package or a credit policy as one JSON document whose SHA-256
digest the platform signs with its Ed25519 key, so an institution that pinned the platform's public key at set-up
installs only what the platform published, byte for byte.

The signed message names what the bundle is (``model`` or ``policy``) beside its digest, so a signature made for a
policy can never pass for a model package. The private key lives in one PEM file on the platform (`SigningKey.at`),
made the first time it is needed and never served; the public key is served for pinning.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from openice.errors import ValidationError
from openice.scoring.package import MANIFEST, verify

__all__ = ["BUNDLE_FORMAT", "Signed", "SigningKey", "model_bundle", "policy_bundle", "unpack_model", "verified"]

BUNDLE_FORMAT = "openice-bundle/1"
ALGORITHM = "ed25519"
KINDS = ("model", "policy")


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _message(kind: str, sha256: str) -> bytes:
    return f"{BUNDLE_FORMAT} {kind} sha256:{sha256}".encode()


def _public_text(raw: bytes) -> str:
    return f"{ALGORITHM}:{base64.b64encode(raw).decode()}"


def key_id(public_key: str) -> str:
    """A short name for a public key: the first 16 hex digits of the SHA-256 of its text."""
    return hashlib.sha256(public_key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Signed:
    """A bundle's bytes, their digest and the signature of (kind, digest), as the platform serves them."""

    kind: str
    body: bytes
    sha256: str
    signature: str  # base64
    key_id: str


class SigningKey:
    """The platform's Ed25519 signing key, kept in one PEM file (mode 0600)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_key = _public_text(raw)
        self.key_id = key_id(self.public_key)

    @classmethod
    def at(cls, path: str | Path) -> SigningKey:
        """The key in `path`, made there first if there is none: written aside and linked into place, so several
        workers starting at once agree on one key and none reads half of it."""
        path = Path(path)
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, written = tempfile.mkstemp(dir=path.parent, prefix=".signing-")  # mode 0600
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            try:
                os.link(written, path)  # whole or not at all; fails if another worker's key is there already
            except FileExistsError:
                pass  # another worker made it first: use theirs
            finally:
                os.unlink(written)
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as error:
            raise ValidationError(f"cannot read the signing key {path}: {error}", field="signing_key") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise ValidationError(f"{path} is not an Ed25519 private key", field="signing_key")
        return cls(private)

    def sign(self, kind: str, body: bytes) -> Signed:
        sha256 = digest(body)
        signature = base64.b64encode(self._private.sign(_message(kind, sha256))).decode()
        return Signed(kind, body, sha256, signature, self.key_id)


def _public(pin: str) -> Ed25519PublicKey:
    algorithm, _, encoded = pin.partition(":")
    try:
        if algorithm != ALGORITHM:
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(encoded, validate=True))
    except ValueError:
        raise ValidationError(
            f"{pin!r} is not an Ed25519 public key; pin the platform's key as it prints it (ed25519:BASE64)",
            field="pin",
        ) from None


def verified(pin: str, kind: str, body: bytes, signature: str) -> str:
    """The digest of `body` when `signature` is the pinned key's signature of it as a `kind` bundle; otherwise one
    clear refusal (a tampered or substituted bundle, or one signed by another key)."""
    public = _public(pin)
    sha256 = digest(body)
    try:
        public.verify(base64.b64decode(signature, validate=True), _message(kind, sha256))
    except (InvalidSignature, ValueError):
        raise ValidationError(
            f"the {kind} bundle (sha256 {sha256[:16]}) is not signed by the pinned key {key_id(pin)}: "
            "refused, nothing installed",
            field=kind,
        ) from None
    return sha256


def model_bundle(package: Path, version: int) -> bytes:
    """A registered package as one document: its version and hash, and every file of it as text (a package holds
    only JSON and LightGBM's text model)."""
    package_hash = verify(package)
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(package.iterdir()) if p.is_file()}
    return _canonical(
        {"format": BUNDLE_FORMAT, "kind": "model", "version": version, "package_hash": package_hash, "files": files}
    )


def policy_bundle(policy: dict[str, Any], policy_hash: str) -> bytes:
    return _canonical({"format": BUNDLE_FORMAT, "kind": "policy", "policy_hash": policy_hash, "policy": policy})


def read_bundle(kind: str, body: bytes) -> dict[str, Any]:
    """A verified bundle's document, checked to be the kind it was signed as."""
    try:
        document = json.loads(body)
    except ValueError:
        raise ValidationError(f"the {kind} bundle is not JSON", field=kind) from None
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT or document.get("kind") != kind:
        raise ValidationError(f"the bundle is not an {BUNDLE_FORMAT} {kind} bundle", field=kind)
    return document


def unpack_model(document: dict[str, Any], into: Path) -> Path:
    """Write a model bundle's files into a new directory under `into` and check them against their manifest;
    returns the package directory."""
    files = document.get("files")
    if not isinstance(files, dict) or MANIFEST not in files:
        raise ValidationError("the model bundle holds no package manifest", field="model")
    into.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="pulled-", dir=into))
    for name, text in files.items():
        if Path(name).name != name or name.startswith("."):
            raise ValidationError(f"the model bundle names a file outside the package: {name!r}", field="model")
        (out / name).write_text(text, encoding="utf-8")
    if verify(out) != document.get("package_hash"):
        raise ValidationError("the model bundle's files do not hash to its package hash", field="model")
    return out
