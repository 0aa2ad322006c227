"""Save, validate and present schedules. Functions take the caller's session, never commit.

Validation lists every problem as "field: message" and saves nothing when there is any:
the name (`[a-z0-9-]`, unique), the behavior (stored or Python, must exist), exactly one of
`cron` (five fields, read in `timezone`) and `every_seconds` (a positive integer), the IANA
`timezone`, and the `payload`, checked against the behavior's `inputs:` as a trigger is.

Choices where SPEC is silent:
- PATCH merges the given fields into the stored ones; giving `cron` alone clears
  `every_seconds` and vice versa, so switching kinds takes one field.
- `next_run_at` is recomputed from now when the timing (cron, every_seconds, timezone)
  changes or the schedule is enabled again; slots missed while disabled are not caught up.
- A disabled schedule keeps `next_run_at` but the dispatcher ignores it; disabling alone is
  never refused (a schedule whose behavior was deleted can still be switched off).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.behaviors.definition import NAME_RE, text_problem
from shared.behaviors.store import load_behavior, validate_payload
from shared.models import Run, Schedule, isoformat, utcnow
from shared.models.runs import WAITING

from .timing import Rule, TimingError, cron_problem, local_iso, zone

FIELDS = ("name", "behavior", "cron", "every_seconds", "timezone", "payload", "enabled")
MAX_EVERY_SECONDS = 366 * 24 * 3600


class ScheduleInvalid(Exception):
    """A schedule definition has problems; `.problems` lists each as "field: message"."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _current(schedule: Schedule | None) -> dict[str, Any]:
    if schedule is None:
        return {"timezone": "UTC", "payload": {}, "enabled": True}
    return {
        "name": schedule.name,
        "behavior": schedule.behavior_name,
        "cron": schedule.cron,
        "every_seconds": schedule.every_seconds,
        "timezone": schedule.timezone,
        "payload": schedule.payload,
        "enabled": schedule.enabled,
    }


def check_schedule(session: Session, data: Any, existing: Schedule | None = None) -> dict[str, Any]:
    """The complete, valid definition `data` makes (merged into `existing` for a change).

    Raise ScheduleInvalid listing every problem.
    """
    if not isinstance(data, dict):
        raise ScheduleInvalid(["body: expected an object"])
    problems = [f"{key}: unknown field" for key in data if key not in FIELDS]
    given = {key: value for key, value in data.items() if key in FIELDS}
    if existing is not None:
        if "cron" in given and given["cron"] is not None and "every_seconds" not in given:
            given["every_seconds"] = None
        if "every_seconds" in given and given["every_seconds"] is not None and "cron" not in given:
            given["cron"] = None
    values = {"cron": None, "every_seconds": None, **_current(existing), **given}

    name = values.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append("name: required; lowercase letters, digits and - (at most 100)")
    else:
        clash = session.scalar(select(Schedule.id).where(Schedule.name == name))
        if clash is not None and (existing is None or clash != existing.id):
            problems.append(f'name: a schedule named "{name}" already exists')

    timezone = values.get("timezone")
    if timezone is None:
        values["timezone"] = timezone = "UTC"
    zone_ok = False
    if not isinstance(timezone, str) or len(timezone) > 64:
        problems.append('timezone: expected an IANA time zone name such as "Europe/Paris"')
    else:
        try:
            zone(timezone)
            zone_ok = True
        except TimingError as exc:
            problems.append(f"timezone: {exc}")

    cron, every = values.get("cron"), values.get("every_seconds")
    rule_ok = False
    if cron is None and every is None:
        problems.append("cron: give either cron or every_seconds")
    elif cron is not None and every is not None:
        problems.append("every_seconds: give either cron or every_seconds, not both")
    elif cron is not None:
        problem = (
            "expected a string" if not isinstance(cron, str) else text_problem(cron)
        ) or cron_problem(cron)
        if problem:
            problems.append(f"cron: {problem}")
        else:
            values["cron"] = " ".join(cron.split())
            rule_ok = True
    else:
        if isinstance(every, bool) or not isinstance(every, int):
            problems.append("every_seconds: expected a positive whole number of seconds")
        elif not 1 <= every <= MAX_EVERY_SECONDS:
            problems.append(f"every_seconds: expected 1 to {MAX_EVERY_SECONDS}")
        else:
            rule_ok = True
    if rule_ok and zone_ok:
        try:
            rule_of(values).next_after(utcnow())
        except TimingError as exc:
            problems.append(f"cron: {exc}")

    enabled = values.get("enabled")
    if not isinstance(enabled, bool):
        problems.append("enabled: expected true or false")

    behavior_name = values.get("behavior")
    payload = values.get("payload")
    if payload is None:
        values["payload"] = payload = {}
    behavior = None
    if not isinstance(behavior_name, str) or not NAME_RE.match(behavior_name):
        problems.append("behavior: required; the name of a behavior")
    else:
        behavior = load_behavior(session, behavior_name)
        if behavior is None:
            problems.append(f'behavior: no behavior named "{behavior_name}"')
    if behavior is not None:
        _, payload_problems = validate_payload(behavior, payload)
        problems.extend(payload_problems)
    elif not isinstance(payload, dict):
        problems.append("payload: expected an object")
    if problems:
        raise ScheduleInvalid(problems)
    return values


def rule_of(values: dict[str, Any] | Schedule) -> Rule:
    if isinstance(values, Schedule):
        return Rule(values.cron, values.every_seconds, values.timezone)
    return Rule(values.get("cron"), values.get("every_seconds"), values.get("timezone") or "UTC")


def save_schedule(
    session: Session, data: Any, existing: Schedule | None = None, *, now: datetime | None = None
) -> Schedule:
    """Create (or change `existing`) from `data`; raise ScheduleInvalid saving nothing.

    Disabling alone (`{"enabled": false}`) is not validated: a schedule whose behavior was
    deleted must still be switchable off.
    """
    now = now or utcnow()
    if existing is not None and isinstance(data, dict) and data == {"enabled": False}:
        existing.enabled = False
        existing.updated_at = now
        session.flush()
        return existing
    values = check_schedule(session, data, existing)
    schedule = existing or Schedule(skipped_slots=0)
    retimed = (
        existing is None
        or (values["cron"], values["every_seconds"], values["timezone"])
        != (existing.cron, existing.every_seconds, existing.timezone)
        or (values["enabled"] and not existing.enabled)
        or existing.next_run_at is None
    )
    schedule.name = values["name"]
    schedule.behavior_name = values["behavior"]
    schedule.cron = values["cron"]
    schedule.every_seconds = values["every_seconds"]
    schedule.timezone = values["timezone"]
    schedule.payload = values["payload"]
    schedule.enabled = values["enabled"]
    if retimed:
        schedule.next_run_at = rule_of(values).next_after(now)
    schedule.updated_at = now
    if existing is None:
        session.add(schedule)
    session.flush()
    return schedule


def delete_schedule(session: Session, schedule: Schedule) -> None:
    """Delete the schedule; its runs stay (their schedule_id becomes null)."""
    session.delete(schedule)
    session.flush()


def preview(data: dict[str, Any], *, now: datetime | None = None, count: int = 3) -> list[str]:
    """The next `count` fire times of a (possibly unsaved) timing, as local ISO 8601."""
    rule = rule_of(data)
    return [local_iso(s, rule.timezone) for s in rule.upcoming(now or utcnow(), count)]


def describe(schedule: Schedule | dict[str, Any]) -> str:
    """A human description: "Every 15 minutes, Europe/Paris" / "every 30 seconds"."""
    rule = rule_of(schedule)
    if rule.every_seconds is not None:
        n = rule.every_seconds
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if n % size == 0:
                count = n // size
                return f"every {unit}" if count == 1 else f"every {count} {unit}s"
        return "every second" if n == 1 else f"every {n} seconds"
    from cron_descriptor import Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        text = get_description(rule.cron, options)
    except Exception:  # noqa: BLE001 - a description is decoration; croniter accepted the cron
        text = rule.cron or ""
    return f"{text}, {rule.timezone}"


def last_runs(session: Session, schedules: list[Schedule]) -> dict[int, Run]:
    """Each schedule's last run, in one query."""
    ids = [s.last_run_id for s in schedules if s.last_run_id is not None]
    if not ids:
        return {}
    return {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(ids)))}


def schedule_to_dict(
    schedule: Schedule, last_run: Run | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """SPEC's schedule JSON (next_runs in the schedule's zone)."""
    try:
        upcoming = preview(_current(schedule), now=now) if schedule.enabled else []
    except TimingError:
        upcoming = []
    run: dict[str, Any] | None = None
    if last_run is not None:
        run = {
            "id": last_run.id,
            "status": last_run.status,
            "at": isoformat(last_run.slot or last_run.created_at),
            "finished_at": isoformat(last_run.finished_at),
        }
        if last_run.status == WAITING:
            # The account passed its API reserve: the run waits and resumes by itself.
            run["wait_reason"] = last_run.wait_reason
            run["resumes_at"] = isoformat(last_run.next_attempt_at)
    error = schedule.last_error
    if error is None and last_run is not None and last_run.error and last_run.status == "failed":
        error = f"last run failed: {last_run.error.get('message') or last_run.error.get('code')}"
    return {
        "id": schedule.id,
        "name": schedule.name,
        "behavior": schedule.behavior_name,
        "cron": schedule.cron,
        "every_seconds": schedule.every_seconds,
        "timezone": schedule.timezone,
        "payload": schedule.payload,
        "enabled": schedule.enabled,
        "description": describe(schedule),
        "next_run_at": isoformat(schedule.next_run_at) if schedule.enabled else None,
        "next_runs": upcoming,
        "last_run": run,
        "skipped_slots": schedule.skipped_slots,
        "last_skipped_at": isoformat(schedule.last_skipped_at),
        "last_error": error,
        "created_at": isoformat(schedule.created_at),
        "updated_at": isoformat(schedule.updated_at),
    }


def count_schedules(session: Session) -> int:
    return session.scalar(select(func.count(Schedule.id))) or 0
