"""The dispatcher on real databases with an injected clock: slots, skips, catch-up, DST."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from shared.behaviors.store import save_behavior
from shared.models import Behavior, Run, Schedule
from shared.models.runs import RUNNING, SUCCEEDED
from shared.schedules import dispatch_schedules, save_schedule, schedule_to_dict
from tests.e2e.runs_support import NOOP_BEHAVIOR

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def rt(runtime: Any) -> Any:
    with runtime.Session.begin() as session:
        save_behavior(session, NOOP_BEHAVIOR)
    return runtime


def make(rt: Any, now: datetime = START, **fields: Any) -> int:
    data = {"name": "s", "behavior": "noop", "payload": {"n": 1}, **fields}
    with rt.Session.begin() as session:
        return save_schedule(session, data, now=now).id


def tick(rt: Any, now: datetime) -> Any:
    return dispatch_schedules(rt.Session, now=now)


def schedule_runs(rt: Any, schedule_id: int) -> list[Run]:
    with rt.Session() as session:
        return list(
            session.scalars(select(Run).where(Run.schedule_id == schedule_id).order_by(Run.id))
        )


def finish_all(rt: Any) -> None:
    with rt.Session.begin() as session:
        session.execute(update(Run).values(status=SUCCEEDED))


def get(rt: Any, schedule_id: int) -> dict[str, Any]:
    with rt.Session() as session:
        schedule = session.get(Schedule, schedule_id)
        last = session.get(Run, schedule.last_run_id) if schedule.last_run_id else None
        return schedule_to_dict(schedule, last)


def test_each_slot_fires_once_with_its_key_and_slot(rt):
    sid = make(rt, every_seconds=5)
    assert tick(rt, START + timedelta(seconds=4)).run_ids == []
    report = tick(rt, START + timedelta(seconds=5, milliseconds=300))
    assert report.fired == 1
    again = tick(rt, START + timedelta(seconds=6))  # a second beat in the same slot
    assert again.run_ids == [] and again.fired == 0
    (run,) = schedule_runs(rt, sid)
    assert run.trigger == "schedule"
    assert run.slot == START + timedelta(seconds=5)
    assert run.idempotency_key == f"schedule:{sid}:2026-03-01T12:00:05+00:00"
    assert get(rt, sid)["last_run"]["id"] == run.id


def test_slot_during_an_active_run_is_skipped_and_counted(rt):
    sid = make(rt, every_seconds=5)
    tick(rt, START + timedelta(seconds=5))
    with rt.Session.begin() as session:
        session.execute(update(Run).values(status=RUNNING))
    for second in (10, 15):
        report = tick(rt, START + timedelta(seconds=second))
        assert report.skipped == 1 and report.run_ids == []
    data = get(rt, sid)
    assert data["skipped_slots"] == 2
    assert data["last_skipped_at"] == "2026-03-01T12:00:15+00:00"
    assert len(schedule_runs(rt, sid)) == 1
    finish_all(rt)
    assert tick(rt, START + timedelta(seconds=20)).fired == 1
    assert get(rt, sid)["skipped_slots"] == 2


def test_after_downtime_one_catch_up_run_for_the_latest_missed_slot(rt):
    sid = make(rt, every_seconds=5)
    # Nothing ticks for five slots (12:00:05 .. 12:00:25), then a tick at 12:00:27.
    report = tick(rt, START + timedelta(seconds=27))
    assert report.fired == 1
    (run,) = schedule_runs(rt, sid)
    assert run.slot == START + timedelta(seconds=25)
    finish_all(rt)
    # Then the rhythm resumes: the next slot is 12:00:30, not one of the missed ones.
    assert get(rt, sid)["next_run_at"] == "2026-03-01T12:00:30+00:00"
    assert tick(rt, START + timedelta(seconds=29)).fired == 0
    assert tick(rt, START + timedelta(seconds=30)).fired == 1


WINTER, SUMMER = "09:00:00+01:00", "09:00:00+02:00"


@pytest.mark.parametrize(
    ("cron", "begin", "days", "expect_local"),
    [
        ("0 9 * * *", datetime(2026, 3, 27, 0, tzinfo=UTC), 5, [WINTER] * 2 + [SUMMER] * 3),
        ("0 9 * * *", datetime(2026, 10, 23, 0, tzinfo=UTC), 5, [SUMMER] * 2 + [WINTER] * 3),
        ("30 2 * * *", datetime(2026, 3, 28, 6, tzinfo=UTC), 1, ["03:00:00+02:00"]),
        ("30 2 * * *", datetime(2026, 10, 24, 6, tzinfo=UTC), 1, ["02:30:00+02:00"]),
    ],
)
def test_paris_dst_one_run_per_day_by_a_ticking_clock(rt, cron, begin, days, expect_local):
    sid = make(rt, now=begin, cron=cron, timezone="Europe/Paris")
    clock = begin
    # Tick every 10 minutes over the days (no sleeping: the clock is injected).
    while clock < begin + timedelta(days=days):
        clock += timedelta(minutes=10)
        tick(rt, clock)
        finish_all(rt)
    runs = schedule_runs(rt, sid)
    local = [r.slot.astimezone(ZoneInfo("Europe/Paris")) for r in runs]
    assert [d.isoformat()[11:] for d in local] == expect_local
    assert len({d.date() for d in local}) == len(local)  # one a day


def test_edits_take_effect_at_the_next_tick(rt):
    sid = make(rt, every_seconds=60)
    with rt.Session.begin() as session:
        save_schedule(session, {"every_seconds": 5}, session.get(Schedule, sid), now=START)
    assert tick(rt, START + timedelta(seconds=5)).fired == 1
    finish_all(rt)
    with rt.Session.begin() as session:
        save_schedule(session, {"enabled": False}, session.get(Schedule, sid), now=START)
    assert tick(rt, START + timedelta(seconds=10)).fired == 0
    with rt.Session.begin() as session:
        save_schedule(
            session,
            {"enabled": True},
            session.get(Schedule, sid),
            now=START + timedelta(seconds=11),
        )
    # Re-enabled: no catch-up of the slot missed while disabled; the next one fires.
    assert tick(rt, START + timedelta(seconds=12)).fired == 0
    assert tick(rt, START + timedelta(seconds=15)).fired == 1


def test_a_deleted_behavior_is_an_error_that_never_disables(rt):
    sid = make(rt, every_seconds=5)
    with rt.Session.begin() as session:
        session.delete(session.scalars(select(Behavior)).one())
    report = tick(rt, START + timedelta(seconds=5))
    assert report.errors == 1 and report.run_ids == []
    data = get(rt, sid)
    assert 'no behavior named "noop"' in data["last_error"]
    assert data["enabled"] is True and data["next_run_at"] == "2026-03-01T12:00:10+00:00"
    with rt.Session.begin() as session:  # a broken schedule can still be switched off
        save_schedule(session, {"enabled": False}, session.get(Schedule, sid), now=START)
        save_behavior(session, NOOP_BEHAVIOR)
        save_schedule(session, {"enabled": True}, session.get(Schedule, sid), now=START)
    assert tick(rt, START + timedelta(seconds=10)).fired == 1
    assert get(rt, sid)["last_error"] is None


def test_thousands_due_in_one_tick_in_batches(rt):
    with rt.Session.begin() as session:
        session.add_all(
            Schedule(
                name=f"bulk-{i}",
                behavior_name="noop",
                every_seconds=60,
                payload={"n": i},
                timezone="UTC",
                enabled=True,
                skipped_slots=0,
                next_run_at=START,
            )
            for i in range(1200)
        )
    report = dispatch_schedules(rt.Session, now=START, batch_size=500)
    assert report.fired == 1200 and report.batches == 3
    with rt.Session() as session:
        keys = session.scalars(select(Run.idempotency_key)).all()
        assert len(keys) == len(set(keys)) == 1200
    assert dispatch_schedules(rt.Session, now=START + timedelta(seconds=1)).fired == 0


def test_racing_dispatchers_fire_each_slot_once(rt):
    with rt.Session.begin() as session:
        session.add_all(
            Schedule(
                name=f"race-{i}",
                behavior_name="noop",
                every_seconds=5,
                payload={"n": i},
                timezone="UTC",
                enabled=True,
                skipped_slots=0,
                next_run_at=START,
            )
            for i in range(300)
        )
    reports: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(dispatch_schedules(rt.Session, now=START, batch_size=50))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(r.fired for r in reports) == 300
    with rt.Session() as session:
        slots = session.execute(select(Run.schedule_id, Run.slot)).all()
    assert len(slots) == len(set(slots)) == 300


def test_a_failed_run_shows_on_the_schedule_which_keeps_firing(rt):
    sid = make(rt, every_seconds=5)
    tick(rt, START + timedelta(seconds=5))
    with rt.Session.begin() as session:
        session.execute(
            update(Run).values(
                status="failed",
                error={"code": "invalid_grant", "message": "expired access/refresh token"},
            )
        )
    data = get(rt, sid)
    assert data["last_error"] == "last run failed: expired access/refresh token"
    assert data["enabled"] is True
    assert tick(rt, START + timedelta(seconds=10)).fired == 1
    assert get(rt, sid)["last_run"]["status"] == "queued"
