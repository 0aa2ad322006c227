"""shared.runs: the outbox, claiming, attempts, recording, and the beat sweeps."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from shared import runs
from shared.behaviors.registry import behavior, unregister
from shared.config import RunTimings
from shared.models import Attempt, HttpExchange, Run, RunStep, utcnow

FAST = RunTimings(heartbeat_every=0.2, heartbeat_stale=2, queued_after=1, retry_base=0.1)


@pytest.fixture
def echo_behavior():
    calls: list[dict[str, Any]] = []

    @behavior(
        "test-echo",
        inputs={"email": {"type": "string", "required": True}, "n": {"type": "integer"}},
    )
    def echo(ctx: Any) -> Any:
        calls.append(dict(ctx.inputs))
        return {"echo": ctx.inputs["email"]}

    yield calls
    unregister("test-echo")


def _count(runtime: Any, model: Any = Run) -> int:
    with runtime.Session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_create_run_lists_every_problem_and_saves_nothing(runtime, echo_behavior):
    with runtime.Session.begin() as session:
        with pytest.raises(runs.PayloadInvalid) as info:
            runs.create_run(session, "test-echo", {"n": "x", "extra": 1})
    assert "payload.email: required" in info.value.problems
    assert any(p.startswith("payload.n:") for p in info.value.problems)
    assert any(p.startswith("payload.extra:") for p in info.value.problems)
    assert _count(runtime) == 0


def test_create_run_unknown_behavior(runtime):
    with runtime.Session.begin() as session, pytest.raises(runs.BehaviorNotFound):
        runs.create_run(session, "nope", {})


def test_payload_size_is_capped(runtime, echo_behavior):
    with runtime.Session.begin() as session, pytest.raises(runs.PayloadInvalid) as info:
        runs.create_run(session, "test-echo", {"email": "x" * 200_000})
    assert "limit" in info.value.problems[0]


def test_idempotency_key_returns_first_run(runtime, echo_behavior):
    with runtime.Session.begin() as session:
        first, created = runs.create_run(
            session, "test-echo", {"email": "a@x"}, idempotency_key="k"
        )
        first_id = first.id
    assert created
    with runtime.Session.begin() as session:
        again, created = runs.create_run(
            session, "test-echo", {"email": "b@x"}, idempotency_key="k"
        )
    assert not created and again.id == first_id


def test_twenty_concurrent_creates_with_one_key_make_one_run(runtime, echo_behavior):
    barrier = threading.Barrier(20)
    ids: list[int] = []
    errors: list[BaseException] = []

    def trigger() -> None:
        try:
            barrier.wait()
            with runtime.Session.begin() as session:
                run, _ = runs.create_run(
                    session, "test-echo", {"email": "a@x"}, idempotency_key="same"
                )
                ids.append(run.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=trigger) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(ids) == 20 and len(set(ids)) == 1
    assert _count(runtime) == 1


def _make(runtime: Any, **payload: Any) -> int:
    with runtime.Session.begin() as session:
        run, _ = runs.create_run(session, "test-echo", payload or {"email": "a@x"})
        return run.id


def _claim(runtime: Any, run_id: int, worker: str = "w1", timings: RunTimings = FAST):
    with runtime.Session.begin() as session:
        return runs.claim_for_execution(session, run_id, worker, timings=timings)


def test_claim_is_a_compare_and_swap(runtime, echo_behavior):
    run_id = _make(runtime)
    claim = _claim(runtime, run_id, "w1")
    assert claim is not None and claim.attempt == 1
    assert _claim(runtime, run_id, "w2") is None  # a duplicate delivery
    outcome = runs.execute_claimed(runtime, claim, timings=FAST)
    assert outcome.status == "succeeded"
    assert _claim(runtime, run_id, "w3") is None  # finished runs are ignored
    with runtime.Session() as session:
        run = session.get(Run, run_id)
        assert run.status == "succeeded" and run.result == {"echo": "a@x"}
        assert run.attempts == 1 and run.finished_at is not None
        steps = session.scalars(select(RunStep).where(RunStep.run_id == run_id)).all()
        assert [(s.key, s.status) for s in steps] == [("python", "succeeded")]
    assert echo_behavior == [{"email": "a@x", "n": None}] or echo_behavior[0]["email"] == "a@x"


def test_stale_running_run_is_claimed_again_in_the_same_attempt(runtime, echo_behavior):
    run_id = _make(runtime)
    first = _claim(runtime, run_id, "dead-worker")
    assert first is not None
    assert _claim(runtime, run_id, "w2") is None  # heartbeat is fresh
    with runtime.Session.begin() as session:
        session.get(Run, run_id).heartbeat_at = utcnow() - timedelta(seconds=10)
    second = _claim(runtime, run_id, "w2")
    assert second is not None and second.attempt_id == first.attempt_id
    # The dead worker's late outcome is fenced off.
    assert runs.finish_run(runtime, first, runs.Outcome("succeeded")).status == "lost"
    assert runs.execute_claimed(runtime, second, timings=FAST).status == "succeeded"
    assert _count(runtime, Attempt) == 1


def test_recorder_reuses_finished_steps_and_redacts(runtime, echo_behavior):
    run_id = _make(runtime)
    claim = _claim(runtime, run_id)
    recorder = runs.RunRecorder(runtime.Session, claim)
    assert recorder.completed("contact") == (False, None)
    recorder.start("contact", "salesforce.query")
    recorder.exchange(
        "contact",
        {
            "method": "GET",
            "url": "https://x.my.salesforce.com/services/data/v62.0/query?q=1",
            "status": 200,
            "duration_ms": 12.5,
            "request_headers": {"Authorization": "Bearer 00Dxx!secret", "Accept": "json"},
            "request_body": '{"refresh_token": "5Aep861secret"}',
            "response_headers": {},
            "response_body": "y" * 20_000,
        },
    )
    recorder.finish("contact", "succeeded", output={"totalSize": 1})
    assert recorder.completed("contact") == (True, {"totalSize": 1})
    with runtime.Session() as session:
        exchange = session.scalars(select(HttpExchange)).one()
        # The same redaction as the client's (shared.salesforce.redact): the scheme is kept.
        assert exchange.request_headers["Authorization"] == "Bearer [redacted]"
        assert "5Aep861secret" not in exchange.request_body
        assert len(exchange.response_body) < 8300
        assert exchange.step_id is not None and exchange.duration_ms == 12


def test_a_send_failed_as_outcome_unknown_is_not_sent_again_when_the_run_resumes(
    runtime, echo_behavior
):
    """The worker stopped after recording the step's outcome_unknown, before the run's end:
    the resumed attempt must see the unanswered send, not a failed step it may send again."""
    run_id = _make(runtime)
    first = _claim(runtime, run_id, "dead-worker")
    recorder = runs.RunRecorder(runtime.Session, first)
    recorder.start("case", "salesforce.create")
    recorder.mark_sent("case")
    recorder.exchange(
        "case",
        {
            "method": "POST",
            "url": "https://x.my.salesforce.com/services/data/v62.0/sobjects/Case",
            "status": None,
            "error": "timed out after 30s",
            "duration_ms": 30000,
            "request_headers": {},
            "response_headers": {},
        },
    )
    recorder.finish("case", "failed", error={"code": "outcome_unknown", "step": "case"})
    _die(runtime, run_id)  # ... and the worker is killed before the run's outcome is written
    second = _claim(runtime, run_id, "w2")
    assert second is not None and second.attempt_id == first.attempt_id
    resumed = runs.RunRecorder(runtime.Session, second)
    assert resumed.completed("case") == (False, None)
    prior = resumed.unfinished_send("case")
    assert prior is not None and prior.status is None  # the engine answers outcome_unknown


@pytest.mark.parametrize(
    ("status", "body", "reused"),
    [
        (201, '{"id": "500000000000001AAA", "success": true, "errors": []}', True),
        (200, "[" + ",".join(['{"id": "003000000000001AAA", "success": true}'] * 300) + "]", False),
        (401, '[{"errorCode": "INVALID_SESSION_ID"}]', False),
    ],
    ids=["small-answer-reused", "answer-cut-at-the-cap", "401-then-a-replay"],
)
def test_a_recorded_answer_stands_in_for_a_send_only_when_it_is_whole_and_final(
    runtime, echo_behavior, status, body, reused
):
    """Killed after a sent mark: a whole 2xx answer is reused; a body cut short at the 8 KB
    cap, or a 401 (which the client refreshes and replays unrecorded), is an unknown outcome."""
    run_id = _make(runtime)
    first = _claim(runtime, run_id, "dead-worker")
    recorder = runs.RunRecorder(runtime.Session, first)
    recorder.start("made", "salesforce.composite")
    recorder.mark_sent("made")
    recorder.exchange(
        "made",
        {
            "method": "POST",
            "url": "https://x.my.salesforce.com/services/data/v62.0/composite/sobjects",
            "status": status,
            "duration_ms": 40,
            "request_headers": {},
            "response_headers": {},
            "response_body": body,
        },
    )
    _die(runtime, run_id)
    resumed = runs.RunRecorder(runtime.Session, _claim(runtime, run_id, "w2"))
    assert resumed.completed("made") == (False, None)
    prior = resumed.unfinished_send("made")
    assert prior is not None
    assert prior.status == (status if reused else None)


def test_retry_opens_a_new_attempt_with_the_same_payload(runtime, echo_behavior):
    run_id = _make(runtime, email="keep@x")
    claim = _claim(runtime, run_id)
    runs.finish_run(runtime, claim, runs.Outcome("failed", error={"code": "x", "message": "m"}))
    with runtime.Session.begin() as session:
        with pytest.raises(runs.RunStateError):
            runs.cancel_run(session, run_id)
    with runtime.Session.begin() as session:
        runs.retry_run(session, run_id)
    claim = _claim(runtime, run_id)
    assert claim.attempt == 2 and claim.payload == {"email": "keep@x"}
    assert runs.execute_claimed(runtime, claim, timings=FAST).status == "succeeded"
    with runtime.Session() as session:
        run = session.get(Run, run_id)
        assert run.attempts == 2 and run.error is None
        assert [a.status for a in run.attempt_rows] == ["failed", "succeeded"]


def test_replay_creates_a_new_run(runtime, echo_behavior):
    run_id = _make(runtime, email="r@x")
    with runtime.Session.begin() as session:
        replay = runs.replay_run(session, run_id)
        assert replay.id != run_id
        assert replay.payload == {"email": "r@x"} and replay.replay_of_id == run_id


def test_cancel_queued_at_once_and_running_at_next_step(runtime, echo_behavior):
    queued = _make(runtime)
    with runtime.Session.begin() as session:
        assert runs.cancel_run(session, queued).status == "cancelled"
    assert _claim(runtime, queued) is None

    running = _make(runtime)
    claim = _claim(runtime, running)
    with runtime.Session.begin() as session:
        run = runs.cancel_run(session, running)
        assert run.status == "running" and run.cancel_requested
    assert runs.execute_claimed(runtime, claim, timings=FAST).status == "cancelled"
    with runtime.Session() as session:
        assert session.get(Run, running).status == "cancelled"


def test_reconcile_resends_lost_queued_and_dead_running(runtime, echo_behavior):
    lost = _make(runtime)
    fresh = _make(runtime)
    dead = _make(runtime)
    assert _claim(runtime, dead, "dead") is not None
    old = utcnow() - timedelta(seconds=60)
    with runtime.Session.begin() as session:
        session.get(Run, lost).queued_at = old
        session.get(Run, dead).heartbeat_at = old
    ids = runs.reconcile(runtime, timings=FAST)
    assert sorted(ids) == sorted([lost, dead])
    assert fresh not in ids
    with runtime.Session() as session:
        assert session.get(Run, dead).status == "queued"
    # Nothing is sent twice within the threshold.
    assert runs.reconcile(runtime, timings=FAST) == []


def test_dispatch_due_checks_room_for_waiting_runs(runtime, echo_behavior, linked_account):
    account_id = linked_account()
    retrying, waiting, later = _make(runtime), _make(runtime), _make(runtime)
    past = utcnow() - timedelta(seconds=1)
    with runtime.Session.begin() as session:
        session.get(Run, retrying).status = "retrying"
        session.get(Run, retrying).next_attempt_at = past
        for run_id in (waiting,):
            row = session.get(Run, run_id)
            row.status, row.next_attempt_at, row.account_id = "waiting", past, account_id
        row = session.get(Run, later)
        row.status, row.next_attempt_at = "retrying", utcnow() + timedelta(hours=1)
    asked: list[tuple[int, str]] = []

    def no_room(rt: Any, account: int, purpose: str = "trigger") -> bool:
        asked.append((account, purpose))
        return False

    assert runs.dispatch_due(runtime, check_room=no_room, timings=FAST) == [retrying]
    assert asked == [(account_id, "trigger")]
    with runtime.Session() as session:
        row = session.get(Run, waiting)
        assert row.status == "waiting" and row.next_attempt_at > utcnow()
        row.next_attempt_at = past
        session.commit()
    assert runs.dispatch_due(runtime, check_room=lambda *a, **k: True, timings=FAST) == [waiting]


def test_prune_deletes_only_old_finished_runs(runtime, echo_behavior):
    old, recent, active = _make(runtime), _make(runtime), _make(runtime)
    for run_id in (old, recent):
        runs.execute_claimed(runtime, _claim(runtime, run_id), timings=FAST)
    with runtime.Session.begin() as session:
        session.get(Run, old).finished_at = utcnow() - timedelta(days=40)
        session.get(Run, active).created_at = utcnow() - timedelta(days=40)
    with runtime.Session.begin() as session:
        assert runs.prune_runs(session, 30) == 1
    with runtime.Session() as session:
        assert session.get(Run, old) is None
        assert session.get(Run, recent) is not None and session.get(Run, active) is not None
        assert session.scalar(select(func.count()).select_from(RunStep)) == 1


def test_run_to_dict_matches_spec(runtime, echo_behavior):
    run_id = _make(runtime)
    runs.execute_claimed(runtime, _claim(runtime, run_id), timings=FAST)
    with runtime.Session() as session:
        data = runs.run_to_dict(session.get(Run, run_id))
    for key in (
        "id behavior status attempts payload result error steps created_at started_at "
        "finished_at next_attempt_at wait_reason behavior_version trigger idempotency_key"
    ).split():
        assert key in data
    step = data["steps"][0]
    assert {"id", "action", "status", "started_at", "finished_at"} <= set(step)


def test_cursor_round_trip():
    assert runs.decode_cursor(runs.encode_cursor(42)) == 42
    assert runs.decode_cursor("garbage!") is None


def _die(runtime: Any, run_id: int) -> None:
    """The run's worker stops heart-beating (it was killed)."""
    with runtime.Session.begin() as session:
        session.get(Run, run_id).heartbeat_at = utcnow() - timedelta(seconds=10)


@pytest.mark.parametrize("via", ["claim", "reconcile"])
def test_a_run_whose_worker_keeps_dying_fails_after_n_resumptions(runtime, echo_behavior, via):
    timings = RunTimings(heartbeat_stale=2, max_resumptions=2)
    run_id = _make(runtime)
    assert _claim(runtime, run_id, "w0", timings) is not None
    for n in (1, 2):
        _die(runtime, run_id)
        if via == "reconcile":
            assert runs.reconcile(runtime, timings=timings) == [run_id]
        claim = _claim(runtime, run_id, f"w{n}", timings)
        assert claim is not None and claim.attempt == 1
    _die(runtime, run_id)
    if via == "reconcile":
        runs.reconcile(runtime, timings=timings)
    assert _claim(runtime, run_id, "w3", timings) is None
    with runtime.Session() as session:
        run = session.get(Run, run_id)
        assert (run.status, run.resumptions, run.error["code"]) == ("failed", 3, "worker_lost")
        assert "resumed 2 times" in run.error["message"]
        attempt = session.scalars(select(Attempt).where(Attempt.run_id == run_id)).one()
        assert attempt.status == "failed" and attempt.finished_at is not None
    # A person's Retry starts over with a new attempt and a fresh count.
    with runtime.Session.begin() as session:
        runs.retry_run(session, run_id)
    claim = _claim(runtime, run_id, "w4", timings)
    assert claim is not None and claim.attempt == 2


def test_the_deadline_counts_from_the_attempt_start_not_the_resumption(runtime):
    @behavior("test-slow", timeout_seconds=60)
    def slow(ctx: Any) -> Any:
        return "ran"

    try:
        with runtime.Session.begin() as session:
            run, _ = runs.create_run(session, "test-slow", {})
            run_id = run.id
        assert _claim(runtime, run_id, "w0") is not None
        with runtime.Session.begin() as session:
            attempt = session.scalars(select(Attempt).where(Attempt.run_id == run_id)).one()
            attempt.started_at = utcnow() - timedelta(seconds=61)  # it has been going a while
        _die(runtime, run_id)
        claim = _claim(runtime, run_id, "w1")
        assert claim is not None
        outcome = runs.execute_claimed(runtime, claim, timings=FAST)
        assert outcome.status == "failed" and outcome.error["code"] == "timeout", outcome
    finally:
        unregister("test-slow")


def _old_finished(runtime: Any, count: int) -> None:
    long_ago = utcnow() - timedelta(days=40)
    with runtime.Session.begin() as session:
        session.execute(
            Run.__table__.insert(),
            [
                {
                    "behavior_name": "test-echo",
                    "status": "succeeded",
                    "trigger": "api",
                    "payload": {},
                    "attempts": 1,
                    "max_attempts": 5,
                    "retries": 0,
                    "resumptions": 0,
                    "cancel_requested": False,
                    "created_at": long_ago,
                    "finished_at": long_ago,
                }
                for _ in range(count)
            ],
        )


def test_pruning_deletes_past_one_batch_within_its_budget(runtime):
    _old_finished(runtime, 2_500)
    assert runs.prune_old_runs(runtime, 30, batch=1000) == 2_500
    assert _count(runtime) == 0


def test_pruning_stops_at_its_time_budget(runtime):
    _old_finished(runtime, 2_500)
    assert runs.prune_old_runs(runtime, 30, batch=1000, budget_seconds=0) == 1000
    assert _count(runtime) == 1_500


def test_reconcile_backs_off_resends_and_keeps_the_first_queued_time(runtime, echo_behavior):
    timings = RunTimings(queued_after=60)
    run_id = _make(runtime)
    first_queued = utcnow() - timedelta(seconds=61)
    with runtime.Session.begin() as session:
        session.get(Run, run_id).queued_at = first_queued

    def resent_after(seconds_since_last_send: float) -> bool:
        with runtime.Session.begin() as session:
            run = session.get(Run, run_id)
            if run.sent_at is not None:
                run.sent_at = utcnow() - timedelta(seconds=seconds_since_last_send)
        return runs.reconcile(runtime, timings=timings) == [run_id]

    assert resent_after(0)  # 61 s queued, never re-sent: send
    assert not resent_after(0)  # not again in the same minute
    with runtime.Session.begin() as session:
        run = session.get(Run, run_id)
        run.queued_at = first_queued = utcnow() - timedelta(seconds=600)
        run.sent_at = utcnow() - timedelta(seconds=100)  # last sent after 500 s in the queue
    # The next re-send waits as long as the run had waited (capped at 5 x 60 s), not 60 s.
    assert not runs.reconcile(runtime, timings=timings)
    assert resent_after(301)
    with runtime.Session() as session:
        run = session.get(Run, run_id)
        # The first-queued time is what the page and /metrics age is measured from.
        assert abs((run.queued_at - first_queued).total_seconds()) < 1
        assert (utcnow() - run.sent_at).total_seconds() < 5


def test_an_emptied_broker_is_noticed_once(runtime):
    runtime.redis.delete(runs.maintenance.BROKER_MARKER)
    assert runs.broker_was_emptied(runtime.redis) is True
    assert runs.broker_was_emptied(runtime.redis) is False
    runtime.redis.flushdb()
    assert runs.broker_was_emptied(runtime.redis) is True


def _waiting(runtime: Any, account_id: int) -> int:
    run_id = _make(runtime)
    with runtime.Session.begin() as session:
        row = session.get(Run, run_id)
        row.status, row.account_id = "waiting", account_id
        row.next_attempt_at = utcnow() + timedelta(hours=1)  # not even due yet
    return run_id


def test_waiting_runs_of_an_account_needing_reauth_fail_with_its_reason(
    runtime, echo_behavior, linked_account
):
    from shared.models import Account

    account_id = linked_account()
    run_id = _waiting(runtime, account_id)
    assert _claim(runtime, run_id) is None  # waiting, and not due
    with runtime.Session.begin() as session:
        account = session.get(Account, account_id)
        account.status, account.status_reason = "needs_reauth", "the refresh token was revoked"
    runs.dispatch_due(runtime, check_room=lambda *a, **k: True, timings=FAST)
    with runtime.Session() as session:
        run = session.get(Run, run_id)
        assert run.status == "failed" and run.finished_at is not None
        assert run.error["code"] == "needs_reauth"
        assert "acme-prod" in run.error["message"] and "revoked" in run.error["message"]


def test_has_room_is_cached_briefly_per_account(
    runtime, echo_behavior, linked_account, monkeypatch
):
    from shared.runs import maintenance
    from shared.salesforce import limits

    account_id = linked_account()
    asked: list[int] = []

    def check_room(rt: Any, account: int, purpose: str = "trigger") -> bool:
        asked.append(account)
        return False

    monkeypatch.setattr(limits, "check_room", check_room)
    monkeypatch.setattr(maintenance, "_room_cache", {})
    ids = [_waiting(runtime, account_id) for _ in range(3)]
    for _ in range(2):  # two ticks, three due runs each
        with runtime.Session.begin() as session:
            for run_id in ids:
                session.get(Run, run_id).next_attempt_at = utcnow() - timedelta(seconds=1)
        assert runs.dispatch_due(runtime, timings=FAST) == []
    assert asked == [account_id]
