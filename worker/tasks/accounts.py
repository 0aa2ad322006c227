"""Account tasks: the refresh beat, one account's refresh, "Test connection", and the API-usage
sampling beat (for the accounts page's 24-hour chart)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from celery import Task
from sqlalchemy import or_, select

from shared import usage
from shared.models import Account, utcnow
from shared.models.accounts import ACTIVE
from shared.salesforce import SalesforceClient, SalesforceError
from shared.salesforce.auth import DAILY_REFRESH, DUE_MARGIN, refresh_account, refresh_is_due

from ..beat import register
from ..celery_app import celery, runtime

log = logging.getLogger(__name__)

CHECK_RESULT_TTL_SECONDS = 3600

register("accounts-refresh-due", "worker.accounts.refresh_due", 60)
register(
    "accounts-sample-usage", "worker.accounts.sample_usage", usage.SAMPLE_EVERY.total_seconds()
)


def check_key(request_id: str) -> str:
    return f"forcebot:check:{request_id}"


@celery.task(name="worker.accounts.refresh_due")
def refresh_due() -> int:
    """Queue a refresh for accounts near expiry or not refreshed for a day.

    "Near expiry" is `refresh_is_due`, the rule `TokenState.due` uses too: a 15-minute session
    is not queued on every tick. The SQL picks candidates by the flat margin; the rule filters.
    """
    now = utcnow()
    stale = now - DAILY_REFRESH
    with runtime().Session() as session:
        rows = session.execute(
            select(
                Account.id,
                Account.token_expires_at,
                Account.token_issued_at,
                Account.last_refresh_at,
            ).where(
                Account.status == ACTIVE,
                or_(
                    Account.token_expires_at.is_(None),
                    Account.token_expires_at < now + DUE_MARGIN,
                    Account.last_refresh_at < stale,
                    Account.last_refresh_at.is_(None) & (Account.token_issued_at < stale),
                ),
            )
        ).all()
    ids = [
        row.id
        for row in rows
        if refresh_is_due(row.token_expires_at, row.token_issued_at, row.last_refresh_at, now)
    ]
    for account_id in ids:
        # Two beats may queue the same account; the refresh re-checks under the lock.
        refresh.apply_async(args=[account_id], expires=timedelta(minutes=5).total_seconds())
    return len(ids)


@celery.task(name="worker.accounts.sample_usage")
def sample_usage() -> int:
    """Record this slot's API-usage sample of every account and prune old ones."""
    now = utcnow()
    with runtime().Session.begin() as session:
        written = usage.record_samples(session, now)
        pruned = usage.prune_samples(session, now)
    log.info("usage_samples=%s pruned=%s", written, pruned)
    return written


@celery.task(name="worker.accounts.refresh")
def refresh(account_id: int, force: bool = False) -> bool:
    """Refresh one account's token if still due (or always with force)."""
    try:
        done = refresh_account(runtime(), account_id, force=force)
    except SalesforceError as exc:
        log.warning("account=%s refresh=failed code=%s", account_id, exc.error_code)
        return False
    log.info("account=%s refresh=%s", account_id, "done" if done else "skipped")
    return done


@celery.task(name="worker.accounts.check_connection", bind=True)
def check_connection(self: Task, account_id: int, request_id: str) -> None:
    """Call /limits as the account and leave the outcome in Redis for an hour."""
    rt = runtime()
    outcome: dict = {
        "ok": False,
        "error": None,
        "refreshed": False,
        "account_id": account_id,
        "worker": self.request.hostname,
    }
    client = None
    try:
        client = SalesforceClient.for_account(rt, account_id)
        daily = client.limits().get("DailyApiRequests") or {}
        outcome.update(
            ok=True,
            api_max=daily.get("Max"),
            api_remaining=daily.get("Remaining"),
        )
    except SalesforceError as exc:
        outcome["error"] = exc.to_dict()
    finally:
        if client is not None:
            outcome["refreshed"] = client.refreshed
        outcome["checked_at"] = utcnow().isoformat()
        rt.redis.set(check_key(request_id), json.dumps(outcome), ex=CHECK_RESULT_TTL_SECONDS)
    log.info("account=%s check=%s", account_id, "ok" if outcome["ok"] else "failed")
