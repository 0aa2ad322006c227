"""Beat's ticks stay on time while every run slot is taken by long runs.

Real processes: a `forcebot worker` (concurrency 2, the default queues) whose two slots are
held by runs waiting on a loopback endpoint that does not answer, a third run queued behind
them, `forcebot beat`, and — in the first case — a `forcebot worker --queues forcebot.beat`
as docker-compose's `beat-worker` runs it. While the pool is saturated, a schedule due every
2 s must keep firing or skipping its slots, and reconcile must re-queue a run whose worker
died. The second case is the control: without a worker free for the beat queue the same
ticks wait behind the long runs (what every tick did before beat had its own queue, and what
a single worker consuming both queues still does).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select, update

from shared import runs
from shared.models import Run, Schedule, utcnow
from tests.conftest import WorkerProcess, poll, settings_env
from worker.beat import BEAT_QUEUE

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    NOOP_BEHAVIOR,
    BeatProcess,
    no_default_worker_fixture,
    save,
    trigger,
)


class _Held:
    """A loopback endpoint whose GETs are answered only when the test releases them."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.in_flight += 1
                outer.release.wait(110)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hold"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held() -> Iterator[_Held]:
    endpoint = _Held()
    yield endpoint
    endpoint.close()


class BeatQueueWorker(WorkerProcess):
    """`forcebot worker --queues forcebot.beat --concurrency 1` (docker-compose's beat-worker)."""

    def start(self) -> None:
        import redis as redis_lib

        from worker.celery_app import celery, use_broker

        self.hostname_prefix = f"{self.name}-{uuid.uuid4().hex[:6]}@"
        self.spawn(
            "worker",
            "--queues",
            BEAT_QUEUE,
            "--concurrency",
            "1",
            "--name",
            f"{self.hostname_prefix}%h",
            "--loglevel",
            "INFO",
        )
        client = redis_lib.Redis.from_url(self.env["FORCEBOT_REDIS_URL"])
        use_broker(self.env["FORCEBOT_REDIS_URL"])
        keys: list[str] = []

        def answered() -> bool:
            keys.append(uuid.uuid4().hex)
            celery.send_task("worker.health.ping", args=[keys[-1]], queue=BEAT_QUEUE)
            return any(
                (client.get(f"forcebot:ping:{k}") or b"").decode().startswith(self.hostname_prefix)
                for k in keys
            )

        try:
            poll(answered, 60, 0.5, f"the beat-queue worker; log: {self.log_tail()}")
        finally:
            client.close()


def hold_behavior(url: str) -> str:
    return f"""
name: hold-slot
steps:
  - id: wait
    action: http.request
    account: none
    method: GET
    url: {url}
    timeout: 115
"""


def _status(runtime: Any, run_id: int) -> tuple[str, int]:
    with runtime.Session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run.status, run.resumptions


def _handled_slots(runtime: Any, schedule_id: int) -> int:
    """Slots the schedule's ticks dealt with: fired (a run) or skipped (counted)."""
    with runtime.Session() as session:
        fired = session.scalar(
            select(func.count()).select_from(Run).where(Run.schedule_id == schedule_id)
        )
        schedule = session.get(Schedule, schedule_id)
        assert schedule is not None
        return int(fired or 0) + int(schedule.skipped_slots or 0)


def _ghost(runtime: Any) -> int:
    """A run whose worker died: running, heartbeat long stale."""
    with runtime.Session.begin() as session:
        run, _ = runs.create_run(session, "noop", {"n": 1})
        session.flush()
        session.execute(
            update(Run)
            .where(Run.id == run.id)
            .values(
                status="running",
                worker="ghost@nowhere",
                attempts=1,
                heartbeat_at=utcnow() - timedelta(minutes=5),
            )
        )
        return run.id


def _observe(check: Callable[[], bool], seconds: float) -> bool:
    """Whether `check` became true within a measuring window of `seconds` (polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


@pytest.mark.parametrize("beat_worker", [True, False], ids=["beat-worker", "control"])
def test_beat_ticks_run_on_time_while_the_run_pool_is_saturated(
    runtime, settings, no_default_worker, worker_factory, held, beat_worker
):
    save(runtime, NOOP_BEHAVIOR)
    save(runtime, hold_behavior(held.url))
    env = {**settings_env(settings), **FAST_ENV}
    worker_factory(concurrency=2, name="runs", FORCEBOT_HTTP_ALLOW_HOSTS="127.0.0.1", **FAST_ENV)
    extra = BeatQueueWorker(env, name="beatq") if beat_worker else None
    beat = None
    try:
        if extra is not None:
            extra.start()
        long_runs = [trigger(runtime, "hold-slot", {}) for _ in range(3)]
        poll(lambda: held.in_flight >= 2, 60, 0.1, "both run slots to be held")
        assert [_status(runtime, r)[0] for r in long_runs].count("running") == 2

        beat = BeatProcess(env)
        with runtime.Session.begin() as session:
            from shared.schedules import save_schedule

            schedule_id = save_schedule(
                session,
                {"name": "tick", "behavior": "noop", "every_seconds": 2, "payload": {"n": 1}},
            ).id
        ghost = _ghost(runtime)
        started = time.monotonic()

        requeued = _observe(lambda: _status(runtime, ghost) == ("queued", 1), 10)
        # 4+ slots of 2 s within ~12 s of the schedule's creation (beat's own start included).
        kept_up = _observe(
            lambda: _handled_slots(runtime, schedule_id) >= 4, 12 - (time.monotonic() - started)
        )
        still_saturated = held.in_flight == 2 and not held.release.is_set()
        assert still_saturated
        if beat_worker:
            assert requeued, (
                f"reconcile did not run; beat-worker log: {extra.log_tail() if extra else ''}"
            )
            assert kept_up, _handled_slots(runtime, schedule_id)
        else:
            # The control: the ticks sit behind the long runs in the saturated pool.
            assert not requeued and not kept_up, _handled_slots(runtime, schedule_id)
    finally:
        held.release.set()
        if beat is not None:
            beat.stop()
        if extra is not None:
            extra.stop()
