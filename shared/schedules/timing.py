"""When a schedule fires: cron read in an IANA zone, or every N seconds.

A *slot* is a UTC instant. Slots come from one of two rules:

- `cron` (five fields) is evaluated on the schedule's local wall clock with croniter, using
  naive local times so croniter never sees a DST transition; each wall time is then placed
  in the zone with zoneinfo:
  - a wall time that exists once is that instant (a daily `0 9 * * *` in Europe/Paris is
    09:00 local every day, 08:00 UTC in winter and 07:00 UTC in summer);
  - a wall time skipped by a spring-forward gap (02:30 on the last Sunday of March in Paris)
    becomes the first valid instant after the gap (03:00 local), once: several skipped wall
    times that land on the same instant are one slot;
  - a wall time repeated by a fall-back (02:30 on the last Sunday of October) is its first
    occurrence only (`fold=0`), so it fires once; a sub-hourly cron therefore does not fire
    during the repeated hour's second pass.
- `every_seconds` slots are the multiples of the interval since the Unix epoch (UTC), so they
  are the same whatever the process or the moment of saving: `every_seconds: 3600` fires on
  the hour. The zone does not affect them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

# A cron whose next slot is further than this is treated as never firing (e.g. "0 0 30 2 *").
_SEARCH_LIMIT = 2000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Longer than any backward clock change in tzdata, so a fall-back is always seen.
_LOOKBACK = timedelta(hours=6)


class TimingError(ValueError):
    """The rule cannot produce slots (bad cron, unknown zone, never fires)."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; raise TimingError for anything else."""
    if not isinstance(name, str) or not name or name != name.strip() or "\x00" in name:
        raise TimingError(f'unknown time zone "{name}"')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TimingError(
            f'unknown time zone "{name}" (use an IANA name such as "Europe/Paris")'
        ) from None


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a five-field cron, or None."""
    if not isinstance(expression, str) or not expression.strip():
        return 'expected a cron expression such as "*/15 * * * *"'
    fields = expression.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day month weekday), got {len(fields)}"
    try:
        croniter(expression)
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        return f"not a valid cron expression ({exc})"
    return None


@dataclass(frozen=True)
class Rule:
    """A schedule's timing: exactly one of cron / every_seconds, and its zone."""

    cron: str | None
    every_seconds: int | None
    timezone: str = "UTC"

    def next_after(self, after: datetime) -> datetime:
        """The first slot strictly after `after` (aware), in UTC."""
        after = after.astimezone(UTC)
        if self.every_seconds is not None:
            step = self.every_seconds
            elapsed = int((after - EPOCH).total_seconds() // step)
            return EPOCH + timedelta(seconds=(elapsed + 1) * step)
        assert self.cron is not None
        tz = zone(self.timezone)
        # A slot after `after` never has an earlier wall time (repeated wall times are read as
        # their first occurrence), so the walk starts at `after`'s own wall time.
        start = after.astimezone(tz).replace(tzinfo=None) - timedelta(minutes=1)
        walk = croniter(self.cron, start)
        for _ in range(_SEARCH_LIMIT):
            try:
                wall = walk.get_next(datetime)
            except CroniterBadDateError:
                break
            slot = place(wall, tz)
            if slot > after:
                return slot
        raise TimingError(f'cron "{self.cron}" never fires')

    def latest_at_or_before(self, at: datetime, not_before: datetime) -> datetime:
        """The latest slot in [not_before, at]; `not_before` must itself be a slot."""
        at = at.astimezone(UTC)
        if self.every_seconds is not None:
            elapsed = int((at - EPOCH).total_seconds() // self.every_seconds)
            return max(EPOCH + timedelta(seconds=elapsed * self.every_seconds), not_before)
        # Walk back on the wall clock. Just after a fall-back, slots at or before `at` can have
        # later wall times than `at` (the first pass of the repeated hour), so the walk then
        # starts as far ahead as the clock went back.
        assert self.cron is not None
        tz = zone(self.timezone)
        local = at.astimezone(tz)
        earlier = (at - _LOOKBACK).astimezone(tz).utcoffset() or timedelta(0)
        ahead = max(earlier - (local.utcoffset() or timedelta(0)), timedelta(0))
        start = local.replace(tzinfo=None) + ahead + timedelta(minutes=1)
        walk = croniter(self.cron, start)
        for _ in range(_SEARCH_LIMIT):
            try:
                wall = walk.get_prev(datetime)
            except CroniterBadDateError:
                break
            slot = place(wall, tz)
            if slot <= at:
                return max(slot, not_before)
        return not_before

    def upcoming(self, after: datetime, count: int = 3) -> list[datetime]:
        """The next `count` slots after `after`, in UTC."""
        slots: list[datetime] = []
        cursor = after
        for _ in range(count):
            cursor = self.next_after(cursor)
            slots.append(cursor)
        return slots


def place(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of the naive local wall time `wall` in `tz` (see the module docstring)."""
    first = wall.replace(tzinfo=tz, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return utc  # exists (the first occurrence when repeated)
    # In a gap. Read with the offset after the gap (fold=1) the wall time lands before the
    # transition; walk forward a minute at a time (tzdata transitions are on whole minutes)
    # to the first instant that has that offset: the transition, the first valid time.
    after_offset = wall.replace(tzinfo=tz, fold=1).utcoffset()
    probe = wall.replace(tzinfo=tz, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    for _ in range(48 * 60):
        if probe.astimezone(tz).utcoffset() == after_offset:
            return probe
        probe += timedelta(minutes=1)
    return utc  # unreachable with tzdata's gaps; keep the fold=0 reading


def local_iso(slot: datetime, timezone: str) -> str:
    """`slot` as ISO 8601 in the zone with its offset, e.g. 2026-12-02T09:00:00+01:00."""
    return slot.astimezone(zone(timezone)).isoformat()
