"""Encryption keys: generate, rotate (then drop the old key), and refuse a wrong key at start."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select

from forcebot.cli import cli
from shared.crypto import Crypto
from shared.linking import start_link
from shared.models import Account, OAuthState, Service
from tests.conftest import ROOT, SIM_CLIENT_SECRET, settings_env


def run(settings, *args, keys=None):
    env = settings_env(settings)
    if keys is not None:
        env["FORCEBOT_ENCRYPTION_KEYS"] = ",".join(keys)
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def stored_ciphertexts(runtime):
    with runtime.Session() as session:
        values = list(session.scalars(select(Service.client_secret_enc)))
        for account in session.scalars(select(Account)):
            values += [account.access_token_enc, account.refresh_token_enc]
        values += list(session.scalars(select(OAuthState.code_verifier_enc)))
    return values


def test_generate_prints_a_fernet_key(settings):
    result = run(settings, "keys", "generate")
    assert result.exit_code == 0
    Fernet(result.output.strip().encode())  # raises if it is not a key


def test_rotate_to_a_new_key_then_drop_the_old(settings, runtime, linked_account, sim):
    linked_account()
    with runtime.Session.begin() as session:
        service_id = session.scalars(select(Service.id)).one()
        start_link(session, runtime.crypto, settings.oauth_callback_url, service_id, "other")
    old_key = settings.encryption_keys[0]
    plaintexts = [runtime.crypto.decrypt(c) for c in stored_ciphertexts(runtime)]
    assert SIM_CLIENT_SECRET in plaintexts and len(plaintexts) == 4

    new_key = Fernet.generate_key().decode()
    result = run(settings, "keys", "rotate", keys=[new_key, old_key])
    assert result.exit_code == 0, result.output
    assert "1 client secrets, 2 access/refresh tokens, 1 PKCE verifiers" in result.output

    only_new = Crypto([new_key])
    assert [only_new.decrypt(c) for c in stored_ciphertexts(runtime)] == plaintexts
    assert run(settings, "keys", "check", keys=[new_key]).exit_code == 0

    # The old key alone no longer reads them: a clear error, exit status 2.
    result = run(settings, "keys", "check", keys=[old_key])
    assert result.exit_code == 2
    assert "FORCEBOT_ENCRYPTION_KEYS: stored secrets cannot be decrypted" in result.output
    assert "1 client secrets" in result.output


def test_wrong_key_stops_a_process_at_start(settings, linked_account, sim):
    linked_account()
    env = settings_env(settings)
    env["FORCEBOT_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    result = subprocess.run(
        [sys.executable, "-m", "forcebot", "worker"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("forcebot: FORCEBOT_ENCRYPTION_KEYS: stored secrets")
    assert "Traceback" not in result.stderr


def test_rotate_with_a_wrong_key_fails_cleanly(settings, linked_account, runtime, sim):
    linked_account()
    before = stored_ciphertexts(runtime)
    result = run(settings, "keys", "rotate", keys=[Fernet.generate_key().decode()])
    assert result.exit_code == 2
    assert "FORCEBOT_ENCRYPTION_KEYS" in result.output
    assert stored_ciphertexts(runtime) == before


def test_empty_database_passes_the_check(settings):
    result = run(settings, "keys", "check", keys=[Fernet.generate_key().decode()])
    assert result.exit_code == 0
