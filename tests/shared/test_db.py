"""SQLite transactions: writers take the write lock up front, `reading()` sessions do not."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select

from shared.db import reading
from shared.models import Run


@pytest.fixture(name="sqlite_path")
def sqlite_path_fixture(runtime):
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's locking only")
    return runtime.engine.url.database


def _write_lock_free(path: str) -> bool:
    """Whether another connection could take the write lock right now (no waiting)."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    else:
        other.execute("ROLLBACK")
        return True
    finally:
        other.close()


def test_a_reading_session_takes_no_write_lock(runtime, sqlite_path):
    with reading(runtime.Session) as session:
        assert session.scalars(select(Run.id)).all() == []
        assert _write_lock_free(sqlite_path)


def test_an_explicit_transaction_takes_the_write_lock_at_its_first_read(runtime, sqlite_path):
    # A read-then-write transaction must not start deferred: its write would fail with
    # "database is locked" (no waiting) whenever another writer committed since its read.
    with runtime.Session.begin() as session:
        session.scalars(select(Run.id)).all()
        assert not _write_lock_free(sqlite_path)
    assert _write_lock_free(sqlite_path)


def test_a_plain_session_keeps_taking_the_write_lock(runtime, sqlite_path):
    with runtime.Session() as session:  # not marked read-only: may write and commit later
        session.scalars(select(Run.id)).all()
        assert not _write_lock_free(sqlite_path)


@pytest.fixture(name="pg_url")
def pg_url_fixture(runtime):
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's pooled connections only")
    return runtime.engine.url


def _terminate_pooled_connection(engine) -> None:
    """Kill, from another connection, the server process behind the pool's one connection."""
    from sqlalchemy import create_engine, text

    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    killer = create_engine(engine.url, poolclass=None)
    try:
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()
    finally:
        killer.dispose()


def test_a_connection_idle_past_the_threshold_is_pinged_and_replaced(pg_url, monkeypatch):
    from sqlalchemy import text

    from shared import db

    engine = db.make_engine(pg_url.render_as_string(hide_password=False), pool_size=1)
    try:
        _terminate_pooled_connection(engine)
        monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)  # as if it had been idle long
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_recently_used_connection_is_not_pinged(pg_url, monkeypatch):
    from sqlalchemy import text

    from shared import db

    engine = db.make_engine(pg_url.render_as_string(hide_password=False), pool_size=1)
    pings: list[int] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(1) or real_ping(conn))
    try:
        for _ in range(5):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        assert pings == []  # one round trip and one server transaction fewer each time
        monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert pings == [1]
    finally:
        engine.dispose()
