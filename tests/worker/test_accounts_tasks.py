"""Account tasks in real worker processes: the refresh beat, refresh health, Test connection."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import redis
from sqlalchemy import select

from shared.models import Account, utcnow
from tests.conftest import poll
from tests.shared.salesforce.support import account_row
from worker.beat import beat_schedule
from worker.celery_app import celery, configure, use_broker


def test_refresh_due_is_a_beat_tick_every_minute():
    import worker.tasks  # noqa: F401 - registers the tick

    entry = beat_schedule()["accounts-refresh-due"]
    assert entry["task"] == "worker.accounts.refresh_due" and entry["schedule"] == 60


def test_refresh_due_refreshes_expiring_and_day_old_accounts_only(
    sim, settings, runtime, linked_account, worker
):
    from worker.tasks.accounts import refresh_due

    expiring = linked_account(name="expiring", service_name="s1")
    day_old = linked_account(name="day-old", service_name="s2")
    fresh = linked_account(name="fresh", service_name="s3")
    with runtime.Session.begin() as session:
        account = session.get(Account, expiring)  # a 2-hour token with 12 minutes left
        account.token_issued_at = utcnow() - timedelta(minutes=108)
        account.token_expires_at = utcnow() + timedelta(minutes=12)
        session.get(Account, day_old).last_refresh_at = utcnow() - timedelta(hours=25)
        session.get(Account, fresh).last_refresh_at = utcnow() - timedelta(hours=1)
    configure(settings, runtime)

    assert refresh_due() == 2  # queued for the worker process

    poll(
        lambda: (
            account_row(runtime, expiring).refresh_count == 1
            and account_row(runtime, day_old).refresh_count == 1
        ),
        message="both due accounts refreshed by the worker",
    )
    for account_id in (expiring, day_old):
        account = account_row(runtime, account_id)
        assert account.last_refresh_error is None and account.consecutive_refresh_failures == 0
        assert account.last_refresh_at.replace(tzinfo=None) > (
            utcnow() - timedelta(minutes=1)
        ).replace(tzinfo=None)
    assert account_row(runtime, fresh).refresh_count == 0
    assert sim.control.counters()["refresh_grants"] == 2


def test_refresh_due_skips_a_fresh_fifteen_minute_token(settings, runtime, linked_account):
    """A 15-minute session is not "within 20 minutes" of expiry the moment it is issued."""
    from worker.tasks.accounts import refresh_due

    short = linked_account(name="short", service_name="s1")
    ending = linked_account(name="ending", service_name="s2")
    with runtime.Session.begin() as session:
        fresh = session.get(Account, short)  # just refreshed: 14 of its 15 minutes left
        fresh.token_issued_at = fresh.last_refresh_at = utcnow() - timedelta(minutes=1)
        fresh.token_expires_at = utcnow() + timedelta(minutes=14)
        late = session.get(Account, ending)  # 15-minute token with 3 minutes left: due
        late.token_issued_at = late.last_refresh_at = utcnow() - timedelta(minutes=12)
        late.token_expires_at = utcnow() + timedelta(minutes=3)
    configure(settings, runtime)

    assert refresh_due() == 1


def test_refresh_failure_is_recorded_as_health(sim, settings, runtime, linked_account, worker):
    account_id = linked_account()
    sim.control.revoke_refresh_tokens()
    use_broker(settings.redis_url)
    celery.send_task("worker.accounts.refresh", args=[account_id], kwargs={"force": True})
    account = poll(
        lambda: (a := account_row(runtime, account_id)).status == "needs_reauth" and a,
        message="the account marked needs_reauth",
    )
    assert account.status_reason == "expired access/refresh token"
    assert account.last_refresh_error == "expired access/refresh token"
    assert account.consecutive_refresh_failures == 1


def test_check_connection_writes_its_outcome(sim, settings, runtime, linked_account, worker):
    account_id = linked_account()
    request_id = uuid.uuid4().hex
    use_broker(settings.redis_url)
    celery.send_task("worker.accounts.check_connection", args=[account_id, request_id])
    client = redis.Redis.from_url(settings.redis_url)
    raw = poll(lambda: client.get(f"forcebot:check:{request_id}"), message="check outcome")
    outcome = json.loads(raw)
    assert outcome["ok"] is True, outcome
    assert outcome["error"] is None and outcome["refreshed"] is False
    assert outcome["api_max"] == 100000
    assert 0 < client.ttl(f"forcebot:check:{request_id}") <= 3600
    assert account_row(runtime, account_id).api_usage_max == 100000
    client.close()


def test_usage_is_sampled_every_five_minutes_on_the_beat_queue():
    import worker.tasks  # noqa: F401 - registers the tick
    from worker.beat import BEAT_QUEUE

    entry = beat_schedule()["accounts-sample-usage"]
    assert entry["task"] == "worker.accounts.sample_usage" and entry["schedule"] == 300
    assert entry["options"]["queue"] == BEAT_QUEUE


def test_a_worker_samples_what_the_client_recorded_and_prunes(
    sim, settings, runtime, linked_account, worker
):
    from shared.models import ApiUsageSample
    from shared.salesforce import SalesforceClient
    from worker.beat import BEAT_QUEUE

    account_id = linked_account()
    sim.control.set_limits(max=15000, usage=1234)
    SalesforceClient.for_account(runtime, account_id).limits()  # Sforce-Limit-Info
    recorded = account_row(runtime, account_id)
    assert recorded.api_usage_max == 15000 and recorded.api_usage_used is not None
    with runtime.Session.begin() as session:  # a sample from three days ago: pruned
        session.add(
            ApiUsageSample(
                account_id=account_id, slot=utcnow() - timedelta(days=3), used=1, max=15000
            )
        )
    configure(settings, runtime)
    celery.send_task("worker.accounts.sample_usage", queue=BEAT_QUEUE)

    def samples() -> list[tuple[int, int]]:
        with runtime.Session() as session:
            rows = session.execute(select(ApiUsageSample.used, ApiUsageSample.max)).all()
            return [tuple(row) for row in rows]

    poll(lambda: samples() == [(recorded.api_usage_used, 15000)], message="the worker's sample")
