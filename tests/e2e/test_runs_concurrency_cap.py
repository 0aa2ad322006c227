"""Waiting for our own per-account concurrency cap never spends a run's retries."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from sqlalchemy import select

from shared import runs
from shared.models import Run
from shared.salesforce import SalesforceClient

from .runs_support import save

QUERY_BEHAVIOR = """
name: count-cases
account: acme-prod
inputs:
  n: {type: integer, required: true}
steps:
  - id: cases
    action: salesforce.query
    soql: "SELECT Id FROM Case LIMIT 1"
result: "{{ inputs.n }}"
"""
RUNS = 60
THREADS = 12


def _capped_client(runtime: Any, account_id: int, **options: Any) -> SalesforceClient:
    # Cap 2 for 12 concurrent executions of 0.4 s calls: the cap's wait (the timeout, 1.5 s)
    # often runs out before a slot frees up.
    return SalesforceClient(runtime, account_id, concurrency_cap=2, timeout=1.5, **options)


def _drive(runtime: Any, todo: queue.Queue[int], problems: list[str]) -> None:
    while True:
        try:
            run_id = todo.get_nowait()
        except queue.Empty:
            return
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with runtime.Session.begin() as session:
                claim = runs.claim_for_execution(session, run_id, threading.current_thread().name)
            if claim is not None:
                runs.execute_claimed(runtime, claim, client_factory=_capped_client)
            with runtime.Session() as session:
                status = session.scalar(select(Run.status).where(Run.id == run_id))
            if status in runs.FINISHED:
                break
            time.sleep(0.05)  # a retrying run becomes due again (short back-off)
        else:
            problems.append(f"run {run_id} did not finish")


def test_many_runs_through_cap_2_all_succeed_without_retries(runtime, sim, linked_account):
    linked_account()
    save(runtime, QUERY_BEHAVIOR)
    sim.control.add_fault(
        "/services/data/v62.0/query", count=10_000, status=None, delay_seconds=0.4
    )
    todo: queue.Queue[int] = queue.Queue()
    with runtime.Session.begin() as session:
        for n in range(RUNS):
            run, _ = runs.create_run(session, "count-cases", {"n": n})
            session.flush()
            todo.put(run.id)
    problems: list[str] = []
    threads = [
        threading.Thread(target=_drive, args=(runtime, todo, problems), name=f"t{i}:1")
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert problems == []
    with runtime.Session() as session:
        rows = session.execute(select(Run.status, Run.retries, Run.progress)).all()
    assert [r.status for r in rows] == ["succeeded"] * RUNS
    assert [r.retries for r in rows] == [0] * RUNS
    cap_waits = [
        w
        for r in rows
        for w in (r.progress or {}).get("waits") or []
        if w["code"] == "concurrency_cap"
    ]
    assert cap_waits, "the cap never made a run wait: the test did not exercise it"
