"""Our own infrastructure failing (Redis, the database) never fails a run for good, and
bookkeeping after a response never replaces the response."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy.exc import OperationalError

from shared import runs
from shared.models import Run
from tests.conftest import WorkerProcess, make_settings, poll, settings_env

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    BeatProcess,
    no_default_worker_fixture,
    run_dict,
    save,
    statuses,
    trigger,
)
from .test_runs_durability import CASE_BEHAVIOR

CASES = "/services/data/v62.0/sobjects/Case"


def _execute_inline(runtime: Any, run_id: int) -> runs.Outcome:
    with runtime.Session.begin() as session:
        claim = runs.claim_for_execution(session, run_id, "inline:1")
    assert claim is not None
    return runs.execute_claimed(runtime, claim)


def _cases(sim: Any, subject: str) -> list[dict[str, Any]]:
    return [c for c in sim.control.records("Case") if c.get("Subject") == subject]


def _database_down(*_: Any, **__: Any) -> None:
    raise OperationalError("INSERT INTO http_exchanges", {}, Exception("server closed"))


def _redis_down(*_: Any, **__: Any) -> None:
    raise redis_lib.exceptions.ConnectionError("Connection refused")


@pytest.mark.parametrize(
    "target, failure",
    [
        ("shared.runs.recorder.RunRecorder.exchange", _database_down),
        ("shared.salesforce.limits.ConcurrencyCap.release", _redis_down),
    ],
    ids=["exchange-recorder", "cap-release"],
)
def test_bookkeeping_failure_after_201_keeps_the_response(
    runtime, sim, linked_account, monkeypatch, target, failure
):
    linked_account()
    save(runtime, CASE_BEHAVIOR)
    with runtime.Session.begin() as session:
        run, _ = runs.create_run(session, "open-case", {"subject": "Bookkeeping"})
        run_id = run.id
    monkeypatch.setattr(target, failure)

    outcome = _execute_inline(runtime, run_id)

    data = run_dict(runtime, run_id)
    assert outcome.status == "succeeded" and data["status"] == "succeeded", data
    assert [(s["id"], s["status"]) for s in data["steps"]] == [
        ("case", "succeeded"),
        ("check", "succeeded"),
    ]
    cases = _cases(sim, "Bookkeeping")
    assert len(cases) == 1 and data["result"] == cases[0]["Id"]


def test_operational_error_retries_without_spending_a_retry(runtime, sim, linked_account):
    """A database error inside a step is waited out (retrying), not `internal_error`."""
    linked_account()
    save(runtime, CASE_BEHAVIOR)
    with runtime.Session.begin() as session:
        run, _ = runs.create_run(session, "open-case", {"subject": "DB blip"})
        run_id = run.id
    calls = {"n": 0}
    original = runs.RunRecorder.start

    def flaky_start(self: Any, key: str, action: str) -> None:
        calls["n"] += 1
        if key == "check" and calls["n"] == 2:
            _database_down()
        original(self, key, action)

    runs.RunRecorder.start = flaky_start  # type: ignore[method-assign]
    try:
        first = _execute_inline(runtime, run_id)
        assert first.status == "retrying", first
        data = run_dict(runtime, run_id)
        assert data["status"] == "retrying" and data["retries"] == 0, data
        assert data["error"]["code"] == "infrastructure_error", data
        assert "server closed" in data["error"]["message"]
        with runtime.Session.begin() as session:
            session.get(Run, run_id).next_attempt_at = None  # due now
        second = _execute_inline(runtime, run_id)
    finally:
        runs.RunRecorder.start = original  # type: ignore[method-assign]
    assert second.status == "succeeded", run_dict(runtime, run_id)
    assert len(_cases(sim, "DB blip")) == 1


class PrivateRedis:
    """A redis-server of this test only, so stopping it disturbs nobody else."""

    def __init__(self, directory: Any) -> None:
        from forcebot.supervisor import free_port

        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from forcebot.supervisor import embedded_redis_command, wait_for_port

        self.process = subprocess.Popen(
            embedded_redis_command(self.directory, self.port), stdout=subprocess.DEVNULL
        )
        assert wait_for_port("127.0.0.1", self.port, 15), "private Redis did not start"

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def test_redis_stopped_mid_load_every_run_succeeds(
    runtime, settings, sim, linked_account, no_default_worker, private_redis
):
    from shared.runtime import Runtime

    linked_account()
    save(runtime, CASE_BEHAVIOR)
    own = make_settings(settings.database_url, private_redis.url, settings.instance_dir)
    env = {**settings_env(own), **FAST_ENV}
    worker = WorkerProcess(env, concurrency=2, name="blip")
    beat = None
    own_runtime = Runtime(own)
    try:
        worker.start()
        beat = BeatProcess(env)
        # Slow calls, so that runs are in the middle of their steps when Redis goes away.
        sim.control.add_fault(CASES, count=200, status=None, delay_seconds=0.3)
        ids = [trigger(own_runtime, "open-case", {"subject": f"blip {n}"}) for n in range(20)]
        poll(
            lambda: statuses(runtime).get("succeeded", 0) >= 2,
            60,
            0.1,
            message="the first runs to finish",
        )
        private_redis.kill()
        time.sleep(5)  # the outage itself: a duration, not a synchronisation
        private_redis.start()

        def finished() -> bool:
            counts = statuses(runtime)
            return sum(counts.get(s, 0) for s in ("succeeded", "failed", "cancelled")) == 20

        poll(finished, 180, 0.5, message=f"20 runs to finish (now {statuses(runtime)})")
        failed = [
            run_dict(runtime, i) for i in ids if run_dict(runtime, i)["status"] != "succeeded"
        ]
        assert failed == [], [(d["id"], d["error"]) for d in failed]
        for n in range(20):
            assert len(_cases(sim, f"blip {n}")) == 1, n
    finally:
        if beat is not None:
            beat.stop()
        worker.stop()
        own_runtime.close()
