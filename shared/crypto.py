"""Encryption at rest for client secrets and tokens: cryptography's MultiFernet.

The first key of `FORCEBOT_ENCRYPTION_KEYS` encrypts; every key decrypts, so keys rotate by
prepending a new one, running `forcebot keys rotate` (which re-encrypts every stored secret
with the first key) and finally dropping the old key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(RuntimeError):
    """A stored secret cannot be decrypted with any configured key."""


class Crypto:
    """Encrypt and decrypt short secrets (str in, str out)."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def encrypt_optional(self, plaintext: str | None) -> str | None:
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError(
                "a stored secret cannot be decrypted with FORCEBOT_ENCRYPTION_KEYS "
                "(was the key that encrypted it removed?)"
            ) from None

    def decrypt_optional(self, ciphertext: str | None) -> str | None:
        return None if ciphertext is None else self.decrypt(ciphertext)

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt `ciphertext` with the first key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError(
                "a stored secret cannot be decrypted with any key in FORCEBOT_ENCRYPTION_KEYS"
            ) from None
