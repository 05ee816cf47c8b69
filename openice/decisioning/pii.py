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
HASH_ENV_KEY = "OPENICE_PII_HASH_KEY"  # after a rotation: the hashing key, kept from the first key
NEW_ENV_KEY = "OPENICE_PII_NEW_KEY"  # the key a rotation moves to
LEGACY, VERSION = "v1", "v2"  # v1: no key id (the first key); v2: the encrypting key's id after the version


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"openice-pii-" + purpose).derive(master)


def parse_key(text: str, name: str = ENV_KEY) -> bytes:
    """A 32-byte key written as 64 hex digits or base64."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ValidationError("must be 32 bytes as 64 hex digits or base64", field=name) from None
    if len(key) != 32:
        raise ValidationError(f"must be 32 bytes, got {len(key)}", field=name)
    return key


class PiiVault:
    """Encrypts, decrypts and hashes personal data with keys derived from one master key.

    The hashing key can be given apart (`hash_key`): keyed hashes of values the platform never stores in clear (a
    device, a blacklisted number) cannot be recomputed, so a key rotation re-encrypts under the new master key and
    keeps hashing under the first one's hashing key, which is all that is kept of it."""

    def __init__(self, master_key: bytes, hash_key: bytes | None = None) -> None:
        self._aead = AESGCM(_derive(master_key, b"enc"))
        self._mac_key = hash_key or _derive(master_key, b"mac")
        self._check_key = _derive(master_key, b"check")
        self.key_id = self.check_value()[:8]

    @classmethod
    def from_env(cls, name: str = ENV_KEY) -> PiiVault:
        text = os.environ.get(name)
        if not text:
            raise Unavailable(
                "is not set: personal data cannot be stored or read without a key "
                "(generate one with `openice pii keygen`)",
                field=name,
            )
        hashing = os.environ.get(HASH_ENV_KEY)
        return cls(parse_key(text, name), parse_key(hashing, HASH_ENV_KEY) if hashing else None)

    @classmethod
    def from_env_if_set(cls) -> PiiVault | None:
        return cls.from_env() if os.environ.get(ENV_KEY) else None

    def check_value(self) -> str:
        """A fingerprint of the key, stored beside the data it encrypted: a wrong key is told at start-up, not by
        rows that fail to decrypt for ever. One-way and from a key of its own, so it reveals nothing."""
        return hmac.new(self._check_key, b"openice-pii-key-check", hashlib.sha256).hexdigest()

    def hash_check_value(self) -> str:
        """The same, for the hashing key: a wrong one would silently stop duplicates from matching."""
        return hmac.new(self._mac_key, b"openice-pii-hash-key-check", hashlib.sha256).hexdigest()

    def hash_key_text(self) -> str:
        return base64.b64encode(self._mac_key).decode()

    def rekeyed(self, master_key: bytes) -> PiiVault:
        """A vault that encrypts under a new master key and hashes as this one does."""
        return PiiVault(master_key, self._mac_key)

    def encrypt(self, column: str, value: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), column.encode())
        return f"{VERSION}:{self.key_id}:" + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, column: str, token: str) -> str:
        version, _, body = token.partition(":")
        if version == VERSION:
            key_id, _, body = body.partition(":")
            if key_id != self.key_id:
                raise ValidationError(f"was encrypted under another key ({key_id})", field=column)
        elif version != LEGACY:
            raise ValidationError(f"unknown ciphertext version {version!r}", field=column)
        raw = base64.b64decode(body)
        return self._aead.decrypt(raw[:12], raw[12:], column.encode()).decode()

    def keyed_hash(self, kind: str, value: str) -> str:
        """Equal values of one kind hash equal under this key, so records can be matched without decrypting."""
        return hmac.new(self._mac_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()
