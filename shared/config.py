"""Settings: the only reader of the environment.

`Settings.from_env()` parses every variable of SPEC's configuration table once, into typed
fields. A missing or malformed value raises `ConfigError`, whose message is one line naming
the variable and what was expected; the CLI prints it and exits with status 2.

In the embedded default the Flask secret key and the Fernet keys are generated into the
instance directory (mode 0600) on first use and reused afterwards, so a restart keeps sessions
valid and stored secrets readable.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"
EMBEDDED_REDIS_MARKER = "embedded-redis.url"
UP_STATUS_FILE = "up-status.json"  # `forcebot up`'s children and restarts, shown by /readyz


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, expected: str, value: str | None = None) -> None:
        self.variable = variable
        self.expected = expected
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{variable}: {expected}{shown}")


def _parse_url(variable: str, raw: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ConfigError(variable, f"expected a URL starting with {' or '.join(schemes)}", raw)
    return raw


def _parse_database_url(raw: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            "FORCEBOT_DATABASE_URL",
            "expected an SQLAlchemy URL such as sqlite:///path/forcebot.db or "
            "postgresql+psycopg://user@host/db",
            raw,
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError("FORCEBOT_DATABASE_URL", "expected a sqlite:// or postgresql:// URL", raw)
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        # psycopg (3) is the driver we ship; plain postgresql:// would look for psycopg2.
        raw = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return raw


def _parse_bool(variable: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(variable, "expected true or false", raw)


def _parse_int(variable: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(variable, "expected a whole number", raw) from None
    if value < minimum:
        raise ConfigError(variable, f"expected a number >= {minimum}", raw)
    return value


def _parse_allow_hosts(raw: str) -> tuple[str, ...]:
    from shared.outbound.guard import AllowList

    entries = tuple(e.strip() for e in raw.split(",") if e.strip())
    try:
        AllowList.parse(entries)
    except ValueError as exc:
        raise ConfigError(
            "FORCEBOT_HTTP_ALLOW_HOSTS",
            f"expected comma-separated host names, addresses or CIDRs; {exc}",
        ) from None
    return entries


def _read_or_create_secret(path: Path, make: Any) -> str:
    """Return the secret stored at `path`, creating it with mode 0600 on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: two processes starting at once must not both write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def _parse_fernet_keys(variable: str, raw: str) -> list[str]:
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ConfigError(variable, "expected one or more comma-separated Fernet keys")
    for index, key in enumerate(keys):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ConfigError(
                variable,
                f"key {index + 1} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `forcebot keys generate`)",
            ) from None
    return keys


@dataclass(frozen=True)
class Settings:
    """Typed configuration; build it with `from_env()` or directly in tests."""

    instance_dir: Path
    database_url: str
    redis_url: str | None
    public_url: str
    secret_key: str
    encryption_keys: list[str]
    admin_email: str | None = None
    admin_password: str | None = None
    behavior_modules: list[str] = field(default_factory=list)
    run_retention_days: int = 30
    run_max_attempts: int = 5
    log_level: str = "INFO"
    # FORCEBOT_HTTP_ALLOW_HOSTS: host names, addresses or CIDRs (checked by shared.outbound)
    http_allow_hosts: tuple[str, ...] = ()
    # FORCEBOT_WEBHOOK_RETRY_SCALE: multiplies the webhook retry schedule (tests use 0.01)
    webhook_retry_scale: float = 1.0
    # Celery's per-task limits (seconds): the soft one raises SoftTimeLimitExceeded inside the
    # task, the hard one kills the pool process. A last resort behind the run's own deadline
    # and the template limits; a behavior's timeout_seconds above the soft limit is cut to it.
    task_soft_time_limit: int = 3600
    task_time_limit: int = 3660
    # True when FORCEBOT_REDIS_URL is unset: `forcebot up` owns an embedded Redis, and
    # `redis_url` (if any) is the one a running `up` published in the instance directory.
    redis_is_embedded: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def oauth_callback_url(self) -> str:
        return self.public_url.rstrip("/") + "/oauth/callback"

    @property
    def public_is_https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def embedded_redis_path(self) -> Path:
        return self.instance_dir / "redis.db"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        instance_dir = Path(get("FORCEBOT_INSTANCE_DIR") or "./instance").resolve()
        if instance_dir.exists() and not instance_dir.is_dir():
            raise ConfigError("FORCEBOT_INSTANCE_DIR", "expected a directory", str(instance_dir))

        raw_db = get("FORCEBOT_DATABASE_URL")
        database_url = (
            _parse_database_url(raw_db) if raw_db else f"sqlite:///{instance_dir / 'forcebot.db'}"
        )

        raw_redis = get("FORCEBOT_REDIS_URL")
        redis_url = (
            _parse_url("FORCEBOT_REDIS_URL", raw_redis, ("redis", "rediss", "redis+socket"))
            if raw_redis
            else None
        )
        embedded_redis_url = None
        if redis_url is None:
            # A running `forcebot up` publishes its embedded Redis here, so that other commands
            # on the same instance (`forcebot trigger`, a second worker) can reach it.
            marker = instance_dir / EMBEDDED_REDIS_MARKER
            if marker.exists():
                embedded_redis_url = marker.read_text().strip() or None

        public_url = _parse_url(
            "FORCEBOT_PUBLIC_URL",
            get("FORCEBOT_PUBLIC_URL") or DEFAULT_PUBLIC_URL,
            ("http", "https"),
        ).rstrip("/")

        secret_key = get("FORCEBOT_SECRET_KEY")
        if secret_key is not None and len(secret_key) < 16:
            raise ConfigError("FORCEBOT_SECRET_KEY", "expected at least 16 characters")
        if secret_key is None:
            secret_key = _read_or_create_secret(
                instance_dir / "secret_key", lambda: secrets.token_urlsafe(48)
            )

        raw_keys = get("FORCEBOT_ENCRYPTION_KEYS")
        if raw_keys is None:
            raw_keys = _read_or_create_secret(
                instance_dir / "encryption_keys", lambda: Fernet.generate_key().decode()
            )
        encryption_keys = _parse_fernet_keys("FORCEBOT_ENCRYPTION_KEYS", raw_keys)

        admin_email = get("FORCEBOT_ADMIN_EMAIL")
        if admin_email is not None and "@" not in admin_email:
            raise ConfigError("FORCEBOT_ADMIN_EMAIL", "expected an email address", admin_email)
        admin_password = get("FORCEBOT_ADMIN_PASSWORD")
        if admin_password is not None and len(admin_password) < 8:
            raise ConfigError("FORCEBOT_ADMIN_PASSWORD", "expected at least 8 characters")

        modules = [m.strip() for m in (get("FORCEBOT_BEHAVIOR_MODULES") or "").split(",")]
        retention = _parse_int(
            "FORCEBOT_RUN_RETENTION_DAYS", get("FORCEBOT_RUN_RETENTION_DAYS") or "30", 1
        )
        max_attempts = _parse_int(
            "FORCEBOT_RUN_MAX_ATTEMPTS", get("FORCEBOT_RUN_MAX_ATTEMPTS") or "5", 1
        )
        soft_limit = _parse_int(
            "FORCEBOT_TASK_SOFT_TIME_LIMIT", get("FORCEBOT_TASK_SOFT_TIME_LIMIT") or "3600", 1
        )
        hard_limit = _parse_int(
            "FORCEBOT_TASK_TIME_LIMIT", get("FORCEBOT_TASK_TIME_LIMIT") or str(soft_limit + 60), 1
        )
        if hard_limit <= soft_limit:
            raise ConfigError(
                "FORCEBOT_TASK_TIME_LIMIT",
                f"expected more seconds than FORCEBOT_TASK_SOFT_TIME_LIMIT ({soft_limit})",
                str(hard_limit),
            )
        log_level = (get("FORCEBOT_LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("FORCEBOT_LOG_LEVEL", "expected DEBUG, INFO, WARNING or ERROR")

        http_allow_hosts = _parse_allow_hosts(get("FORCEBOT_HTTP_ALLOW_HOSTS") or "")
        raw_scale = get("FORCEBOT_WEBHOOK_RETRY_SCALE") or "1"
        try:
            webhook_retry_scale = float(raw_scale)
        except ValueError:
            webhook_retry_scale = -1.0
        if not 0 < webhook_retry_scale <= 100:
            raise ConfigError(
                "FORCEBOT_WEBHOOK_RETRY_SCALE",
                "expected a number above 0 (1 = real schedule)",
                raw_scale,
            )

        return cls(
            instance_dir=instance_dir,
            database_url=database_url,
            redis_url=redis_url or embedded_redis_url,
            redis_is_embedded=redis_url is None,
            public_url=public_url,
            secret_key=secret_key,
            encryption_keys=encryption_keys,
            admin_email=admin_email,
            admin_password=admin_password,
            behavior_modules=[m for m in modules if m],
            run_retention_days=retention,
            run_max_attempts=max_attempts,
            log_level=log_level,
            http_allow_hosts=http_allow_hosts,
            webhook_retry_scale=webhook_retry_scale,
            task_soft_time_limit=soft_limit,
            task_time_limit=hard_limit,
        )


@dataclass(frozen=True)
class RunTimings:
    """Intervals and thresholds of the durable-runs machinery (seconds).

    Production uses the defaults; tests shorten them through the environment of the worker and
    beat processes they start. Read once per process by `run_timings()`.
    """

    dispatch_every: float = 5.0  # beat: re-queue retrying/waiting runs that are due
    reconcile_every: float = 30.0  # beat: look for lost queued runs and dead workers
    queued_after: float = 60.0  # a run queued longer than this is sent again
    heartbeat_every: float = 5.0  # a running task touches heartbeat_at this often
    heartbeat_stale: float = 30.0  # a running run without a heartbeat this long is re-queued
    retry_base: float = 2.0  # back-off of the first retry; doubles each time
    retry_cap: float = 300.0  # longest back-off between two tries
    quota_recheck: float = 300.0  # how often a waiting run looks at /limits again
    prune_every: float = 3600.0
    max_resumptions: float = 3  # a count: a run whose worker died more often than this fails

    ENV = {
        "dispatch_every": "FORCEBOT_RUN_DISPATCH_EVERY_SECONDS",
        "reconcile_every": "FORCEBOT_RUN_RECONCILE_EVERY_SECONDS",
        "queued_after": "FORCEBOT_RUN_RECONCILE_QUEUED_AFTER_SECONDS",
        "heartbeat_every": "FORCEBOT_RUN_HEARTBEAT_EVERY_SECONDS",
        "heartbeat_stale": "FORCEBOT_RUN_HEARTBEAT_STALE_SECONDS",
        "retry_base": "FORCEBOT_RUN_RETRY_BASE_SECONDS",
        "retry_cap": "FORCEBOT_RUN_RETRY_CAP_SECONDS",
        "quota_recheck": "FORCEBOT_RUN_QUOTA_RECHECK_SECONDS",
        "prune_every": "FORCEBOT_RUN_PRUNE_EVERY_SECONDS",
        "max_resumptions": "FORCEBOT_RUN_MAX_RESUMPTIONS",
    }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunTimings:
        env = os.environ if env is None else env
        values: dict[str, float] = {}
        for attr, variable in cls.ENV.items():
            raw = env.get(variable)
            if raw in (None, ""):
                continue
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(variable, "expected a number of seconds", raw) from None
            if value <= 0:
                raise ConfigError(variable, "expected a number of seconds > 0", raw)
            values[attr] = value
        return cls(**values)


_run_timings: RunTimings | None = None


def run_timings() -> RunTimings:
    """The process's RunTimings, read from the environment on first use."""
    global _run_timings
    if _run_timings is None:
        _run_timings = RunTimings.from_env()
    return _run_timings
