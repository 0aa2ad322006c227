"""Run tasks in a real worker process: execute, duplicate deliveries, dispatch and reconcile."""

from __future__ import annotations

from datetime import timedelta

from celery import current_app  # noqa: F401 - the app must be importable in tests
from sqlalchemy import func, select

from shared import runs
from shared.behaviors.store import get_version, save_behavior
from shared.models import Attempt, Run, utcnow
from tests.conftest import poll
from tests.e2e.runs_support import NOOP_BEHAVIOR
from worker.celery_app import configure


def _create(runtime, n: int = 1) -> int:
    with runtime.Session.begin() as session:
        if get_version(session, "noop") is None:
            save_behavior(session, NOOP_BEHAVIOR)
        run, _ = runs.create_run(session, "noop", {"n": n})
        return run.id


def _status(runtime, run_id: int) -> str:
    with runtime.Session() as session:
        return session.get(Run, run_id).status


def test_execute_and_duplicate_deliveries_run_once(settings, runtime, worker):
    from worker.tasks.runs import enqueue

    configure(settings, runtime)
    run_id = _create(runtime, 14)
    for _ in range(3):  # duplicate messages for one run
        assert enqueue(run_id)
    poll(lambda: _status(runtime, run_id) == "succeeded", 30, message="the run to succeed")
    with runtime.Session() as session:
        assert session.get(Run, run_id).result == 42
        assert session.scalar(select(func.count()).select_from(Attempt)) == 1


def test_dispatch_and_reconcile_tasks_send_due_runs(settings, runtime, worker):
    from worker.tasks import runs as tasks

    configure(settings, runtime)
    retrying, lost = _create(runtime), _create(runtime)
    with runtime.Session.begin() as session:
        row = session.get(Run, retrying)
        row.status, row.next_attempt_at = "retrying", utcnow() - timedelta(seconds=1)
        session.get(Run, lost).queued_at = utcnow() - timedelta(hours=1)
    # The broker has been up (its marker is there): only the due run is sent, not every queued.
    from shared.runs import broker_was_emptied

    broker_was_emptied(runtime.redis)
    assert tasks.dispatch_due() == 1
    assert tasks.reconcile() == 1  # the run whose message was never sent
    for run_id in (retrying, lost):
        poll(lambda r=run_id: _status(runtime, r) == "succeeded", 30, message=f"run {run_id}")


def test_enqueue_reports_a_dead_broker(settings, runtime, monkeypatch):
    from kombu.exceptions import OperationalError

    from worker.celery_app import celery
    from worker.tasks.runs import enqueue

    def refused(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(celery, "send_task", refused)
    assert enqueue(1) is False


def test_beat_ticks_are_registered(settings, runtime):
    app = configure(settings, runtime)
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"worker.runs.dispatch_due", "worker.runs.reconcile", "worker.runs.prune"} <= tasks


def test_beat_ticks_go_to_their_own_queue():
    from worker.beat import BEAT_QUEUE, beat_schedule

    schedule = beat_schedule()
    assert {"runs-dispatch-due", "runs-reconcile", "runs-prune"} <= set(schedule)
    assert {entry["options"]["queue"] for entry in schedule.values()} == {BEAT_QUEUE}
