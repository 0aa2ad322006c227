"""Faults at the simulator, over real HTTP: retried, honoured, or failed at once as they should."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from shared.models import Account
from shared.salesforce import DailyLimitExceeded, QuotaReserveReached, SalesforceClient
from shared.salesforce.errors import MalformedQuery, RateLimited
from shared.salesforce.limits import check_room, reserve_reached
from shared.salesforce.retry import call_with_retries

CONCURRENT = "ConcurrentPerOrgLongTxn Limit exceeded."


class Ceiling:
    """An rng whose jitter always lands on the ceiling, so waits are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_concurrent_limit_three_times_then_success(sim, runtime, linked_account):
    client = SalesforceClient.for_account(runtime, linked_account())
    sim.control.add_fault(
        "/services/data",
        count=3,
        status=403,
        error_code="REQUEST_LIMIT_EXCEEDED",
        message=CONCURRENT,
    )
    waits: list[float] = []
    errors: list[Any] = []

    result = call_with_retries(
        client.limits,
        max_attempts=5,
        sleep=waits.append,
        on_wait=lambda attempt, delay, exc: errors.append(exc),
        rng=Ceiling(),
    )

    assert result["DailyApiRequests"]["Max"] > 0
    assert waits == [1.0, 2.0, 4.0]  # growing
    assert all(
        isinstance(e, RateLimited) and e.error_code == "REQUEST_LIMIT_EXCEEDED" for e in errors
    )
    statuses = [e["status"] for e in sim.control.log() if e["path"].endswith("/limits")]
    assert statuses == [403, 403, 403, 200]


def test_retry_after_is_honoured(sim, runtime, linked_account):
    client = SalesforceClient.for_account(runtime, linked_account())
    sim.control.add_fault(
        "/services/data",
        status=429,
        error_code="REQUEST_LIMIT_EXCEEDED",
        message=CONCURRENT,
        retry_after=2,
    )
    waits: list[float] = []
    started = time.monotonic()
    call_with_retries(
        client.limits, max_attempts=3, on_wait=lambda attempt, delay, exc: waits.append(delay)
    )
    assert waits == [2.0]
    assert time.monotonic() - started >= 2.0


def test_malformed_query_fails_at_once(sim, runtime, linked_account):
    client = SalesforceClient.for_account(runtime, linked_account())
    calls = []

    def call() -> Any:
        calls.append(1)
        return client.query_page("SELECT Id FROM")

    with pytest.raises(MalformedQuery) as info:
        call_with_retries(call, max_attempts=5, sleep=lambda s: pytest.fail("slept"))
    assert len(calls) == 1
    assert info.value.to_dict()["code"] == "MALFORMED_QUERY" and info.value.status == 400


def test_daily_limit_is_not_retried_and_check_room_sees_when_room_returns(
    sim, runtime, linked_account
):
    account_id = linked_account()
    client = SalesforceClient.for_account(runtime, account_id)
    sim.control.set_limits(max=500, usage=500)
    calls = []

    def call() -> Any:
        calls.append(1)
        return client.query_page("SELECT Id FROM Contact")

    with pytest.raises(DailyLimitExceeded) as info:
        call_with_retries(call, max_attempts=5, sleep=lambda s: pytest.fail("slept"))
    assert len(calls) == 1 and info.value.status == 403
    assert check_room(runtime, account_id) is False
    sim.control.set_limits(usage=10)
    assert check_room(runtime, account_id) is True
    with runtime.Session() as session:
        account = session.get(Account, account_id)
        assert (account.api_usage_used, account.api_usage_max) == (10, 500)
        assert account.quota_exhausted_until is None
    assert client.query_page("SELECT Id FROM Contact")["done"] is True


def test_html_edge_proxy_page_is_retried_like_any_5xx(sim, runtime, linked_account):
    client = SalesforceClient.for_account(runtime, linked_account())
    sim.control.add_fault("/services/data", status=503, html=True)
    waits: list[float] = []
    assert call_with_retries(client.limits, max_attempts=3, sleep=waits.append, rng=Ceiling())
    assert waits == [1.0]


def test_scheduled_work_stops_at_the_reserve_and_resumes(sim, runtime, linked_account):
    account_id = linked_account(api_reserve_percent=10)
    sim.control.set_limits(max=1000, usage=895)
    trigger = SalesforceClient.for_account(runtime, account_id)
    scheduled = SalesforceClient.for_account(runtime, account_id, purpose="scheduled")

    scheduled.limits()  # /limits is free: 895/1000 recorded, below the 900 reserve line
    assert check_room(runtime, account_id, purpose="scheduled") is True
    for _ in range(5):
        trigger.query_page("SELECT Id FROM Contact")  # usage now 900/1000
    with runtime.Session() as session:
        account = session.get(Account, account_id)
        assert account.api_usage_used == 900
        assert reserve_reached(account, account.service) is True
    with pytest.raises(QuotaReserveReached) as info:
        SalesforceClient.for_account(runtime, account_id, purpose="scheduled").query_page(
            "SELECT Id FROM Contact"
        )
    assert info.value.retryable is False
    assert check_room(runtime, account_id, purpose="scheduled") is False
    assert check_room(runtime, account_id, purpose="trigger") is True
    trigger.query_page("SELECT Id FROM Contact")  # triggers go on to the hard limit

    sim.control.set_limits(usage=0)  # a new day
    assert check_room(runtime, account_id, purpose="scheduled") is True
    fresh = SalesforceClient.for_account(runtime, account_id, purpose="scheduled")
    assert fresh.query_page("SELECT Id FROM Contact")["done"] is True


def test_per_account_concurrency_cap_holds_across_clients(sim, runtime, linked_account):
    account_id = linked_account()
    sim.control.add_fault("/services/data", count=8, status=None, delay_seconds=0.3)
    sim.control.reset_counters()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client = SalesforceClient(runtime, account_id, concurrency_cap=3)
            client.limits()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    counters = sim.control.counters()
    assert counters["peak_concurrency"] <= 3
    assert counters["peak_concurrency"] >= 2  # they did overlap
