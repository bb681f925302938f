"""Encryption of Bytemark OAuth tokens at rest."""

from adapters.crypto.token_cipher import TokenCipher

__all__ = ["TokenCipher"]
