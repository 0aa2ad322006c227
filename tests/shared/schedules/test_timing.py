"""Slots: cron on the zone's wall clock through DST, epoch-aligned intervals."""

from datetime import UTC, datetime

import pytest

from shared.schedules.timing import Rule, TimingError, cron_problem, local_iso

PARIS = "Europe/Paris"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_nine_paris_stays_at_nine_local_across_both_changes():
    rule = Rule("0 9 * * *", None, PARIS)
    march = rule.upcoming(utc(2026, 3, 27, 12), 4)
    assert [local_iso(s, PARIS) for s in march] == [
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",  # spring-forward day
        "2026-03-30T09:00:00+02:00",
        "2026-03-31T09:00:00+02:00",
    ]
    october = rule.upcoming(utc(2026, 10, 24, 12), 2)
    assert [local_iso(s, PARIS) for s in october] == [
        "2026-10-25T09:00:00+01:00",  # fall-back day
        "2026-10-26T09:00:00+01:00",
    ]


def test_nonexistent_local_time_fires_once_at_the_end_of_the_gap():
    rule = Rule("30 2 * * *", None, PARIS)
    slots = rule.upcoming(utc(2026, 3, 28, 12), 2)
    assert slots[0] == utc(2026, 3, 29, 1, 0)  # 03:00 CEST, the first valid instant
    assert slots[1] == utc(2026, 3, 30, 0, 30)
    # Every wall time in the gap lands on one instant: one slot, not four.
    quarter = Rule("*/15 2 * * *", None, PARIS).upcoming(utc(2026, 3, 28, 12), 2)
    assert quarter == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0)]


def test_ambiguous_local_time_fires_once_at_its_first_occurrence():
    rule = Rule("30 2 * * *", None, PARIS)
    first, second = rule.upcoming(utc(2026, 10, 24, 12), 2)
    assert first == utc(2026, 10, 25, 0, 30)  # 02:30 CEST; the 02:30 CET an hour later is not
    assert second == utc(2026, 10, 26, 1, 30)
    # Asked from inside the repeated hour's second pass, the next slot is tomorrow's, and the
    # latest one so far is the first pass's 02:30 (a later wall time than 02:15 CET).
    assert rule.next_after(utc(2026, 10, 25, 1, 15)) == second
    assert rule.latest_at_or_before(utc(2026, 10, 25, 1, 15), utc(2026, 10, 24, 0, 30)) == first


def test_intervals_are_epoch_aligned_and_ignore_the_zone():
    rule = Rule(None, 5, PARIS)
    assert rule.next_after(utc(2026, 1, 1, 0, 0, 2)) == utc(2026, 1, 1, 0, 0, 5)
    assert rule.next_after(utc(2026, 1, 1, 0, 0, 5)) == utc(2026, 1, 1, 0, 0, 10)
    hourly = Rule(None, 3600)
    assert hourly.next_after(utc(2026, 1, 1, 7, 59, 59)) == utc(2026, 1, 1, 8)


def test_latest_slot_at_or_before_is_the_catch_up_slot():
    rule = Rule("0 9 * * *", None, PARIS)
    claimed = utc(2026, 3, 27, 8)
    assert rule.latest_at_or_before(utc(2026, 3, 30, 12), claimed) == utc(2026, 3, 30, 7)
    assert rule.latest_at_or_before(utc(2026, 3, 27, 8), claimed) == claimed
    assert Rule(None, 5).latest_at_or_before(utc(2026, 1, 1, 0, 0, 27), utc(2026, 1, 1)) == utc(
        2026, 1, 1, 0, 0, 25
    )


@pytest.mark.parametrize(
    ("cron", "fragment"),
    [("* * * *", "5 fields"), ("61 * * * *", "not a valid"), ("", "expected"), ("a b c d e", "")],
)
def test_bad_crons_are_explained(cron, fragment):
    problem = cron_problem(cron)
    assert problem is not None and fragment in problem


def test_a_cron_that_never_fires_is_refused():
    with pytest.raises(TimingError, match="never fires"):
        Rule("0 0 30 2 *", None, "UTC").next_after(utc(2026, 1, 1))
