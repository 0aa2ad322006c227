"""The `schedules:` entries of a behavior package: created or updated by name.

Called by `shared.behaviors.packages.import_package` after the package's behaviors are
saved (in the same session, so an entry may name a behavior of the same package). Every
entry is validated before any is saved; problems are prefixed `schedules[<i>].`. An entry
whose fields already match the stored schedule is reported "unchanged" and left alone (its
`next_run_at` and counters are kept).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Schedule

from .store import FIELDS, ScheduleInvalid, _current, check_schedule, save_schedule

MAX_SCHEDULES = 200


def import_schedules(session: Session, entries: list[Any]) -> list[dict[str, Any]]:
    """Validate every entry, then save them; raise ScheduleInvalid saving none of them."""
    problems: list[str] = []
    prepared: list[tuple[dict[str, Any], Schedule | None]] = []
    seen: dict[str, int] = {}
    if len(entries) > MAX_SCHEDULES:
        raise ScheduleInvalid([f"schedules: at most {MAX_SCHEDULES} in one package"])
    for index, entry in enumerate(entries):
        where = f"schedules[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a schedule object")
            continue
        name = entry.get("name")
        existing = (
            session.scalar(select(Schedule).where(Schedule.name == name))
            if isinstance(name, str)
            else None
        )
        if isinstance(name, str) and name in seen:
            problems.append(f'{where}.name: duplicate "{name}" (also schedules[{seen[name]}])')
            continue
        if isinstance(name, str):
            seen[name] = index
        data = dict(entry)
        if existing is not None:
            # A package states the whole schedule: fields it leaves out take their defaults.
            data = {"cron": None, "every_seconds": None, "timezone": "UTC", "payload": {},
                    "enabled": True, **data}  # fmt: skip
        try:
            values = check_schedule(session, data, existing)
        except ScheduleInvalid as exc:
            problems.extend(f"{where}.{problem}" for problem in exc.problems)
            continue
        prepared.append(({k: values[k] for k in FIELDS}, existing))
    if problems:
        raise ScheduleInvalid(problems)
    report: list[dict[str, Any]] = []
    for values, existing in prepared:
        if existing is not None and _current(existing) == values:
            report.append({"name": values["name"], "status": "unchanged", "id": existing.id})
            continue
        schedule = save_schedule(session, values, existing)
        status = "updated" if existing is not None else "created"
        report.append({"name": schedule.name, "status": status, "id": schedule.id})
    return report
