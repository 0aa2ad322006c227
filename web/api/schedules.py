"""/api/v1/schedules: run a behavior on a cron (in an IANA zone) or every N seconds.

Bodies and responses are declared as pydantic models, which give the OpenAPI document its
schemas; every response is passed through its model. Request validation is
`shared.schedules.check_schedule`, because most of it needs the database (unique name, the
behavior and its inputs) and it must list every problem at once — type problems included —
with nothing saved. Changes take effect at the dispatcher's next tick.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import jsonify
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from shared.models import Schedule
from shared.schedules import (
    ScheduleInvalid,
    delete_schedule,
    last_runs,
    save_schedule,
    schedule_to_dict,
)

from ..db import db
from . import api
from .contract import Query, operation
from .errors import get_or_404, json_body, validation_error
from .openapi import document, schema

ID_PARAM = [{"name": "schedule_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


class ScheduleFields(BaseModel):
    """The writable fields; exactly one of cron / every_seconds."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
    behavior: str
    cron: str | None = Field(default=None, examples=["*/15 * * * *"])
    every_seconds: int | None = Field(default=None, ge=1)
    timezone: str = Field(default="UTC", examples=["Europe/Paris"])
    payload: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class ScheduleChange(BaseModel):
    """PATCH: any subset; giving cron alone clears every_seconds and vice versa."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    behavior: str | None = None
    cron: str | None = None
    every_seconds: int | None = Field(default=None, ge=1)
    timezone: str | None = None
    payload: dict[str, Any] | None = None
    enabled: bool | None = None


class LastRun(BaseModel):
    id: int
    status: str
    at: str | None = Field(description="the slot the run fired for (UTC)")
    finished_at: str | None = None
    wait_reason: str | None = Field(
        default=None, description="set while the run waits for the account's API quota"
    )
    resumes_at: str | None = None


class ScheduleOut(BaseModel):
    id: int
    name: str
    behavior: str
    cron: str | None
    every_seconds: int | None
    timezone: str
    payload: dict[str, Any]
    enabled: bool
    description: str = Field(description='e.g. "Every 15 minutes, UTC"')
    next_run_at: str | None = Field(description="UTC; null while disabled")
    next_runs: list[str] = Field(description="the next three, ISO 8601 in the schedule's zone")
    last_run: LastRun | None
    skipped_slots: int
    last_skipped_at: str | None
    last_error: str | None
    created_at: str | None
    updated_at: str | None


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]


class Deleted(BaseModel):
    deleted: Literal[True]


def _out(schedule: Schedule) -> dict[str, Any]:
    last = last_runs(db(), [schedule]).get(schedule.last_run_id or -1)
    return ScheduleOut.model_validate(schedule_to_dict(schedule, last)).model_dump(mode="json")


def _save(data: dict[str, Any], existing: Schedule | None = None) -> Schedule:
    session = db()
    try:
        schedule = save_schedule(session, data, existing)
    except ScheduleInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return schedule


@api.post("/schedules")
def create_schedule_api() -> Any:
    return jsonify(_out(_save(json_body()))), 201


class ScheduleFilter(Query):
    behavior: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[^\x00]*$")


@operation(api, "GET", "/schedules", "List schedules (?behavior= filters)",
           query=ScheduleFilter, response=ScheduleList)  # fmt: skip
def list_schedules_api(*, query: ScheduleFilter) -> Any:
    session = db()
    rows_query = select(Schedule).order_by(Schedule.name)
    if query.behavior is not None:
        rows_query = rows_query.where(Schedule.behavior_name == query.behavior)
    rows = list(session.scalars(rows_query))
    last = last_runs(session, rows)
    items = [schedule_to_dict(s, last.get(s.last_run_id or -1)) for s in rows]
    return ScheduleList.model_validate({"schedules": items}).model_dump(mode="json")


@api.get("/schedules/<int:schedule_id>")
def get_schedule_api(schedule_id: int) -> Any:
    return jsonify(_out(get_or_404(Schedule, schedule_id, "schedule")))


@api.patch("/schedules/<int:schedule_id>")
def update_schedule_api(schedule_id: int) -> Any:
    existing = get_or_404(Schedule, schedule_id, "schedule")
    return jsonify(_out(_save(json_body(), existing)))


@api.delete("/schedules/<int:schedule_id>")
def delete_schedule_api(schedule_id: int) -> Any:
    session = db()
    delete_schedule(session, get_or_404(Schedule, schedule_id, "schedule"))
    session.commit()
    return jsonify({"deleted": True})


def _schema(model: type[BaseModel]) -> dict[str, str]:
    definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, nested in definition.pop("$defs", {}).items():
        schema(name, nested)
    return schema(model.__name__, definition)


SCHEDULE = _schema(ScheduleOut)
document("/schedules", "POST", "Create a schedule", request=_schema(ScheduleFields),
         response=SCHEDULE, status=201)  # fmt: skip
document("/schedules/{schedule_id}", "GET", "Get a schedule", response=SCHEDULE, params=ID_PARAM)
document(
    "/schedules/{schedule_id}",
    "PATCH",
    "Change a schedule; takes effect at the next tick",
    request=_schema(ScheduleChange),
    response=SCHEDULE,
    params=ID_PARAM,
)
document("/schedules/{schedule_id}", "DELETE", "Delete a schedule (its runs stay)",
         response=_schema(Deleted), params=ID_PARAM)  # fmt: skip
