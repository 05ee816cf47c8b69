"""Personal data at rest: AES-GCM encryption and keyed hashes (HMAC-SHA256) for matching.

One master key (32 bytes, from configuration or the OPENICE_PII_KEY environment variable, base64 or
hex) is split by HKDF into an encryption key and a hashing key, so a leaked hash never helps decrypt.
Each ciphertext is bound to its column name (associated data) so values cannot be swapped between
columns unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openice.errors import Unavailable, ValidationError

ENV_KEY = "OPENICE_PII_KEY"
VERSION = "v1"


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"openice-pii-" + purpose).derive(master)


def parse_key(text: str) -> bytes:
    """A 32-byte key written as 64 hex digits or base64."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ValidationError("must be 32 bytes as 64 hex digits or base64", field=ENV_KEY) from None
    if len(key) != 32:
        raise ValidationError(f"must be 32 bytes, got {len(key)}", field=ENV_KEY)
    return key


class PiiVault:
    """Encrypts, decrypts and hashes personal data with keys derived from one master key."""

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(_derive(master_key, b"enc"))
        self._mac_key = _derive(master_key, b"mac")
        self._check_key = _derive(master_key, b"check")

    @classmethod
    def from_env(cls) -> PiiVault:
        text = os.environ.get(ENV_KEY)
        if not text:
            raise Unavailable("is not set: personal data cannot be stored or read without a key "
                              "(generate one with `openice decision keygen`)", field=ENV_KEY)
        return cls(parse_key(text))

    @classmethod
    def from_env_if_set(cls) -> PiiVault | None:
        return cls.from_env() if os.environ.get(ENV_KEY) else None

    def check_value(self) -> str:
        """A fingerprint of the key, stored beside the data it encrypted: a wrong key is told at start-up, not by
        rows that fail to decrypt for ever. One-way and from a key of its own, so it reveals nothing."""
        return hmac.new(self._check_key, b"openice-pii-key-check", hashlib.sha256).hexdigest()

    def encrypt(self, column: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), column.encode())
        return f"{VERSION}:" + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, column: str, token: str) -> str:
        version, _, body = token.partition(":")
        if version != VERSION:
            raise ValidationError(f"unknown ciphertext version {version!r}", field=column)
        raw = base64.b64decode(body)
        return self._aead.decrypt(raw[:12], raw[12:], column.encode()).decode()

    def keyed_hash(self, kind: str, value: str) -> str:
        """Equal values of one kind hash equal under this key, so records can be matched without decrypting."""
        return hmac.new(self._mac_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()
