"""Schedules: a second producer of runs beside triggers (cron in a zone, or every N seconds).

- `timing`: slots — cron read on the zone's wall clock with DST handled, or epoch-aligned
  intervals;
- `store`: validate (every problem listed), save, present;
- `dispatch`: the beat tick that fires each slot exactly once or skips it once;
- `packages`: the `schedules:` entries of a behavior package.
"""

from .dispatch import TickReport, dispatch_schedules, slot_key
from .store import (
    ScheduleInvalid,
    check_schedule,
    delete_schedule,
    describe,
    last_runs,
    preview,
    save_schedule,
    schedule_to_dict,
)
from .timing import Rule, TimingError

__all__ = [
    "Rule",
    "ScheduleInvalid",
    "TickReport",
    "TimingError",
    "check_schedule",
    "delete_schedule",
    "describe",
    "dispatch_schedules",
    "last_runs",
    "preview",
    "save_schedule",
    "schedule_to_dict",
    "slot_key",
]
