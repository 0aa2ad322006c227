"""Starting sync runs: one active run per sync, enforced under the sync row's lock."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Run, Sync, utcnow
from shared.models.runs import ACTIVE, QUEUED

from .names import behavior_name_for

SYNC_MAX_ATTEMPTS = 5


class SyncRunning(Exception):
    """The sync already has an active run; `.run_id` is it."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"sync already running as run {run_id}")
        self.run_id = run_id


def active_run(session: Session, sync_id: int) -> Run | None:
    return session.scalars(
        select(Run)
        .where(Run.behavior_name == behavior_name_for(sync_id), Run.status.in_(ACTIVE))
        .order_by(Run.id.desc())
    ).first()


def start_sync_run(
    session: Session, sync_id: int, *, full: bool = False, scheduled: bool = False
) -> Run:
    """Insert a queued run of the sync; raise SyncRunning when one is active.

    The sync row is locked first (SELECT … FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
    serialises writers), so of two concurrent requests the second sees the first's run.
    The caller commits, then sends the run.
    """
    sync = session.get(Sync, sync_id, with_for_update=True)
    if sync is None:
        raise LookupError(f"sync {sync_id} not found")
    running = active_run(session, sync_id)
    if running is not None:
        raise SyncRunning(running.id)
    now = utcnow()
    run = Run(
        behavior_name=behavior_name_for(sync_id),
        behavior_version=None,
        status=QUEUED,
        trigger="sync",
        payload={"full": bool(full), "scheduled": bool(scheduled)},
        max_attempts=SYNC_MAX_ATTEMPTS,
        account_id=sync.account_id,
        sync_id=sync_id,
        created_at=now,
        queued_at=now,
        attempts=0,
        retries=0,
    )
    session.add(run)
    session.flush()
    return run
