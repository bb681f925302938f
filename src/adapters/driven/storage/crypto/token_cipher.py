"""AES-GCM encryption of stored OAuth tokens, bound to the owning user.

Stored form: ``enc:v1:`` + base64url(nonce || ciphertext+tag), unpadded. The version in the prefix
leaves room for another scheme (or key rotation) later; values without the prefix are legacy
plaintext and are read as is, so a key can be switched on over an existing table.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from application.errors import TokenDecryptionError

SETTING = "TOKEN_ENCRYPTION_KEY"
PREFIX = "enc:v1:"
_NONCE_BYTES = 12  # the size AES-GCM is specified and fastest for
_TAG_BYTES = 16
_KEY_SIZES = (16, 24, 32)


def decode_aes_key(text: str) -> bytes:
    """The AES key in TOKEN_ENCRYPTION_KEY: standard or urlsafe base64, padding optional, of 16,
    24 or 32 bytes. The one parser of that format (settings validate with it too). Messages never
    echo the value: it is a secret."""
    normalised = text.strip().replace("-", "+").replace("_", "/")
    normalised += "=" * (-len(normalised) % 4)
    try:
        key = base64.b64decode(normalised, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    if len(key) not in _KEY_SIZES:
        raise ValueError(f"must decode to 16, 24 or 32 bytes, got {len(key)}")
    return key


class TokenCipher:
    """Encrypts on write, decrypts on read. With no key it is a pass-through (plaintext storage)."""

    def __init__(self, key: bytes | None) -> None:
        if key is not None and len(key) not in _KEY_SIZES:
            raise ValueError(f"{SETTING} must be 16, 24 or 32 bytes, got {len(key)}")
        self._aead = AESGCM(key) if key else None

    @classmethod
    def from_base64(cls, text: str | None) -> TokenCipher:
        """Build from the setting's value (see `decode_aes_key`). Empty or None: no encryption."""
        if text is None or not text.strip():
            return cls(None)
        try:
            return cls(decode_aes_key(text))
        except ValueError as problem:
            raise ValueError(f"{SETTING} {problem}") from None

    @property
    def enabled(self) -> bool:
        return self._aead is not None

    @staticmethod
    def is_encrypted(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def encrypt(self, plaintext: str, user_id: int) -> str:
        if self._aead is None:
            return plaintext
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), _associated_data(user_id))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")

    def decrypt(self, stored: str, user_id: int) -> str:
        if not self.is_encrypted(stored):
            return stored  # legacy plaintext row
        if self._aead is None:
            raise TokenDecryptionError(user_id, f"is encrypted but {SETTING} is not set")
        body = stored[len(PREFIX) :]
        try:
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if len(blob) < _NONCE_BYTES + _TAG_BYTES:
                raise ValueError("too short")
            plain = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _associated_data(user_id))
            return plain.decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error):
            # wrong key, corrupted value, or a value copied from another user's row
            raise TokenDecryptionError(
                user_id,
                f"cannot be decrypted with {SETTING} (wrong key, corrupted, or belongs to another user)",
            ) from None

    def encrypt_optional(self, plaintext: str | None, user_id: int) -> str | None:
        """For nullable columns: None and '' are stored as NULL."""
        return self.encrypt(plaintext, user_id) if plaintext else None

    def decrypt_optional(self, stored: str | None, user_id: int) -> str | None:
        return self.decrypt(stored, user_id) if stored else None

    def __repr__(self) -> str:  # never show key material
        return f"TokenCipher(enabled={self.enabled})"


def _associated_data(user_id: int) -> bytes:
    # Binds the ciphertext to its owner: a value copied to another user's row fails authentication.
    return f"bytemark_tokens:user:{int(user_id)}".encode("ascii")
