"""Schedule definitions: every problem listed, nothing saved; presentation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.behaviors.store import save_behavior
from shared.models import Schedule
from shared.schedules import ScheduleInvalid, describe, save_schedule, schedule_to_dict

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
GREET = """
name: greet
inputs:
  email: {type: string, required: true}
steps:
  - id: s
    action: set
    vars: {x: 1}
"""


@pytest.fixture
def rt(runtime: Any) -> Any:
    with runtime.Session.begin() as session:
        save_behavior(session, GREET)
    return runtime


def problems_of(rt: Any, data: Any, existing_id: int | None = None) -> list[str]:
    with rt.Session.begin() as session:
        existing = session.get(Schedule, existing_id) if existing_id else None
        with pytest.raises(ScheduleInvalid) as caught:
            save_schedule(session, data, existing, now=NOW)
    return caught.value.problems


def count(rt: Any) -> int:
    with rt.Session() as session:
        return session.scalar(select(func.count(Schedule.id)))


def test_every_problem_is_listed_and_nothing_saved(rt):
    problems = problems_of(
        rt,
        {
            "name": "Bad Name",
            "behavior": "missing",
            "cron": "61 * * *",
            "every_seconds": 5,
            "timezone": "Mars/Olympus",
            "enabled": "yes",
            "colour": "blue",
        },
    )
    joined = "\n".join(problems)
    for fragment in (
        "colour: unknown field",
        "name:",
        'timezone: unknown time zone "Mars/Olympus"',
        "every_seconds: give either cron or every_seconds, not both",
        "enabled: expected true or false",
        'behavior: no behavior named "missing"',
    ):
        assert fragment in joined
    assert count(rt) == 0


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"cron": "* * * *"}, "cron: expected 5 fields"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({}, "cron: give either cron or every_seconds"),
        ({"every_seconds": 0}, "every_seconds: expected 1 to"),
        ({"every_seconds": True}, "every_seconds: expected a positive whole number"),
        ({"every_seconds": 5, "payload": {}}, "payload.email: required"),
        ({"every_seconds": 5, "payload": {"email": 3, "x": 1}}, "payload.x: unknown input"),
        ({"every_seconds": 5, "payload": []}, "payload: expected an object"),
    ],
)
def test_one_problem_each(rt, data, expected):
    body = {"name": "s1", "behavior": "greet", "payload": {"email": "a@b.c"}, **data}
    assert any(expected in p for p in problems_of(rt, body))
    assert count(rt) == 0


def test_names_are_unique_and_patch_merges(rt):
    base = {"behavior": "greet", "payload": {"email": "a@b.c"}, "every_seconds": 60}
    with rt.Session.begin() as session:
        first = save_schedule(session, {**base, "name": "one"}, now=NOW).id
        save_schedule(session, {**base, "name": "two"}, now=NOW)
    assert problems_of(rt, {**base, "name": "one"}) == [
        'name: a schedule named "one" already exists'
    ]
    assert problems_of(rt, {"name": "two"}, first) == [
        'name: a schedule named "two" already exists'
    ]
    with rt.Session.begin() as session:
        schedule = session.get(Schedule, first)
        # Giving cron alone switches kinds: every_seconds is cleared.
        save_schedule(
            session, {"cron": "0  9 * * *", "timezone": "Europe/Paris"}, schedule, now=NOW
        )
        data = schedule_to_dict(schedule, now=NOW)
    assert data["cron"] == "0 9 * * *" and data["every_seconds"] is None
    assert data["next_run_at"] == "2026-12-02T08:00:00+00:00"
    assert data["next_runs"] == [
        "2026-12-02T09:00:00+01:00",
        "2026-12-03T09:00:00+01:00",
        "2026-12-04T09:00:00+01:00",
    ]
    assert data["description"] == "At 09:00, Europe/Paris"
    assert data["skipped_slots"] == 0 and data["last_run"] is None


def test_descriptions():
    assert describe({"cron": "*/15 * * * *", "timezone": "UTC"}) == "Every 15 minutes, UTC"
    assert describe({"every_seconds": 3600}) == "every hour"
    assert describe({"every_seconds": 90}) == "every 90 seconds"
    assert describe({"every_seconds": 300}) == "every 5 minutes"


def test_package_schedules_are_created_then_updated_by_name(rt):
    from shared.behaviors.packages import import_package
    from shared.behaviors.store import DefinitionInvalid

    package = """
name: p
behaviors:
  - name: greet
    inputs: {email: {type: string, required: true}}
    steps: [{id: s, action: set, vars: {x: 1}}]
schedules:
  - {name: morning, behavior: greet, cron: "0 9 * * *", timezone: Europe/Paris,
     payload: {email: a@b.c}}
"""
    with rt.Session.begin() as session:
        report = import_package(session, package)
    assert [(s["name"], s["status"]) for s in report.schedules] == [("morning", "created")]
    with rt.Session.begin() as session:
        report = import_package(session, package.replace("0 9", "30 9"))
    assert [(s["name"], s["status"]) for s in report.schedules] == [("morning", "updated")]
    with rt.Session() as session:
        assert session.scalars(select(Schedule.cron)).all() == ["30 9 * * *"]
    bad = package.replace("payload: {email: a@b.c}", "payload: {}")
    with pytest.raises(DefinitionInvalid) as caught, rt.Session.begin() as session:
        import_package(session, bad.replace("0 9", "15 9"))
    assert caught.value.problems == ["schedules[0].payload.email: required"]
    with rt.Session() as session:  # the whole import rolled back
        assert session.scalars(select(Schedule.cron)).all() == ["30 9 * * *"]
