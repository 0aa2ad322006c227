"""Runtime: the per-process objects built from Settings (engine, sessions, crypto, Redis).

Nothing is connected at import time; web, worker and CLI each build one `Runtime` from their
Settings, and a forked worker child calls `after_fork()` so it never shares its parent's
database connections.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings
from .crypto import Crypto
from .db import make_engine, make_session_factory

if TYPE_CHECKING:
    import redis


class RedisNotConfigured(RuntimeError):
    pass


class Runtime:
    """Lazily built, process-wide resources."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def Session(self) -> sessionmaker[Session]:  # noqa: N802 - reads like the class it makes
        return make_session_factory(self.engine)

    @cached_property
    def crypto(self) -> Crypto:
        return Crypto(self.settings.encryption_keys)

    @cached_property
    def redis(self) -> redis.Redis:
        import redis as redis_lib

        if not self.settings.redis_url:
            raise RedisNotConfigured(
                "FORCEBOT_REDIS_URL is not set (only `forcebot up` starts an embedded Redis)"
            )
        return redis_lib.Redis.from_url(
            self.settings.redis_url, socket_timeout=10, socket_connect_timeout=5
        )

    def after_fork(self) -> None:
        """Drop connections inherited from a parent process without closing them for it."""
        if "engine" in self.__dict__:
            self.engine.dispose(close=False)
        if "redis" in self.__dict__:
            self.redis.connection_pool.reset()

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
