"""Encryption of Bytemark OAuth tokens at rest."""

from adapters.crypto.token_cipher import TokenCipher, TokenDecryptionError

__all__ = ["TokenCipher", "TokenDecryptionError"]
