"""When scheduled syncs run: the next slot, and firing due syncs exactly once per slot.

`next_slot` is the small adapter the brief asked for: cron (read in the sync's IANA zone, so
09:00 Europe/Paris stays 09:00 across DST) via croniter, or a fixed `every_seconds`. When the
schedules dispatcher (`shared.schedules`) lands, this function is the one place to point at
its next-slot computation.

A due sync is fired by a compare-and-swap on `next_run_at` (any number of beats fire a slot
once) and `start_sync_run`, which refuses a second active run: a slot that comes while the
last run is still active is skipped. After downtime a sync runs once, not once per missed
slot: the next slot is computed from now. Scheduled runs have `payload.scheduled`, so they
use the "scheduled" quota purpose and wait at the account's reserve.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import select, update

from shared.models import Sync, utcnow

from .runs import SyncRunning, start_sync_run

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("forcebot.syncs")


def next_slot(
    cron: str | None, every_seconds: int | None, timezone: str, after: datetime
) -> datetime | None:
    """The first slot strictly after `after` (UTC), or None for an unscheduled sync."""
    if every_seconds:
        return after + timedelta(seconds=every_seconds)
    if cron:
        local = after.astimezone(ZoneInfo(timezone or "UTC"))
        slot: datetime = croniter(cron, local).get_next(datetime)
        return slot.astimezone(UTC)
    return None


def schedule_sync(sync: Sync, now: datetime | None = None) -> None:
    """Set `next_run_at` from the definition (None when disabled or unscheduled)."""
    now = now or utcnow()
    sync.next_run_at = (
        next_slot(sync.cron, sync.every_seconds, sync.timezone, now) if sync.enabled else None
    )


def fire_due(runtime: Runtime, limit: int = 100) -> list[int]:
    """Start a run of every due sync; return the new run ids (the caller sends them)."""
    now = utcnow()
    with runtime.Session() as session:
        due = session.execute(
            select(Sync.id, Sync.next_run_at)
            .where(Sync.enabled.is_(True), Sync.next_run_at <= now)
            .order_by(Sync.next_run_at)
            .limit(limit)
        ).all()
    started: list[int] = []
    for sync_id, slot in due:
        with runtime.Session.begin() as session:
            sync = session.get(Sync, sync_id)
            if sync is None:
                continue
            following = next_slot(sync.cron, sync.every_seconds, sync.timezone, now)
            won = session.execute(
                update(Sync)
                .where(Sync.id == sync_id, Sync.next_run_at == slot)
                .values(next_run_at=following)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if not won:
                continue  # another beat fired this slot
            try:
                with session.begin_nested():
                    started.append(start_sync_run(session, sync_id, scheduled=True).id)
            except SyncRunning as exc:
                log.info("sync=%s slot=%s skipped running_run=%s", sync_id, slot, exc.run_id)
    return started
