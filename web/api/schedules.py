"""/api/v1/schedules: run a behavior on a cron (in an IANA zone) or every N seconds.

Declared with the contract registry (web.api.contract): the body models give the document
its schemas and refuse a body of the wrong shape first (strict types, unknown fields), all
its shape problems listed at once; `shared.schedules.check_schedule` then applies the rules
that need the database or the clock (unique name, the behavior and its inputs, a cron that
parses and fires, a known zone, exactly one of cron / every_seconds) and lists every one of
those. Nothing is saved on any problem. Changes take effect at the dispatcher's next tick.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from sqlalchemy import select

from shared.models import Schedule
from shared.schedules import (
    ScheduleInvalid,
    delete_schedule,
    last_runs,
    save_schedule,
    schedule_to_dict,
)
from web.api import api

from ..db import db
from .contract import Body, Query, Reply, integral, operation
from .errors import get_or_404, validation_error

Name = Annotated[str, Field(min_length=1, max_length=100, description="[a-z0-9-], unique")]
Cron = Annotated[
    str,
    Field(max_length=100, description="five fields, read in `timezone`", examples=["*/15 * * * *"]),
]
Every = Annotated[
    int,
    Field(ge=1, description="seconds; slots are multiples since the epoch"),
    BeforeValidator(integral),
]
Zone = Annotated[str, Field(max_length=64, description="IANA name", examples=["Europe/Paris"])]
Time = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]

PAYLOAD_TEXT = (
    "checked against the behavior's `inputs:` (422 lists every input that does not fit, e.g. "
    "`payload.email: required`); its JSON Schema: GET /behaviors/<behavior>/payload.schema.json"
)


class ScheduleCreate(Body):
    """Exactly one of cron / every_seconds."""

    name: Name
    behavior: Name
    cron: Cron | None = None
    every_seconds: Every | None = None
    timezone: Zone = "UTC"
    payload: dict[str, Any] = Field(default_factory=dict, description=PAYLOAD_TEXT)
    enabled: bool = True


class ScheduleChange(Body):
    """Only the fields sent change; sending cron alone clears every_seconds and vice versa."""

    name: Name | None = None
    behavior: Name | None = None
    cron: Cron | None = None
    every_seconds: Every | None = None
    timezone: Zone | None = None
    payload: dict[str, Any] | None = Field(None, description=PAYLOAD_TEXT)
    enabled: bool | None = None


class LastRun(Reply):
    id: int
    status: str
    at: Time = Field(description="the slot the run fired for (UTC)")
    finished_at: Time = None
    wait_reason: str | None = Field(
        None, description="set while the run waits for the account's API quota reserve"
    )
    resumes_at: Time = None


class ScheduleOut(Reply):
    id: int
    name: str
    behavior: str
    cron: str | None
    every_seconds: int | None
    timezone: str
    payload: dict[str, Any]
    enabled: bool
    description: str = Field(description='e.g. "Every 15 minutes, UTC"')
    next_run_at: Time = Field(description="UTC; null while disabled")
    next_runs: list[str] = Field(description="the next three, ISO 8601 in the schedule's zone")
    last_run: LastRun | None
    skipped_slots: int
    last_skipped_at: Time
    last_error: str | None
    created_at: Time
    updated_at: Time


class ScheduleList(Reply):
    schedules: list[ScheduleOut]


class ScheduleFilter(Query):
    behavior: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[^\x00]*$")


class ScheduleDeleted(Reply):
    deleted: bool


def _out(schedule: Schedule) -> dict[str, Any]:
    last = last_runs(db(), [schedule]).get(schedule.last_run_id or -1)
    return schedule_to_dict(schedule, last)


def _save(data: dict[str, Any], existing: Schedule | None = None) -> Schedule:
    session = db()
    try:
        schedule = save_schedule(session, data, existing)
    except ScheduleInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return schedule


@operation(api, "POST", "/schedules", "Create a schedule",
           body=ScheduleCreate, response=ScheduleOut, status=201)  # fmt: skip
def create_schedule_api(*, body: ScheduleCreate) -> Any:
    return _out(_save(body.model_dump()))


@operation(api, "GET", "/schedules", "List schedules by name",
           query=ScheduleFilter, response=ScheduleList)  # fmt: skip
def list_schedules_api(*, query: ScheduleFilter) -> Any:
    session = db()
    statement = select(Schedule).order_by(Schedule.name)
    if query.behavior is not None:
        statement = statement.where(Schedule.behavior_name == query.behavior)
    rows = list(session.scalars(statement))
    last = last_runs(session, rows)
    return {"schedules": [schedule_to_dict(s, last.get(s.last_run_id or -1)) for s in rows]}


@operation(api, "GET", "/schedules/<int:schedule_id>", "Get a schedule", response=ScheduleOut)
def get_schedule_api(schedule_id: int) -> Any:
    return _out(get_or_404(Schedule, schedule_id, "schedule"))


@operation(api, "PATCH", "/schedules/<int:schedule_id>",
           "Change a schedule; takes effect at the next tick",
           body=ScheduleChange, response=ScheduleOut)  # fmt: skip
def update_schedule_api(schedule_id: int, *, body: ScheduleChange) -> Any:
    existing = get_or_404(Schedule, schedule_id, "schedule")
    return _out(_save(body.model_dump(include=body.model_fields_set), existing))


@operation(api, "DELETE", "/schedules/<int:schedule_id>", "Delete a schedule (its runs stay)",
           response=ScheduleDeleted)  # fmt: skip
def delete_schedule_api(schedule_id: int) -> Any:
    session = db()
    delete_schedule(session, get_or_404(Schedule, schedule_id, "schedule"))
    session.commit()
    return {"deleted": True}
