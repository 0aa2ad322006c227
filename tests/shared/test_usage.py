"""shared.usage on the real database (SQLite and PostgreSQL): one sample per account and slot,
what is sampled, pruning, and a second beat that loses the race to the same slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from shared import usage
from shared.models import Account, ApiUsageSample, Service

NOW = datetime(2026, 12, 1, 14, 7, 30, tzinfo=UTC)


def _accounts(runtime, *usages):
    """One account per (used, max); None for an account whose usage was never reported."""
    with runtime.Session.begin() as session:
        service = Service(
            name="s", client_id="c", client_secret_enc="x", login_url="https://login.example"
        )
        session.add(service)
        session.flush()
        ids = []
        for n, pair in enumerate(usages):
            account = Account(service_id=service.id, name=f"a{n}")
            if pair is not None:
                account.api_usage_used, account.api_usage_max = pair
                account.api_usage_at = NOW - timedelta(minutes=1)
            session.add(account)
            session.flush()
            ids.append(account.id)
        return ids


def _count(runtime) -> int:
    with runtime.Session() as session:
        return session.scalar(select(func.count()).select_from(ApiUsageSample)) or 0


def test_slot_rounds_down_to_five_minutes():
    assert usage.slot_of(NOW) == datetime(2026, 12, 1, 14, 5, tzinfo=UTC)
    assert usage.slot_of(NOW.replace(minute=5, second=0)) == NOW.replace(minute=5, second=0)


def test_one_sample_per_reported_account_and_slot(runtime):
    reported, other, never = _accounts(runtime, (120, 5000), (7, 100), None)
    with runtime.Session.begin() as session:
        assert usage.record_samples(session, NOW) == 2
    with runtime.Session.begin() as session:  # a second beat in the same slot writes nothing
        assert usage.record_samples(session, NOW + timedelta(seconds=90)) == 0
    assert _count(runtime) == 2
    with runtime.Session.begin() as session:
        session.get(Account, reported).api_usage_used = 180
        assert usage.record_samples(session, NOW + timedelta(minutes=5)) == 2
    with runtime.Session() as session:
        samples = usage.samples_since(session, reported, NOW - timedelta(hours=1))
        assert samples == [
            usage.Sample(at=datetime(2026, 12, 1, 14, 5, tzinfo=UTC), used=120, max=5000),
            usage.Sample(at=datetime(2026, 12, 1, 14, 10, tzinfo=UTC), used=180, max=5000),
        ]
        assert usage.samples_since(session, never, NOW - timedelta(hours=1)) == []
        by_account = usage.samples_by_account(session, [reported, other, never], NOW)
        assert {k: len(v) for k, v in by_account.items()} == {reported: 1, other: 1}
        row = session.scalars(select(ApiUsageSample).where(ApiUsageSample.account_id == other))
        assert next(iter(row)).reported_at == NOW - timedelta(minutes=1)


def test_samples_older_than_48_hours_are_pruned(runtime):
    _accounts(runtime, (1, 10))
    with runtime.Session.begin() as session:
        for hours in (49, 47, 1):
            usage.record_samples(session, NOW - timedelta(hours=hours))
    with runtime.Session.begin() as session:
        assert usage.prune_samples(session, NOW) == 1
    assert _count(runtime) == 2


def test_a_beat_that_loses_the_race_to_a_slot_gives_way(runtime, settings):
    if settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): the race cannot happen there")
    (account_id,) = _accounts(runtime, (5, 50))
    engine = runtime.engine
    state = {"fired": False}

    def other_beat_writes_first(conn, cursor, statement, *args):
        # Right after our beat read which accounts the slot already has, another commits.
        if state["fired"] or "FROM api_usage_samples" not in statement:
            return
        state["fired"] = True
        with runtime.Session.begin() as other:
            other.add(
                ApiUsageSample(account_id=account_id, slot=usage.slot_of(NOW), used=5, max=50)
            )

    event.listen(engine, "after_cursor_execute", other_beat_writes_first)
    try:
        with runtime.Session.begin() as session:
            assert usage.record_samples(session, NOW) == 0
            session.add(Service(name="kept", client_id="c", client_secret_enc="x",
                                login_url="https://login.example"))  # fmt: skip
    finally:
        event.remove(engine, "after_cursor_execute", other_beat_writes_first)
    assert state["fired"] and _count(runtime) == 1
    with runtime.Session() as session:  # the caller's transaction survived the lost race
        assert session.scalar(select(Service.id).where(Service.name == "kept")) is not None
