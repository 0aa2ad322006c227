"""Schedules on real parts: `forcebot beat` and `forcebot worker` processes, Redis, the
database (SQLite and PostgreSQL) and, for a slow run, the simulator over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from shared.models import Run, Schedule, utcnow
from shared.schedules import save_schedule
from tests.conftest import poll, settings_env

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    LIMITS_BEHAVIOR,
    NOOP_BEHAVIOR,
    BeatProcess,
    beat_fixture,
    fast_worker_fixture,
    no_default_worker_fixture,
    save,
)


def create(runtime: Any, **fields: Any) -> int:
    with runtime.Session.begin() as session:
        return save_schedule(session, {"name": "tick", **fields}).id


def edit(runtime: Any, schedule_id: int, **fields: Any) -> None:
    with runtime.Session.begin() as session:
        save_schedule(session, fields, session.get(Schedule, schedule_id))


def runs_of(runtime: Any, schedule_id: int) -> list[Run]:
    with runtime.Session() as session:
        return list(
            session.scalars(select(Run).where(Run.schedule_id == schedule_id).order_by(Run.slot))
        )


def schedule_row(runtime: Any, schedule_id: int) -> Schedule:
    with runtime.Session() as session:
        row = session.get(Schedule, schedule_id)
        assert row is not None
        return row


def wait_until(moment: datetime) -> None:
    """Let wall-clock time pass up to `moment` (slots are wall-clock times)."""
    poll(lambda: utcnow() >= moment, (moment - utcnow()).total_seconds() + 5, 0.1, "the clock")


def slots_between(first: datetime, last: datetime, every: int) -> int:
    return int((last - first).total_seconds()) // every + 1


def test_two_beats_fire_every_slot_exactly_once(runtime, settings, fast_worker):
    save(runtime, NOOP_BEHAVIOR)
    fast_worker(concurrency=2)
    env = {**settings_env(settings), **FAST_ENV}
    beats = [BeatProcess(env), BeatProcess(env)]
    try:
        sid = create(runtime, behavior="noop", every_seconds=5, payload={"n": 1})
        created_first = schedule_row(runtime, sid).next_run_at
        assert created_first is not None
        # Twelve slots, one minute: long enough for the two beats' ticks to interleave often.
        last_slot = created_first + timedelta(seconds=55)
        wait_until(last_slot + timedelta(seconds=1))
        poll(
            lambda: any(r.slot == last_slot for r in runs_of(runtime, sid)),
            60,
            0.2,
            "the last slot's run",
        )
        assert all(b.alive for b in beats), [b.log_tail() for b in beats]
    finally:
        for b in beats:
            b.stop()
    runs = runs_of(runtime, sid)
    slots = [r.slot for r in runs]
    assert len(slots) == len(set(slots)), "two runs share a slot"
    assert all(r.trigger == "schedule" for r in runs)
    expected = slots_between(created_first, last_slot, 5)
    in_range = [s for s in slots if s is not None and created_first <= s <= last_slot]
    skipped = schedule_row(runtime, sid).skipped_slots
    # Every slot fired once or (when the loaded machine had not finished the last run) was
    # skipped once; at most one is missed, at the very start.
    assert len(in_range) + skipped >= expected - 1, (slots, skipped)
    assert len(in_range) + skipped <= expected
    assert len(in_range) >= expected - 3, (slots, skipped)


def test_a_slot_during_an_active_run_is_skipped_and_counted(
    runtime, sim, linked_account, fast_worker, beat
):
    linked_account()
    save(runtime, LIMITS_BEHAVIOR)
    sim.control.add_fault("/services/data/v62.0/limits", count=1, status=None, delay_seconds=9)
    fast_worker(concurrency=2)
    sid = create(runtime, behavior="record-limits", every_seconds=2)
    poll(lambda: len(runs_of(runtime, sid)) >= 2, 90, 0.2, "a second run after the slow one")
    poll(
        lambda: all(r.status == "succeeded" for r in runs_of(runtime, sid)[:2]),
        60,
        0.2,
        "the runs to finish",
    )
    first, second = runs_of(runtime, sid)[:2]
    assert first.finished_at is not None and second.created_at >= first.finished_at
    assert (first.finished_at - first.created_at).total_seconds() >= 8
    row = schedule_row(runtime, sid)
    # The 9-second run spanned at least three 2-second slots; each was skipped, not queued.
    assert row.skipped_slots >= 3
    assert row.last_skipped_at is not None and first.slot < row.last_skipped_at < second.slot
    assert slots_between(first.slot, second.slot, 2) == 2 + row.skipped_slots


def test_beat_stopped_across_five_slots_catches_up_once(runtime, settings, fast_worker):
    save(runtime, NOOP_BEHAVIOR)
    fast_worker(concurrency=2)
    env = {**settings_env(settings), **FAST_ENV}
    beat = BeatProcess(env)
    try:
        sid = create(runtime, behavior="noop", every_seconds=2, payload={"n": 2})
        poll(lambda: runs_of(runtime, sid), 60, 0.2, "the first scheduled run")
    finally:
        beat.stop()
    before = runs_of(runtime, sid)
    stopped_after = max(r.slot for r in before)
    # Five more slots pass with no beat (plus one for a tick that was already in flight).
    wait_until(stopped_after + timedelta(seconds=2 * 6 + 1))
    settled = runs_of(runtime, sid)
    last_before = max(r.slot for r in settled)
    assert last_before <= stopped_after + timedelta(seconds=2)  # nothing ticks without beat
    restart = utcnow()
    beat = BeatProcess(env)
    try:
        poll(lambda: len(runs_of(runtime, sid)) > len(settled), 60, 0.2, "the catch-up run")
        catch_up = runs_of(runtime, sid)[len(settled)]
        poll(
            lambda: any(r.slot > catch_up.slot for r in runs_of(runtime, sid)),
            60,
            0.2,
            "the rhythm to resume",
        )
    finally:
        beat.stop()
    # The first tick after the restart fired one run, for the latest slot it had missed
    # (beat takes a moment to start, so that slot may be a little after `restart`).
    after = [r for r in runs_of(runtime, sid) if r.slot > last_before]
    fired_at = after[0].created_at
    assert [r for r in after if r.slot <= fired_at] == [after[0]], [r.slot for r in after]
    assert fired_at - timedelta(seconds=2) < after[0].slot <= fired_at
    assert after[0].slot - last_before >= timedelta(seconds=2 * 5)  # five slots went by
    assert fired_at >= restart
    assert schedule_row(runtime, sid).skipped_slots == 0  # dropped slots are not "skipped"


def test_edits_take_effect_at_the_next_tick(runtime, fast_worker, beat):
    save(runtime, NOOP_BEHAVIOR)
    fast_worker(concurrency=2)
    sid = create(runtime, behavior="noop", every_seconds=3600, payload={"n": 3})
    edit(runtime, sid, every_seconds=2)
    poll(lambda: len(runs_of(runtime, sid)) >= 2, 60, 0.2, "runs at the new interval")
    edit(runtime, sid, enabled=False)
    count = len(runs_of(runtime, sid))
    disabled_at = utcnow()
    wait_until(disabled_at + timedelta(seconds=6))  # three slots and a dozen ticks
    assert len(runs_of(runtime, sid)) == count
    edit(runtime, sid, enabled=True)
    poll(lambda: len(runs_of(runtime, sid)) > count, 60, 0.2, "runs after enabling again")
    assert all(
        r.slot < disabled_at or r.slot > disabled_at + timedelta(seconds=6)
        for r in runs_of(runtime, sid)
    )
