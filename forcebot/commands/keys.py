"""`forcebot keys generate|rotate|check`: Fernet keys for secrets at rest."""

from __future__ import annotations

import click

from forcebot.cli import checked_database, cli, fail, load_settings


@cli.group()
def keys() -> None:
    """Encryption keys (FORCEBOT_ENCRYPTION_KEYS)."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key."""
    from shared.keys import generate_key

    click.echo(generate_key())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret with the first key of FORCEBOT_ENCRYPTION_KEYS.

    To change keys: put the new key first (NEW,OLD), run this, then drop OLD.
    """
    from shared.crypto import DecryptionError
    from shared.keys import rotate_secrets
    from shared.runtime import Runtime

    settings = load_settings()
    checked_database(settings)
    runtime = Runtime(settings)
    try:
        with runtime.Session.begin() as session:
            counts = rotate_secrets(session, runtime.crypto)
    except DecryptionError as exc:
        fail(f"FORCEBOT_ENCRYPTION_KEYS: {exc}")
    finally:
        runtime.close()
    summary = ", ".join(f"{count} {label}" for label, count in counts.items())
    click.echo(f"re-encrypted with the first key: {summary}")
    if len(settings.encryption_keys) > 1:
        click.echo("the other keys are no longer needed and can be removed")


@keys.command("check")
def keys_check() -> None:
    """Check that every stored secret decrypts with the configured keys."""
    settings = load_settings()
    checked_database(settings)
    click.echo("every stored secret decrypts")
