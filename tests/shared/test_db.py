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
