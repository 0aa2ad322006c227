"""Rate limits and faults: retries with growing waits, failing at once, waiting for quota."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.salesforce.limits import check_room
from tests.conftest import poll

from .runs_support import (  # noqa: F401 - fixtures
    beat_fixture,
    fast_worker_fixture,
    no_default_worker_fixture,
    run_dict,
    save,
    trigger,
    wait_status,
)

QUERY_BEHAVIOR = """
name: count-cases
account: acme-prod
inputs:
  soql: {type: string, default: "SELECT Id FROM Case"}
steps:
  - id: cases
    action: salesforce.query
    soql: "{{ inputs.soql }}"
result: "{{ steps.cases.totalSize }}"
"""
QUERY_PATH = "/services/data/v62.0/query"


def test_concurrent_limit_is_retried_with_growing_waits(
    runtime, sim, linked_account, fast_worker, beat
):
    linked_account()
    save(runtime, QUERY_BEHAVIOR)
    fast_worker()
    sim.control.add_fault(
        QUERY_PATH,
        count=3,
        status=403,
        error_code="REQUEST_LIMIT_EXCEEDED",
        message="ConcurrentPerOrgLongTxn Limit exceeded.",
    )
    run_id = trigger(runtime, "count-cases", {})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)
    assert data["status"] == "succeeded", data
    waits = [w["seconds"] for w in data["waits"]]
    assert len(waits) == 3 and waits == sorted(waits), waits
    assert all(w["status"] == "retrying" for w in data["waits"])
    assert data["attempts"] == 1
    statuses = [x["status"] for x in data["steps"][0]["http"]]
    assert statuses == [403, 403, 403, 200]


def test_malformed_query_fails_at_once(runtime, sim, linked_account, worker):
    linked_account()
    save(runtime, QUERY_BEHAVIOR)
    run_id = trigger(runtime, "count-cases", {"soql": "SELEC Id FROM Case"})
    data = wait_status(runtime, run_id, ("succeeded", "failed"))
    assert data["status"] == "failed"
    assert data["error"]["code"] == "MALFORMED_QUERY" and data["error"]["message"]
    assert data["waits"] == [] and data["attempts"] == 1


def test_daily_limit_waits_until_limits_show_room(runtime, sim, linked_account, fast_worker, beat):
    linked_account()
    save(runtime, QUERY_BEHAVIOR)
    fast_worker()
    sim.control.set_limits(max=1000, usage=1000)
    run_id = trigger(runtime, "count-cases", {})
    data = wait_status(runtime, run_id, "waiting", timeout=30)
    assert "TotalRequests" in data["wait_reason"] or "daily" in data["wait_reason"]
    assert data["next_attempt_at"] is not None
    # Still waiting after several quota re-checks (each moves next_attempt_at on by
    # FORCEBOT_RUN_QUOTA_RECHECK_SECONDS=1): it does not burn its retries.
    rechecked_after = datetime.fromisoformat(data["next_attempt_at"]) + timedelta(seconds=1.5)

    def rechecked_twice() -> dict | None:
        now = run_dict(runtime, run_id)
        due = now["next_attempt_at"]
        return now if due and datetime.fromisoformat(due) > rechecked_after else None

    data = poll(rechecked_twice, 30, 0.2, message="two quota re-checks")
    assert data["status"] == "waiting" and data["retries"] == 0
    sim.control.set_limits(usage=0)
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=30)
    assert data["status"] == "succeeded", data


def test_scheduled_work_waits_past_the_reserve_and_resumes(
    runtime, sim, linked_account, fast_worker, beat
):
    account_id = linked_account(api_reserve_percent=10)
    save(runtime, QUERY_BEHAVIOR)
    fast_worker()
    sim.control.set_limits(max=1000, usage=950)
    assert check_room(runtime, account_id, purpose="scheduled") is False  # records the usage
    scheduled = trigger(runtime, "count-cases", {}, trigger="schedule")
    data = wait_status(runtime, scheduled, "waiting", timeout=30)
    assert "reserve" in data["wait_reason"]
    # Triggered work may still use the reserve.
    manual = trigger(runtime, "count-cases", {})
    assert wait_status(runtime, manual, ("succeeded", "failed"))["status"] == "succeeded"
    sim.control.set_limits(usage=10)
    data = wait_status(runtime, scheduled, ("succeeded", "failed"), timeout=30)
    assert data["status"] == "succeeded", data
