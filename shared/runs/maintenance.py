"""Beat maintenance: dispatch due runs, reconcile lost messages and dead workers, prune."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from shared.config import RunTimings, run_timings
from shared.models import Account, Attempt, HttpExchange, Run, RunStep, utcnow
from shared.models.accounts import NEEDS_REAUTH
from shared.models.runs import FAILED, FINISHED, QUEUED, RETRYING, RUNNING, WAITING

from . import clock
from .execute import SCHEDULED_TRIGGERS

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("forcebot.runs")


def dispatch_due(
    runtime: Runtime,
    *,
    check_room: Callable[..., bool] | None = None,
    limit: int = 500,
    timings: RunTimings | None = None,
) -> list[int]:
    """Queue retrying/waiting runs whose time has come; return the ids to send.

    A waiting run is queued only when its account has room again (`check_room`, which asks
    Salesforce's /limits); otherwise it waits another `quota_recheck`.
    """
    timings = timings or run_timings()
    now = utcnow()
    with runtime.Session.begin() as session:
        _fail_needs_reauth(session, now)
    with runtime.Session() as session:
        due = session.execute(
            select(Run.id, Run.status, Run.account_id, Run.trigger)
            .where(Run.status.in_((RETRYING, WAITING)), Run.next_attempt_at <= now)
            .order_by(Run.next_attempt_at)
            .limit(limit)
        ).all()
    if not due:
        return []
    room: dict[tuple[int, str], bool] = {}
    ready: list[int] = []
    later: list[int] = []
    for run_id, status, account_id, trigger in due:
        if status == WAITING and account_id is not None:
            purpose = "scheduled" if trigger in SCHEDULED_TRIGGERS else "trigger"
            key = (account_id, purpose)
            if key not in room:
                room[key] = _has_room(runtime, account_id, purpose, check_room, timings)
            if not room[key]:
                later.append(run_id)
                continue
        ready.append(run_id)
    with runtime.Session.begin() as session:
        if later:
            session.execute(
                update(Run)
                .where(Run.id.in_(later), Run.status == WAITING)
                .values(next_attempt_at=now + timedelta(seconds=timings.quota_recheck))
            )
        queued: list[int] = []
        for run_id in ready:
            changed = session.execute(
                update(Run)
                .where(
                    Run.id == run_id,
                    Run.status.in_((RETRYING, WAITING)),
                    Run.next_attempt_at <= now,
                )
                .values(status=QUEUED, queued_at=now, next_attempt_at=None)
            ).rowcount  # type: ignore[attr-defined]
            if changed:
                queued.append(run_id)
    return queued


def _fail_needs_reauth(session: Session, now: datetime) -> None:
    """Waiting runs of an account that must be linked again can never resume: fail them."""
    rows = session.execute(
        select(Run.id, Account.name, Account.status_reason)
        .join(Account, Account.id == Run.account_id)
        .where(Run.status == WAITING, Account.status == NEEDS_REAUTH)
    ).all()
    for run_id, name, reason in rows:
        error = {
            "code": "needs_reauth",
            "message": f'the account "{name}" must be linked again: {reason or "needs_reauth"}',
        }
        changed = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == WAITING)
            .values(status=FAILED, finished_at=now, next_attempt_at=None, error=error)
        ).rowcount  # type: ignore[attr-defined]
        if changed:
            session.execute(
                update(Attempt)
                .where(Attempt.run_id == run_id, Attempt.finished_at.is_(None))
                .values(status=FAILED, finished_at=now, error=error)
            )
            log.info("run=%s status=failed code=needs_reauth account=%s", run_id, name)


# How long the answer of /limits is trusted for one account and purpose, so ticks with many
# waiting runs do not ask Salesforce again each time (per process; at most half of
# quota_recheck, after which a run that found no room looks again).
ROOM_CACHE_SECONDS = 30.0
_room_cache: dict[tuple[int, str], tuple[float, bool]] = {}


def _has_room(
    runtime: Runtime,
    account_id: int,
    purpose: str,
    check_room: Callable[..., bool] | None,
    timings: RunTimings,
) -> bool:
    cached = check_room is None  # an injected check (tests) is always asked
    if check_room is None:
        from shared.salesforce import limits

        check_room = limits.check_room
        hit = _room_cache.get((account_id, purpose))
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    try:
        answer = bool(check_room(runtime, account_id, purpose=purpose))
    except Exception:  # noqa: BLE001 - can't tell: look again later rather than burn a try
        log.warning("account=%s check_room failed", account_id, exc_info=True)
        return False
    if cached:
        # Never trusted longer than half a recheck: a waiting run looks again after that.
        ttl = min(ROOM_CACHE_SECONDS, timings.quota_recheck / 2)
        _room_cache[(account_id, purpose)] = (time.monotonic() + ttl, answer)
    return answer


# Re-sends of a run nobody took back off: each waits as long as the run had waited when it
# was last sent, from `queued_after` up to this many times it.
RESEND_BACKOFF_LIMIT = 5


def _resend_due(queued_at: Any, sent_at: Any, now: datetime, queued_after: float) -> bool:
    if queued_at is None:
        return True
    last = sent_at or queued_at
    waited_before = (last - queued_at).total_seconds()
    interval = min(max(queued_after, waited_before), queued_after * RESEND_BACKOFF_LIMIT)
    return (now - last).total_seconds() >= interval


def reconcile(
    runtime: Runtime, *, timings: RunTimings | None = None, limit: int = 1000
) -> list[int]:
    """Find runs a lost message or a dead worker left behind; return the ids to send again.

    `queued_at` stays the time the run was (first) queued, so the page and /metrics show how
    long it has really waited; `sent_at` is when its message was last sent again. A run left
    queued is re-sent after `queued_after`, then with back-off (see RESEND_BACKOFF_LIMIT), so a
    long backlog that workers are simply busy with is not duplicated every tick.
    """
    timings = timings or run_timings()
    now = utcnow()
    queued_before = now - timedelta(seconds=timings.queued_after)
    with runtime.Session.begin() as session:
        stale_before = clock.before(session, timings.heartbeat_stale)
        candidates = session.execute(
            select(Run.id, Run.queued_at, Run.sent_at)
            .where(
                Run.status == QUEUED,
                or_(
                    Run.queued_at.is_(None),
                    func.coalesce(Run.sent_at, Run.queued_at) < queued_before,
                ),
            )
            .order_by(Run.id)
            .limit(limit)
        ).all()
        lost = [
            row.id
            for row in candidates
            if _resend_due(row.queued_at, row.sent_at, now, timings.queued_after)
        ]
        if lost:
            session.execute(
                update(Run).where(Run.id.in_(lost), Run.status == QUEUED).values(sent_at=now)
            )
        dead = list(
            session.scalars(
                select(Run.id)
                .where(
                    Run.status == RUNNING,
                    or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < stale_before),
                )
                .order_by(Run.id)
                .limit(limit)
            )
        )
        requeued: list[int] = []
        for run_id in dead:
            # The open attempt stays open: the next worker continues it.
            changed = session.execute(
                update(Run)
                .where(
                    Run.id == run_id,
                    Run.status == RUNNING,
                    or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < stale_before),
                )
                .values(
                    status=QUEUED,
                    queued_at=now,
                    sent_at=None,
                    worker=None,
                    resumptions=Run.resumptions + 1,
                )
            ).rowcount  # type: ignore[attr-defined]
            if changed:
                requeued.append(run_id)
    if lost or requeued:
        log.info("reconcile lost_queued=%s dead_workers=%s", len(lost), len(requeued))
    return lost + requeued


BROKER_MARKER = "forcebot:broker-marker"


def broker_was_emptied(redis_client: Any) -> bool:
    """True when the broker lost its data (flushed, or restarted empty) since the last look.

    The marker key lives in the broker's own database with no expiry: if it is gone, so are
    the messages that were waiting beside it. The first look after an install is also True
    (re-sending then is harmless: a message is only a hint).
    """
    return bool(redis_client.set(BROKER_MARKER, utcnow().isoformat(), nx=True))


def queued_runs(runtime: Runtime, *, limit: int = 10_000) -> list[int]:
    """Every queued run (to send again at once after the broker lost its messages)."""
    now = utcnow()
    with runtime.Session.begin() as session:
        ids = list(
            session.scalars(
                select(Run.id).where(Run.status == QUEUED).order_by(Run.id).limit(limit)
            )
        )
        if ids:
            session.execute(
                update(Run).where(Run.id.in_(ids), Run.status == QUEUED).values(sent_at=now)
            )
    if ids:
        log.warning("broker lost its messages; sending %s queued runs again", len(ids))
    return ids


def prune_old_runs(
    runtime: Runtime,
    retention_days: int,
    *,
    batch: int = 1000,
    budget_seconds: float = 60.0,
) -> int:
    """Prune in batches, each its own short transaction, until done or the time budget is spent.

    Deletes at least one batch per call; what is left waits for the next tick.
    """
    deleted = 0
    started = time.monotonic()
    while True:
        with runtime.Session.begin() as session:
            count = prune_runs(session, retention_days, limit=batch)
        deleted += count
        if count < batch or time.monotonic() - started >= budget_seconds:
            return deleted


def prune_runs(session: Session, retention_days: int, *, limit: int = 1000) -> int:
    """Delete one batch of finished runs older than the retention, with their rows.

    Uses the (status, finished_at) index; `prune_old_runs` repeats it within a time budget.
    """
    cutoff = utcnow() - timedelta(days=retention_days)
    ids = list(
        session.scalars(
            select(Run.id)
            .where(Run.status.in_(FINISHED), Run.finished_at < cutoff)
            .order_by(Run.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    session.execute(
        update(Run)
        .where(Run.replay_of_id.in_(ids))
        .values(replay_of_id=None)
        .execution_options(synchronize_session=False)
    )
    for model in (HttpExchange, RunStep, Attempt):
        session.execute(
            delete(model)
            .where(model.run_id.in_(ids))  # type: ignore[attr-defined]
            .execution_options(synchronize_session=False)
        )
    session.execute(delete(Run).where(Run.id.in_(ids)).execution_options(synchronize_session=False))
    return len(ids)
