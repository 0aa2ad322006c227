import stat

import pytest
from cryptography.fernet import Fernet

from shared.config import ConfigError, Settings


def env(tmp_path, **values):
    return {"FORCEBOT_INSTANCE_DIR": str(tmp_path), **values}


def test_embedded_defaults_generate_keys_once(tmp_path):
    first = Settings.from_env(env(tmp_path))
    assert first.database_url == f"sqlite:///{tmp_path / 'forcebot.db'}"
    assert first.redis_url is None
    assert first.public_url == "http://127.0.0.1:5000"
    assert first.oauth_callback_url == "http://127.0.0.1:5000/oauth/callback"
    for name in ("secret_key", "encryption_keys"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, name
    second = Settings.from_env(env(tmp_path))
    assert second.secret_key == first.secret_key
    assert second.encryption_keys == first.encryption_keys


def test_postgres_url_gets_the_psycopg_driver(tmp_path):
    settings = Settings.from_env(
        env(tmp_path, FORCEBOT_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/test")
    )
    assert settings.database_url.startswith("postgresql+psycopg://")


def test_key_list_first_encrypts(tmp_path):
    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = Settings.from_env(env(tmp_path, FORCEBOT_ENCRYPTION_KEYS=f"{k1}, {k2}"))
    assert settings.encryption_keys == [k1, k2]


@pytest.mark.parametrize(
    "variable,value,fragment",
    [
        ("FORCEBOT_DATABASE_URL", "nonsense", "SQLAlchemy URL"),
        ("FORCEBOT_DATABASE_URL", "mysql://x/y", "sqlite:// or postgresql://"),
        ("FORCEBOT_REDIS_URL", "localhost:6379", "redis"),
        ("FORCEBOT_PUBLIC_URL", "ftp://example.com", "http"),
        ("FORCEBOT_ENCRYPTION_KEYS", "not-a-key", "Fernet key"),
        ("FORCEBOT_SECRET_KEY", "short", "16 characters"),
        ("FORCEBOT_ADMIN_EMAIL", "nobody", "email"),
        ("FORCEBOT_ADMIN_PASSWORD", "short", "8 characters"),
        ("FORCEBOT_RUN_RETENTION_DAYS", "soon", "whole number"),
        ("FORCEBOT_TASK_SOFT_TIME_LIMIT", "1h", "whole number"),
        ("FORCEBOT_TASK_SOFT_TIME_LIMIT", "0", ">= 1"),
        ("FORCEBOT_TASK_TIME_LIMIT", "60", "more seconds than FORCEBOT_TASK_SOFT_TIME_LIMIT"),
    ],
)
def test_malformed_settings_name_the_variable(tmp_path, variable, value, fragment):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env(tmp_path, **{variable: value}))
    message = str(info.value)
    assert message.startswith(variable + ":")
    assert fragment in message
    assert "\n" not in message


def test_task_time_limits_default_to_an_hour_plus_a_minute(tmp_path):
    settings = Settings.from_env(env(tmp_path))
    assert (settings.task_soft_time_limit, settings.task_time_limit) == (3600, 3660)
    custom = Settings.from_env(env(tmp_path, FORCEBOT_TASK_SOFT_TIME_LIMIT="120"))
    assert (custom.task_soft_time_limit, custom.task_time_limit) == (120, 180)
