"""Fire due schedules: the beat tick's work, safe under any number of beats and workers.

One tick claims due schedules in batches (oldest `next_run_at` first). Each batch is one
transaction that

1. selects up to `batch_size` enabled schedules with `next_run_at <= now` — on PostgreSQL
   `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers take disjoint batches; on SQLite every
   transaction is `BEGIN IMMEDIATE` (shared.db), so batches are serialized;
2. decides each schedule's slot: the latest slot at or before `now` (after downtime that is
   the latest missed slot, fired once; the ones before it are dropped, not counted);
3. skips the slot when the schedule has an active run (queued/running/retrying/waiting),
   counting it in `skipped_slots` / `last_skipped_at`; records a missing behavior or a
   payload the behavior no longer accepts in `last_error` (the schedule stays enabled);
4. inserts the runs with one executemany INSERT ... ON CONFLICT DO NOTHING RETURNING with
   `trigger="schedule"`, `schedule_id`, `slot` and idempotency key
   `schedule:<id>:<slot UTC ISO>` — the (behavior_name, idempotency_key) unique constraint
   makes a second run for one slot impossible even if two claims raced;
5. moves every claimed schedule to its next slot with one executemany compare-and-swap
   (`WHERE id = :id AND next_run_at = :claimed`); if any row did not match, the whole batch
   rolls back and nothing is fired from it (with the row locks above this does not happen;
   the check makes the guarantee independent of them).

A slot is therefore either fired once or skipped once. The caller sends the returned run
ids to the worker after the commit (worker.tasks.schedules); a lost message is resent by
the runs reconciler like any queued run.

Runs are inserted here rather than through `shared.runs.create_run` one at a time because
that costs several queries per run (key lookup, behavior load, account, savepoint), and one
tick must handle thousands of schedules; the rows are the same, validated by the same
`validate_payload` against the same `load_behavior`, so they are ordinary runs from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from shared.behaviors.store import LoadedBehavior, load_behavior, validate_payload
from shared.models import Account, Run, Schedule, utcnow
from shared.models.base import UTCDateTime
from shared.models.runs import ACTIVE, QUEUED

from .timing import EPOCH, Rule, TimingError

log = logging.getLogger("forcebot.schedules")

BATCH_SIZE = 500
# A stored rule that cannot produce a slot (only possible if tzdata lost a zone) is looked
# at again after this long instead of on every tick.
BROKEN_RETRY = timedelta(hours=1)


def slot_key(schedule_id: int, slot: datetime) -> str:
    """The run idempotency key of one slot: `schedule:<id>:<slot UTC ISO>`."""
    return f"schedule:{schedule_id}:{slot.isoformat()}"


@dataclass
class TickReport:
    """What one tick did; `run_ids` are to be sent to the worker after the commit."""

    run_ids: list[int] = field(default_factory=list)
    fired: int = 0
    skipped: int = 0
    errors: int = 0
    batches: int = 0


def dispatch_schedules(
    factory: sessionmaker[Session],
    *,
    now: datetime | Callable[[], datetime] | None = None,
    batch_size: int = BATCH_SIZE,
    max_batches: int = 40,
    default_max_attempts: int = 5,
) -> TickReport:
    """Fire or skip every due schedule; `now` (a time or a clock) is injectable for tests."""
    clock: Callable[[], datetime]
    if now is None:
        clock = utcnow
    elif callable(now):
        clock = now
    else:
        fixed = now
        clock = lambda: fixed  # noqa: E731
    report = TickReport()
    for _ in range(max_batches):
        with factory.begin() as session:
            claimed = _dispatch_batch(session, clock(), batch_size, default_max_attempts, report)
        report.batches += 1
        if claimed < batch_size:
            break
    if report.fired or report.skipped or report.errors:
        log.info(
            "schedules fired=%s skipped=%s errors=%s batches=%s",
            report.fired,
            report.skipped,
            report.errors,
            report.batches,
        )
    return report


def _dispatch_batch(
    session: Session, now: datetime, batch_size: int, default_max_attempts: int, report: TickReport
) -> int:
    query = (
        select(
            Schedule.id,
            Schedule.behavior_name,
            Schedule.cron,
            Schedule.every_seconds,
            Schedule.timezone,
            Schedule.payload,
            Schedule.next_run_at,
        )
        .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
        .order_by(Schedule.next_run_at, Schedule.id)
        .limit(batch_size)
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update(skip_locked=True, of=Schedule)
    rows = session.execute(query).all()
    if not rows:
        return 0
    ids = [row.id for row in rows]
    busy = set(
        session.scalars(
            select(Run.schedule_id).where(Run.schedule_id.in_(ids), Run.status.in_(ACTIVE))
        )
    )
    behaviors: dict[str, LoadedBehavior | None] = {}
    # Schedules that share a timing share its slots: compute them once per batch.
    timings: dict[tuple[str | None, int | None, str], tuple[datetime, datetime] | str] = {}
    accounts: dict[str, int | None] = {}
    new_runs: list[dict[str, Any]] = []
    changes: dict[int, dict[str, Any]] = {}
    for row in rows:
        change: dict[str, Any] = {
            "b_id": row.id,
            "b_claimed": row.next_run_at,
            "b_skip": 0,
            "b_skipped_at": None,
            "b_error": None,
            "b_run_at": None,
        }
        changes[row.id] = change
        key = (row.cron, row.every_seconds, row.timezone)
        if key not in timings:
            rule = Rule(*key)
            try:
                # The latest slot at or before now, and the one after it.
                timings[key] = (rule.latest_at_or_before(now, EPOCH), rule.next_after(now))
            except TimingError as exc:
                timings[key] = str(exc)
        timing = timings[key]
        if isinstance(timing, str):
            change["b_next"] = now + BROKEN_RETRY
            change["b_error"] = timing
            report.errors += 1
            continue
        slot = max(timing[0], row.next_run_at)
        change["b_next"] = timing[1]
        if row.id in busy:
            change["b_skip"] = 1
            change["b_skipped_at"] = slot
            report.skipped += 1
            continue
        if row.behavior_name not in behaviors:
            behaviors[row.behavior_name] = load_behavior(session, row.behavior_name)
        behavior = behaviors[row.behavior_name]
        if behavior is None:
            change["b_error"] = f'slot {slot.isoformat()}: no behavior named "{row.behavior_name}"'
            report.errors += 1
            continue
        _, problems = validate_payload(behavior, row.payload)
        if problems:
            change["b_error"] = f"slot {slot.isoformat()}: payload rejected: " + "; ".join(problems)
            report.errors += 1
            continue
        if behavior.account and behavior.account not in accounts:
            accounts[behavior.account] = session.scalar(
                select(Account.id).where(Account.name == behavior.account)
            )
        new_runs.append(
            {
                "behavior_name": row.behavior_name,
                "behavior_version": behavior.version,
                "status": QUEUED,
                "trigger": "schedule",
                "payload": row.payload or {},
                "idempotency_key": slot_key(row.id, slot),
                "max_attempts": behavior.max_attempts or default_max_attempts,
                "account_id": accounts.get(behavior.account) if behavior.account else None,
                "schedule_id": row.id,
                "slot": slot,
                "created_at": now,
                "queued_at": now,
                "attempts": 0,
                "retries": 0,
                "cancel_requested": False,
            }
        )
        change["b_run_at"] = now

    created: dict[int, int] = {}
    if new_runs:
        dialect = postgresql if postgres else sqlite
        # One executemany: SQLAlchemy batches it into multi-row INSERT ... RETURNING
        # statements ("insertmanyvalues") without compiling one huge statement per batch.
        insert = (
            dialect.insert(Run)
            .on_conflict_do_nothing(index_elements=["behavior_name", "idempotency_key"])
            .returning(Run.id, Run.schedule_id)
        )
        created = {schedule_id: run_id for run_id, schedule_id in session.execute(insert, new_runs)}
    table = Schedule.__table__  # Core: an executemany with a WHERE per row
    assert isinstance(table, Table)
    stamp = UTCDateTime()
    cas = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.next_run_at == bindparam("b_claimed"))
        .values(
            next_run_at=bindparam("b_next"),
            skipped_slots=table.c.skipped_slots + bindparam("b_skip"),
            last_skipped_at=func.coalesce(
                bindparam("b_skipped_at", type_=stamp), table.c.last_skipped_at
            ),
            last_error=bindparam("b_error"),
            last_run_id=func.coalesce(bindparam("b_run"), table.c.last_run_id),
            last_run_at=func.coalesce(bindparam("b_run_at", type_=stamp), table.c.last_run_at),
        )
    )
    params = []
    for schedule_id, change in changes.items():
        change["b_run"] = created.get(schedule_id)
        if change["b_run"] is None:
            change["b_run_at"] = None  # fired by an earlier claim of the same slot, or not fired
        elif change["b_error"] is None:
            report.fired += 1
        params.append(change)
    matched = session.connection().execute(cas, params).rowcount
    if matched != len(params):
        # Someone moved a claimed schedule under us: fire nothing from this batch.
        raise ConcurrentClaim(f"compare-and-swap matched {matched} of {len(params)} schedules")
    report.run_ids.extend(created.values())
    return len(rows)


class ConcurrentClaim(RuntimeError):
    """A claimed schedule changed during the batch; the batch was rolled back."""
