"""No lost work, no double work: real workers, beat, Redis, the database and the simulator."""

from __future__ import annotations

import time

import redis as redis_lib
from sqlalchemy import func, select

from shared.models import Run, RunStep
from tests.conftest import poll, settings_env

from .runs_support import (  # noqa: F401 - fixtures
    NOOP_BEHAVIOR,
    beat_fixture,
    fast_worker_fixture,
    no_default_worker_fixture,
    run_dict,
    save,
    statuses,
    trigger,
    wait_status,
)

CASE_BEHAVIOR = """
name: open-case
account: acme-prod
inputs:
  subject: {type: string, required: true}
  email: {type: string, default: "nobody@example.com"}
steps:
  - id: case
    action: salesforce.create
    sobject: Case
    fields: {Subject: "{{ inputs.subject }}", SuppliedEmail: "{{ inputs.email }}"}
  - id: check
    action: salesforce.query
    soql: "SELECT Id, Subject FROM Case WHERE Id = {{ steps.case.id | soql }}"
result: "{{ steps.case.id }}"
"""


def test_trigger_succeeds_with_steps_recorded(runtime, sim, linked_account, worker):
    linked_account()
    save(runtime, CASE_BEHAVIOR)
    run_id = trigger(runtime, "open-case", {"subject": "Printer on fire"})
    data = wait_status(runtime, run_id, ("succeeded", "failed"))
    assert data["status"] == "succeeded", data
    cases = [c for c in sim.control.records("Case") if c.get("Subject") == "Printer on fire"]
    assert len(cases) == 1 and data["result"] == cases[0]["Id"]
    assert [(s["id"], s["status"]) for s in data["steps"]] == [
        ("case", "succeeded"),
        ("check", "succeeded"),
    ]
    assert data["steps"][0]["request"].startswith("POST ")
    assert data["steps"][0]["response_status"] == 201
    assert data["attempts"] == 1


def test_killed_worker_mid_run_completes_with_one_record(
    runtime, settings, sim, linked_account, fast_worker, beat
):
    linked_account()
    save(runtime, CASE_BEHAVIOR)
    first = fast_worker(name="doomed")
    # The second step's request hangs long enough for us to kill the worker during it.
    sim.control.add_fault("/services/data/v62.0/query", count=1, status=None, delay_seconds=8)
    run_id = trigger(runtime, "open-case", {"subject": "Killed mid-run"})

    def slow_step_running() -> bool:
        with runtime.Session() as session:
            step = session.scalars(
                select(RunStep).where(RunStep.run_id == run_id, RunStep.key == "check")
            ).one_or_none()
            return step is not None and step.status == "running"

    poll(slow_step_running, 30, message="the slow step to start")
    first.kill()
    fast_worker(name="rescuer")
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)
    assert data["status"] == "succeeded", data
    cases = [c for c in sim.control.records("Case") if c.get("Subject") == "Killed mid-run"]
    assert len(cases) == 1, cases
    assert data["attempts"] == 1  # the resumption continued the same attempt
    workers = {a["worker"] for a in data["attempt_history"]}
    assert any("rescuer" in (w or "") for w in workers)


def test_flushed_redis_loses_no_runs(runtime, settings, fast_worker, beat):
    save(runtime, NOOP_BEHAVIOR)
    ids = [trigger(runtime, "noop", {"n": n}) for n in range(100)]
    redis_lib.Redis.from_url(settings.redis_url).flushdb()
    fast_worker(name="after-flush", concurrency=4)

    def all_done() -> bool:
        return statuses(runtime).get("succeeded", 0) == 100

    poll(all_done, 120, 0.5, message=f"100 runs to succeed (now {statuses(runtime)})")
    with runtime.Session() as session:
        results = dict(session.execute(select(Run.id, Run.result)).all())
        assert session.scalar(select(func.count()).select_from(Run)) == 100
    assert [results[i] for i in ids] == [n * 3 for n in range(100)]


def test_retry_keeps_payload_and_replay_makes_new_run(runtime, sim, linked_account, worker, api):
    linked_account()
    save(runtime, CASE_BEHAVIOR)
    sim.control.add_fault(
        "/services/data/v62.0/sobjects/Case",
        count=1,
        status=400,
        error_code="INVALID_FIELD",
        message="No such column 'Bogus' on sobject of type Case",
    )
    run_id = trigger(runtime, "open-case", {"subject": "Again"})
    failed = wait_status(runtime, run_id, ("failed", "succeeded"))
    assert failed["status"] == "failed" and failed["error"]["code"] == "INVALID_FIELD"

    assert api.post(f"/runs/{run_id}/retry").status_code == 202
    data = wait_status(runtime, run_id, ("succeeded", "failed"))
    assert data["status"] == "succeeded" and data["attempts"] == 2
    assert data["payload"] == {"subject": "Again"}

    response = api.post(f"/runs/{run_id}/replay")
    assert response.status_code == 202
    replay = wait_status(runtime, response.get_json()["id"], ("succeeded", "failed"))
    assert replay["status"] == "succeeded" and replay["payload"] == {"subject": "Again"}
    assert replay["replay_of"] == run_id and replay["id"] != run_id
    assert len([c for c in sim.control.records("Case") if c.get("Subject") == "Again"]) == 2


def test_cancel_running_run_stops_at_next_step(runtime, sim, linked_account, worker, api):
    linked_account()
    save(runtime, CASE_BEHAVIOR)
    sim.control.add_fault(
        "/services/data/v62.0/sobjects/Case", count=1, status=None, delay_seconds=3
    )
    run_id = trigger(runtime, "open-case", {"subject": "Cancel me"})
    # Cancel while the slow first step is in flight (not between the claim and that step).
    poll(
        lambda: run_dict(runtime, run_id)["current_step"] == "case",
        30,
        0.1,
        message="the case step to start",
    )
    response = api.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 200 and response.get_json()["cancel_requested"]
    data = wait_status(runtime, run_id, ("cancelled", "succeeded", "failed"))
    assert data["status"] == "cancelled", data
    # The create step finished; the query step never started.
    assert [s["id"] for s in data["steps"]] == ["case"]


def test_flushed_broker_is_noticed_and_queued_runs_resent_within_seconds(
    runtime, settings, worker_factory, no_default_worker
):
    """Without the broker marker this waits for the 60 s re-send threshold."""
    from .runs_support import FAST_ENV, BeatProcess

    env = {**FAST_ENV, "FORCEBOT_RUN_RECONCILE_QUEUED_AFTER_SECONDS": "60"}
    save(runtime, NOOP_BEHAVIOR)
    first = worker_factory(name="before-flush", **env)
    beat = BeatProcess({**settings_env(settings), **env})
    try:
        client = redis_lib.Redis.from_url(settings.redis_url)
        poll(lambda: client.exists("forcebot:broker-marker"), 30, 0.2, message="the marker")
        first.stop()  # nobody consumes: the runs' messages wait in Redis
        ids = [trigger(runtime, "noop", {"n": n}) for n in range(50)]
        client.flushdb()
        back = time.monotonic()
        worker_factory(name="after-flush", concurrency=4, **env)

        def all_done() -> bool:
            return statuses(runtime).get("succeeded", 0) == 50

        poll(all_done, 60, 0.2, message=f"50 runs to succeed (now {statuses(runtime)})")
        took = time.monotonic() - back
        assert took < 15, f"recovery took {took:.1f}s"
        with runtime.Session() as session:
            results = dict(session.execute(select(Run.id, Run.result)).all())
        assert [results[i] for i in ids] == [n * 3 for n in range(50)]
    finally:
        beat.stop()
