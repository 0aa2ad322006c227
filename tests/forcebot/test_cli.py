from click.testing import CliRunner
from sqlalchemy import select

from forcebot.cli import cli
from shared.models import Admin, ApiToken, hash_token
from tests.conftest import settings_env


def _run(settings, *args, input=None):
    return CliRunner(env=settings_env(settings)).invoke(cli, list(args), input=input)


def test_admin_create_with_password_stdin(settings, runtime):
    result = _run(
        settings,
        "admin",
        "create",
        "Ops@Example.com",
        "--password-stdin",
        input="a long password\n",
    )
    assert result.exit_code == 0, result.output
    assert "password:" not in result.output
    with runtime.Session() as session:
        admin = session.scalar(select(Admin))
    assert admin.email == "ops@example.com"
    assert "a long password" not in admin.password_hash

    again = _run(
        settings,
        "admin",
        "create",
        "ops@example.com",
        "--password-stdin",
        input="a long password\n",
    )
    assert again.exit_code == 2
    assert "already exists" in again.output


def test_admin_create_rejects_short_password(settings):
    result = _run(settings, "admin", "create", "x@y.z", "--password-stdin", input="short\n")
    assert result.exit_code == 2
    assert "at least 8 characters" in result.output


def test_token_create_prints_once_and_stores_hash(settings, runtime):
    result = _run(settings, "token", "create", "ci")
    assert result.exit_code == 0, result.output
    plaintext = result.output.strip()
    assert plaintext.startswith("fbt_")
    with runtime.Session() as session:
        stored = session.scalar(select(ApiToken))
    assert stored.token_hash == hash_token(plaintext)
    assert stored.name == "ci"


def test_unknown_option_is_a_usage_error(settings):
    result = _run(settings, "up", "--port", "http")
    assert result.exit_code == 2
