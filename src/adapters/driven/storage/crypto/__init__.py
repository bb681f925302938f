"""Encryption of Bytemark OAuth tokens at rest."""

from adapters.driven.storage.crypto.token_cipher import TokenCipher

__all__ = ["TokenCipher"]
