"""When scheduled syncs run: the next slot, and firing due syncs exactly once per slot.

`next_slot` adapts the schedules' next-slot computation (`shared.schedules.timing.Rule`), so
a sync's cron is read in its IANA zone exactly as a schedule's is (09:00 Europe/Paris stays
09:00 across DST).

A due sync is fired by a compare-and-swap on `next_run_at` (any number of beats fire a slot
once) and `start_sync_run`, which refuses a second active run: a slot that comes while the
last run is still active is skipped. After downtime a sync runs once, not once per missed
slot: the next slot is computed from now. Scheduled runs have `payload.scheduled`, so they
use the "scheduled" quota purpose and wait at the account's reserve.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from shared.models import Sync, utcnow
from shared.schedules.timing import Rule

from .runs import SyncRunning, start_sync_run

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("forcebot.syncs")


def next_slot(
    cron: str | None, every_seconds: int | None, timezone: str, after: datetime
) -> datetime | None:
    """The first slot strictly after `after` (UTC), or None for an unscheduled sync.

    The schedules' own rule (`shared.schedules.timing.Rule`): cron read in the zone with
    DST gaps and repeats handled, `every_seconds` on a fixed grid from the epoch.
    """
    if not cron and not every_seconds:
        return None
    return Rule(cron or None, every_seconds or None, timezone or "UTC").next_after(after)


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
