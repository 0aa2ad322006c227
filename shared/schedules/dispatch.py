"""Fire due schedules: the beat tick's work, safe under any number of beats and workers.

One tick claims due schedules in batches (oldest `next_run_at` first) and commits each batch
on its own, so the first runs are visible while later batches are still being claimed. Each
batch is one transaction of a fixed number of statements, whatever its size:

1. one SELECT of up to `batch_size` enabled schedules with `next_run_at <= now`, each with
   whether it has an active run (queued/running/retrying/waiting) — on PostgreSQL
   `FOR UPDATE OF schedules SKIP LOCKED`, so concurrent dispatchers take disjoint batches; on
   SQLite every transaction is `BEGIN IMMEDIATE` (shared.db), so batches are serialized;
2. in Python, each schedule's slot: the latest slot at or before `now` (after downtime that is
   the latest missed slot, fired once; the ones before it are dropped, not counted), computed
   once per distinct timing; a schedule with an active run skips the slot, counted in
   `skipped_slots` / `last_skipped_at`; a missing behavior or a payload the behavior no longer
   accepts is recorded in `last_error` (the schedule stays enabled). Behaviors and accounts
   are loaded once per batch per name;
3. one INSERT ... SELECT of the batch's runs ... ON CONFLICT DO NOTHING RETURNING, with
   `trigger="schedule"`, `schedule_id`, `slot` and idempotency key
   `schedule:<id>:<slot UTC ISO>` — the (behavior_name, idempotency_key) unique constraint
   makes a second run for one slot impossible even if two claims raced;
4. one UPDATE ... FROM that moves every claimed schedule to its next slot, a compare-and-swap
   (`WHERE id = v.id AND next_run_at = v.claimed`); if any row did not match, the whole batch
   rolls back and nothing is fired from it (with the row locks above this does not happen;
   the check makes the guarantee independent of them).

Statements 3 and 4 carry the batch as a single JSON parameter, read back as rows
(`json_to_recordset` on PostgreSQL, `json_each` on SQLite): neither the driver nor the server
parses thousands of placeholders.

A slot is therefore either fired once or skipped once. The caller sends the returned run
ids to the worker after the commit (worker.tasks.schedules); a lost message is resent by
the runs reconciler like any queued run.

Runs are inserted here rather than through `shared.runs.create_run` one at a time because
that costs several queries per run (key lookup, behavior load, account, savepoint), and one
tick must handle thousands of schedules; the rows are the same, validated by the same
`validate_payload` against the same `load_behavior`, so they are ordinary runs from then on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Dialect, bindparam, exists, select, text
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
    busy = (
        exists()
        .where(Run.schedule_id == Schedule.id, Run.status.in_(ACTIVE))
        .correlate(Schedule)
        .label("busy")
    )
    query = (
        select(
            Schedule.id,
            Schedule.behavior_name,
            Schedule.cron,
            Schedule.every_seconds,
            Schedule.timezone,
            Schedule.payload,
            Schedule.next_run_at,
            busy,
        )
        .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
        .order_by(Schedule.next_run_at, Schedule.id)
        .limit(batch_size)
    )
    dialect = session.get_bind().dialect
    postgres = dialect.name == "postgresql"
    if postgres:
        query = query.with_for_update(skip_locked=True, of=Schedule)
    rows = session.execute(query).all()
    if not rows:
        return 0
    stamp = stamper(dialect)
    behaviors: dict[str, LoadedBehavior | None] = {}
    # Schedules that share a timing share its slots: compute them once per batch.
    timings: dict[tuple[str | None, int | None, str], tuple[datetime, datetime] | str] = {}
    accounts: dict[str, int | None] = {}
    new_runs: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for row in rows:
        change: dict[str, Any] = {
            "id": row.id,
            "claimed": stamp(row.next_run_at),
            "skip": 0,
            "skipped_at": None,
            "error": None,
            "fired": False,
        }
        changes.append(change)
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
            change["next"] = stamp(now + BROKEN_RETRY)
            change["error"] = timing
            report.errors += 1
            continue
        slot = max(timing[0], row.next_run_at)
        change["next"] = stamp(timing[1])
        if row.busy:
            change["skip"] = 1
            change["skipped_at"] = stamp(slot)
            report.skipped += 1
            continue
        if row.behavior_name not in behaviors:
            behaviors[row.behavior_name] = load_behavior(session, row.behavior_name)
        behavior = behaviors[row.behavior_name]
        if behavior is None:
            change["error"] = f'slot {slot.isoformat()}: no behavior named "{row.behavior_name}"'
            report.errors += 1
            continue
        _, problems = validate_payload(behavior, row.payload)
        if problems:
            change["error"] = f"slot {slot.isoformat()}: payload rejected: " + "; ".join(problems)
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
                "payload": row.payload or {},
                "idempotency_key": slot_key(row.id, slot),
                "max_attempts": behavior.max_attempts or default_max_attempts,
                "account_id": accounts.get(behavior.account) if behavior.account else None,
                "schedule_id": row.id,
                "slot": stamp(slot),
            }
        )
        change["fired"] = True

    created: dict[int, int] = {}
    if new_runs:
        insert = _INSERT_PG if postgres else _INSERT_SQLITE
        result = session.execute(insert, {"rows": json.dumps(new_runs), "now": now, "no": False})
        created = {schedule_id: run_id for run_id, schedule_id in result}
    for change in changes:
        # A run already there for this slot (fired by an earlier claim of it): not fired now.
        run_id = created.get(change["id"]) if change.pop("fired") else None
        change["run"] = run_id
        change["run_at"] = stamp(now) if run_id is not None else None
        if run_id is not None:
            report.fired += 1
    advance = _ADVANCE_PG if postgres else _ADVANCE_SQLITE
    matched = session.connection().execute(advance, {"rows": json.dumps(changes)}).rowcount
    if matched != len(changes):
        # Someone moved a claimed schedule under us: fire nothing from this batch.
        raise ConcurrentClaim(f"compare-and-swap matched {matched} of {len(changes)} schedules")
    report.run_ids.extend(created.values())
    return len(rows)


def stamper(dialect: Dialect) -> Callable[[datetime], str]:
    """A memoizing formatter of aware times as JSON row sets carry them: the column's own
    storage text on SQLite (so a compare-and-swap matches the stored value exactly and
    SQLAlchemy reads it back), ISO 8601 with the offset on PostgreSQL."""
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    cache: dict[datetime, str] = {}

    def stamp(value: datetime) -> str:
        text = cache.get(value)
        if text is None:
            out = process(value) if process is not None else value
            text = cache[value] = out if isinstance(out, str) else out.isoformat()
        return text

    return stamp


# One statement per batch each way. The batch travels as one JSON parameter (a single bind,
# so neither the driver nor the server parses thousands of placeholders) and is read back as a
# row set: json_to_recordset on PostgreSQL, json_each on SQLite. Column names are the
# models' (shared.models.runs.Run, shared.models.schedules.Schedule).
_RUN_COLUMNS = (
    'behavior_name, behavior_version, status, "trigger", payload, idempotency_key, '
    "max_attempts, account_id, schedule_id, slot, created_at, queued_at, attempts, retries, "
    "cancel_requested"
)
_INSERT_PG = text(
    f"INSERT INTO runs ({_RUN_COLUMNS}) "
    f"SELECT v.behavior_name, v.behavior_version, '{QUEUED}', 'schedule', v.payload, "
    "v.idempotency_key, v.max_attempts, v.account_id, v.schedule_id, v.slot, :now, :now, 0, 0, "
    ":no FROM json_to_recordset(CAST(:rows AS json)) AS v(behavior_name text, "
    "behavior_version int, payload json, idempotency_key text, max_attempts int, "
    "account_id int, schedule_id int, slot timestamptz) "
    "ON CONFLICT (behavior_name, idempotency_key) DO NOTHING RETURNING id, schedule_id"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("no", type_=Boolean()))
_INSERT_SQLITE = text(
    f"INSERT INTO runs ({_RUN_COLUMNS}) "
    "SELECT json_extract(value, '$.behavior_name'), json_extract(value, '$.behavior_version'), "
    f"'{QUEUED}', 'schedule', json_extract(value, '$.payload'), "
    "json_extract(value, '$.idempotency_key'), json_extract(value, '$.max_attempts'), "
    "json_extract(value, '$.account_id'), json_extract(value, '$.schedule_id'), "
    "json_extract(value, '$.slot'), :now, :now, 0, 0, :no FROM json_each(:rows) "
    "WHERE true "  # SQLite's upsert after INSERT ... SELECT needs a WHERE (parser ambiguity)
    "ON CONFLICT (behavior_name, idempotency_key) DO NOTHING RETURNING id, schedule_id"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("no", type_=Boolean()))
# The compare-and-swap: a row only moves if its next_run_at is still the claimed one.
_ADVANCE_SET = (
    "next_run_at = v.next, skipped_slots = schedules.skipped_slots + v.skip, "
    "last_skipped_at = COALESCE(v.skipped_at, schedules.last_skipped_at), "
    "last_error = v.error, last_run_id = COALESCE(v.run, schedules.last_run_id), "
    "last_run_at = COALESCE(v.run_at, schedules.last_run_at)"
)
_ADVANCE_WHERE = "WHERE schedules.id = v.id AND schedules.next_run_at = v.claimed"
_ADVANCE_PG = text(
    f"UPDATE schedules SET {_ADVANCE_SET} FROM json_to_recordset(CAST(:rows AS json)) AS "
    "v(id int, claimed timestamptz, next timestamptz, skip int, skipped_at timestamptz, "
    f"error text, run int, run_at timestamptz) {_ADVANCE_WHERE}"
)
_ADVANCE_SQLITE = text(
    f"UPDATE schedules SET {_ADVANCE_SET} FROM (SELECT "
    + ", ".join(
        f"json_extract(value, '$.{name}') AS {name}"
        for name in ("id", "claimed", "next", "skip", "skipped_at", "error", "run", "run_at")
    )
    + f" FROM json_each(:rows)) AS v {_ADVANCE_WHERE}"
)


class ConcurrentClaim(RuntimeError):
    """A claimed schedule changed during the batch; the batch was rolled back."""
