"""A worker judged dead while it was only paused stops; only the new owner records steps."""

from __future__ import annotations

import os
import signal

from sqlalchemy import select

from shared.models import HttpExchange, RunStep
from tests.conftest import poll

from .runs_support import (  # noqa: F401 - fixtures
    beat_fixture,
    fast_worker_fixture,
    no_default_worker_fixture,
    run_dict,
    save,
    wait_status,
)
from .runs_support import trigger as trigger_run

SLOW_THEN_CASE = """
name: slow-then-case
account: acme-prod
inputs:
  subject: {type: string, required: true}
steps:
  - id: look
    action: salesforce.query
    soql: "SELECT Id FROM Case LIMIT 1"
  - id: case
    action: salesforce.create
    sobject: Case
    fields: {Subject: "{{ inputs.subject }}"}
result: "{{ steps.case.id }}"
"""


def test_a_paused_worker_past_the_stale_threshold_records_nothing_after_it_resumes(
    runtime, sim, linked_account, fast_worker, beat
):
    linked_account()
    save(runtime, SLOW_THEN_CASE)
    paused = fast_worker(name="paused")
    sim.control.add_fault("/services/data/v62.0/query", count=1, status=None, delay_seconds=6)
    run_id = trigger_run(runtime, "slow-then-case", {"subject": "Split brain"})
    poll(
        lambda: run_dict(runtime, run_id)["current_step"] == "look",
        30,
        0.05,
        message="the slow step to start",
    )
    os.killpg(paused.process.pid, signal.SIGSTOP)
    try:
        fast_worker(name="owner")
        data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=90)
        assert data["status"] == "succeeded", data
    finally:
        os.killpg(paused.process.pid, signal.SIGCONT)
    # The paused worker wakes up with its query's answer in hand, finds the run taken over
    # (its fenced writes match nothing) and stops before the create.
    poll(
        lambda: "lost the run" in paused.log_tail(200),
        60,
        0.2,
        message="the paused worker to notice it lost the run",
    )
    cases = [c for c in sim.control.records("Case") if c.get("Subject") == "Split brain"]
    assert len(cases) == 1, cases
    final = run_dict(runtime, run_id)
    assert final["status"] == "succeeded" and final["result"] == cases[0]["Id"]
    with runtime.Session() as session:
        steps = session.scalars(select(RunStep).where(RunStep.run_id == run_id)).all()
        exchanges = session.scalars(select(HttpExchange).where(HttpExchange.run_id == run_id)).all()
    assert sorted(s.key for s in steps) == ["case", "look"]
    assert all(s.status == "succeeded" for s in steps)
    # One query and one create recorded: the paused worker's late answer was not.
    assert sorted(x.method for x in exchanges) == ["GET", "POST"], [
        (x.method, x.url, x.status) for x in exchanges
    ]
    workers = {a["worker"] for a in final["attempt_history"]}
    assert len(workers) == 1 and "owner" in workers.pop()
