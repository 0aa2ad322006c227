"""API-usage samples: what beat records every few minutes, and what the 24-hour chart reads.

The Salesforce client already keeps each account's latest `Sforce-Limit-Info` figure on the
account row (`api_usage_used/max/at`). Sampling copies that figure into `api_usage_samples`
once per slot (the time rounded down to `SAMPLE_EVERY`), so the chart costs no API call.
Any number of beats may sample at once: the unique (account, slot) row is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import Account, ApiUsageSample

SAMPLE_EVERY = timedelta(minutes=5)
KEEP = timedelta(hours=48)
CHART_SPAN = timedelta(hours=24)


@dataclass(frozen=True)
class Sample:
    at: datetime
    used: int
    max: int


def slot_of(moment: datetime, every: timedelta = SAMPLE_EVERY) -> datetime:
    """`moment` rounded down to the sampling interval (UTC)."""
    step = int(every.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, tz=moment.tzinfo)


def record_samples(session: Session, now: datetime) -> int:
    """Write this slot's sample for every account whose usage has been reported; return how
    many rows were written (0 when another beat already sampled the slot).

    Runs in a savepoint: a concurrent beat's rows for the same slot make this one give way
    instead of failing the caller's transaction."""
    slot = slot_of(now)
    taken = set(
        session.scalars(select(ApiUsageSample.account_id).where(ApiUsageSample.slot == slot))
    )
    rows = session.execute(
        select(Account.id, Account.api_usage_used, Account.api_usage_max, Account.api_usage_at)
        .where(Account.api_usage_used.is_not(None), Account.api_usage_max.is_not(None))
        .order_by(Account.id)
    ).all()
    new = [
        ApiUsageSample(
            account_id=row.id,
            slot=slot,
            used=row.api_usage_used,
            max=row.api_usage_max,
            reported_at=row.api_usage_at,
        )
        for row in rows
        if row.id not in taken
    ]
    if not new:
        return 0
    try:
        with session.begin_nested():
            session.add_all(new)
    except IntegrityError:
        return 0  # another beat sampled this slot between our read and our write
    return len(new)


def prune_samples(session: Session, now: datetime, keep: timedelta = KEEP) -> int:
    """Delete samples older than `keep`; return how many."""
    result = session.execute(delete(ApiUsageSample).where(ApiUsageSample.slot < now - keep))
    return int(getattr(result, "rowcount", 0) or 0)


def samples_since(session: Session, account_id: int, since: datetime) -> list[Sample]:
    """The account's samples from `since` on, oldest first."""
    return samples_by_account(session, [account_id], since).get(account_id, [])


def samples_by_account(
    session: Session, account_ids: list[int], since: datetime
) -> dict[int, list[Sample]]:
    """{account id: its samples from `since` on, oldest first}, in one query."""
    out: dict[int, list[Sample]] = {}
    if not account_ids:
        return out
    rows = session.execute(
        select(
            ApiUsageSample.account_id, ApiUsageSample.slot, ApiUsageSample.used, ApiUsageSample.max
        )
        .where(ApiUsageSample.account_id.in_(account_ids), ApiUsageSample.slot >= since)
        .order_by(ApiUsageSample.account_id, ApiUsageSample.slot)
    )
    for account_id, slot, used, maximum in rows:
        out.setdefault(account_id, []).append(Sample(at=slot, used=used, max=maximum))
    return out
