"""Engine and session factories. The outermost caller owns the session and its transaction."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

# Well below the runs' stale-heartbeat threshold (30 s): a heartbeat that waits this long for
# the write lock gives up and beats again, instead of waiting until its run looks dead.
SQLITE_BUSY_SECONDS = 10

# A pooled PostgreSQL connection is pinged before use only after sitting idle this long (a
# server restart or an idle timeout may have closed it). A ping on every checkout is one more
# round trip and one more server transaction for every transaction; a connection that broke
# while busy fails its statement instead, and SQLAlchemy then drops the whole pool.
PING_IDLE_SECONDS = 10.0
_CHECKED_IN = "forcebot_checked_in"

# `Session.info` key of sessions that only read (see `reading()`).
READ_ONLY = "forcebot_read_only"
# `Connection.info` key: the BEGIN still to be sent before the transaction's first statement.
_PENDING_BEGIN = "forcebot_pending_begin"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine tuned for its backend.

    SQLite gets WAL and a busy timeout so the web, worker and beat processes of the embedded
    default can share one file; foreign keys are switched on so cascades behave as on
    PostgreSQL.
    """
    if url.startswith("sqlite"):
        kwargs.setdefault(
            "connect_args", {"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False}
        )
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling defers BEGIN; take it over so that
            # BEGIN IMMEDIATE-style locking is predictable under concurrent writers.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: a read-then-write transaction can
            # otherwise fail with "database is locked" instead of waiting. The BEGIN is sent
            # with the first statement, so that a session marked read-only (`reading()`) can
            # ask for a plain deferred BEGIN, which takes no write lock, first.
            conn.info[_PENDING_BEGIN] = "BEGIN IMMEDIATE"

        @event.listens_for(engine, "before_cursor_execute")
        def _sqlite_send_begin(conn: Any, cursor: Any, *_: Any) -> None:
            begin = conn.info.pop(_PENDING_BEGIN, None)
            if begin:
                cursor.execute(begin)

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Pre-ping, but only connections idle for `PING_IDLE_SECONDS` (see there)."""

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_conn: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN)
        if since is not None and time.monotonic() - since < PING_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "after_begin", _read_only_begin)
    return factory


def _read_only_begin(session: Session, _transaction: Any, connection: Any) -> None:
    # Runs after the engine's "begin" and before the first statement (SQLite only has a
    # pending BEGIN to change).
    if session.info.get(READ_ONLY) and _PENDING_BEGIN in connection.info:
        connection.info[_PENDING_BEGIN] = "BEGIN"


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads only: on SQLite its transaction takes no write lock, so it neither
    waits for nor blocks writers (WAL readers see the last committed state). Do not write in
    it: a deferred transaction that starts writing after another writer committed fails with
    "database is locked" instead of waiting. On PostgreSQL it is an ordinary session."""
    with factory(info={READ_ONLY: True}) as session:
        yield session


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit on success, roll back on error, always close."""
    with factory.begin() as session:
        yield session
