"""Encryption keys: make one, re-encrypt every stored secret with the first, check at start-up.

The stored secrets are services' client secrets, accounts' access and refresh tokens, and
pending OAuth states' PKCE verifiers. A process started with the wrong key would otherwise
run until the first refresh and then fail obscurely; `check_stored_secrets` makes that a
start-up error naming FORCEBOT_ENCRYPTION_KEYS.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import Engine, inspect, select, update
from sqlalchemy.orm import Session

from .crypto import Crypto, DecryptionError
from .models import Account, OAuthState, Service

# (model, label, column attribute names) of every encrypted column.
ENCRYPTED: list[tuple[Any, str, tuple[str, ...]]] = [
    (Service, "client secrets", ("client_secret_enc",)),
    (Account, "access/refresh tokens", ("access_token_enc", "refresh_token_enc")),
    (OAuthState, "PKCE verifiers", ("code_verifier_enc",)),
]


class KeysMismatch(RuntimeError):
    """Stored secrets cannot be decrypted with the configured keys."""


def generate_key() -> str:
    """A new Fernet key (32 random bytes, URL-safe base64)."""
    return Fernet.generate_key().decode()


def rotate_secrets(session: Session, crypto: Crypto) -> dict[str, int]:
    """Re-encrypt every stored secret with the first key; counts per kind (caller commits).

    Rows are locked while they are rewritten so a concurrent token refresh is not lost.
    """
    counts: dict[str, int] = {}
    for model, label, columns in ENCRYPTED:
        counts[label] = 0
        attrs = [getattr(model, name) for name in columns]
        rows = session.execute(select(model.id, *attrs).with_for_update()).all()
        for row in rows:
            values: dict[str, str] = {}
            for name in columns:
                ciphertext = getattr(row, name)
                if ciphertext is not None:
                    values[name] = crypto.rotate(ciphertext)
                    counts[label] += 1
            if values:
                session.execute(update(model).where(model.id == row.id).values(**values))
    return counts


def check_stored_secrets(engine: Engine, crypto: Crypto) -> None:
    """Raise KeysMismatch naming what cannot be decrypted; no-op on a database not yet migrated."""
    tables = set(inspect(engine).get_table_names())
    failures: list[str] = []
    with Session(engine) as session:
        for model, label, columns in ENCRYPTED:
            if model.__tablename__ not in tables:
                continue
            attrs = [getattr(model, name) for name in columns]
            bad = 0
            for row in session.execute(select(model.id, *attrs)):
                for name in columns:
                    try:
                        crypto.decrypt_optional(getattr(row, name))
                    except DecryptionError:
                        bad += 1
            if bad:
                failures.append(f"{bad} {label}")
    if failures:
        raise KeysMismatch(
            "FORCEBOT_ENCRYPTION_KEYS: stored secrets cannot be decrypted with the configured "
            f"keys ({', '.join(failures)}); set the key that encrypted them (keep it after a "
            "new first key and run `forcebot keys rotate` to change keys)"
        )
