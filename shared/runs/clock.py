"""Whose clock says a worker is dead: the database's, not each host's.

Heartbeats are written and judged stale by one clock, so a worker host whose clock runs
behind or ahead cannot make a live run look dead (or a dead one alive). PostgreSQL has a clock
every host shares (`now()`, the transaction's start); SQLite lives in one file on one host, so
that host's clock is the only one there is.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from shared.models import utcnow


def now(session: Session) -> Any:
    """'Now' for heartbeat writes: a SQL expression on PostgreSQL, a datetime on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return func.now()
    return utcnow()


def before(session: Session, seconds: float) -> Any:
    """'`seconds` ago' by the same clock, for comparing heartbeats with."""
    return now(session) - timedelta(seconds=seconds)
