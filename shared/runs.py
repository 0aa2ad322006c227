"""Runs: the outbox of queued work, and everything that moves a run between statuses.

A run row is committed before its Celery message is sent, so losing the message loses nothing:
`reconcile()` sends runs that sat `queued` too long again, and re-queues runs whose worker
stopped heart-beating. A message is only a hint — `claim_for_execution()` is a compare-and-swap
on the row, so duplicate deliveries and two dispatchers are harmless.

    queued ──claim──► running ──► succeeded | failed | cancelled
       ▲                 │
       │                 ├─ retryable fault ──► retrying (next_attempt_at = now + back-off)
       └── dispatch_due ─┤
                         └─ daily limit spent / quota reserve ──► waiting (looks at /limits again)

Attempts: the first execution opens attempt 1. A resumption after a worker crash or a
transient wait continues the open attempt, whose finished steps are not executed again; a
user's *Retry* of a failed run opens a new attempt with the same payload; *Replay* makes a
new run. Functions take the caller's session and never commit, except `execute_claimed()`
and `RunRecorder`, which own their short transactions because a crash must leave every
finished step durable.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from shared.behaviors import engine
from shared.behaviors.definition import text_problem
from shared.behaviors.store import LoadedBehavior, load_behavior, validate_payload
from shared.config import RunTimings, run_timings
from shared.models import Account, Attempt, HttpExchange, Run, RunStep, isoformat, utcnow
from shared.models.runs import (
    ACTIVE,
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RETRYING,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    WAITING,
)
from shared.salesforce import SalesforceClient, errors
from shared.salesforce.redact import redact_body, redact_headers, redact_url
from shared.salesforce.retry import backoff_delay

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("forcebot.runs")

__all__ = [
    "BehaviorNotFound",
    "Outcome",
    "PayloadInvalid",
    "RunRecorder",
    "RunStateError",
    "cancel_run",
    "claim_for_execution",
    "create_run",
    "decode_cursor",
    "dispatch_due",
    "encode_cursor",
    "execute_claimed",
    "prune_runs",
    "reconcile",
    "replay_run",
    "retry_run",
    "run_to_dict",
]

SCHEDULED_TRIGGERS = ("schedule", "sync")
MAX_IDEMPOTENCY_KEY = 255
SKIPPED = "skipped"
CANCELLED_BY_USER = {"code": "cancelled", "message": "cancelled by a user"}


class PayloadInvalid(Exception):
    """The payload does not fit the behavior's inputs; `.problems` lists each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class BehaviorNotFound(Exception):
    """No stored or Python behavior has this name."""


class RunStateError(Exception):
    """The run's status does not allow the operation (e.g. retrying a running run)."""


# --------------------------------------------------------------------------- creating


def create_run(
    session: Session,
    behavior_name: str,
    payload: Any,
    *,
    trigger: str = "api",
    idempotency_key: str | None = None,
    schedule_id: int | None = None,
    sync_id: int | None = None,
    replay_of_id: int | None = None,
    default_max_attempts: int = 5,
) -> tuple[Run, bool]:
    """Validate and insert a queued run; with a known idempotency key return the first run.

    The caller commits and only then sends the message (`worker.tasks.runs.enqueue`).
    """
    if idempotency_key is not None:
        if not isinstance(idempotency_key, str) or not idempotency_key.strip():
            raise PayloadInvalid(["idempotency_key: expected a non-empty string"])
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise PayloadInvalid([f"idempotency_key: longer than {MAX_IDEMPOTENCY_KEY}"])
        problem = text_problem(idempotency_key)
        if problem:
            raise PayloadInvalid([f"idempotency_key: {problem}"])
        existing = _by_key(session, behavior_name, idempotency_key)
        if existing is not None:
            return existing, False
    behavior = load_behavior(session, behavior_name)
    if behavior is None:
        raise BehaviorNotFound(behavior_name)
    if payload is None:
        payload = {}
    _, problems = validate_payload(behavior, payload)  # the size limit too
    if problems:
        raise PayloadInvalid(problems)
    now = utcnow()
    run = Run(
        behavior_name=behavior_name,
        behavior_version=behavior.version,
        status=QUEUED,
        trigger=trigger,
        payload=payload,
        idempotency_key=idempotency_key,
        max_attempts=behavior.max_attempts or default_max_attempts,
        account_id=_account_id(session, behavior.account),
        schedule_id=schedule_id,
        sync_id=sync_id,
        replay_of_id=replay_of_id,
        created_at=now,
        queued_at=now,
        attempts=0,
        retries=0,
    )
    if idempotency_key is None:
        session.add(run)
        session.flush()
        return run, True
    # A unique constraint, not check-then-insert: of concurrent requests with one key exactly
    # one insert wins; the others roll back to the savepoint and return the winner's run.
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        existing = _by_key(session, behavior_name, idempotency_key)
        if existing is None:
            raise
        return existing, False
    return run, True


def _by_key(session: Session, behavior_name: str, key: str) -> Run | None:
    return session.scalars(
        select(Run).where(Run.behavior_name == behavior_name, Run.idempotency_key == key)
    ).one_or_none()


def _account_id(session: Session, name: str | None) -> int | None:
    if not name:
        return None
    return session.scalar(select(Account.id).where(Account.name == name))


def retry_run(session: Session, run_id: int) -> Run:
    """Queue a failed or cancelled run again; its next execution opens a new attempt."""
    run = _get(session, run_id)
    if run.status not in (FAILED, CANCELLED):
        raise RunStateError(f"run {run_id} is {run.status}; only failed or cancelled runs retry")
    now = utcnow()
    run.status = QUEUED
    run.queued_at = now
    run.retries = 0
    run.error = None
    run.result = None
    run.finished_at = None
    run.next_attempt_at = None
    run.wait_reason = None
    run.cancel_requested = False
    run.worker = None
    session.flush()
    return run


def replay_run(session: Session, run_id: int, *, default_max_attempts: int = 5) -> Run:
    """Create a new run of the same behavior from the same payload."""
    original = _get(session, run_id)
    run, _ = create_run(
        session,
        original.behavior_name,
        original.payload,
        trigger="replay",
        replay_of_id=original.id,
        default_max_attempts=default_max_attempts,
    )
    return run


def cancel_run(session: Session, run_id: int) -> Run:
    """Cancel a queued/retrying/waiting run now; ask a running one to stop at its next step."""
    run = _get(session, run_id)
    if run.status in FINISHED:
        raise RunStateError(f"run {run_id} already {run.status}")
    if run.status == RUNNING:
        run.cancel_requested = True
        session.flush()
        return run
    # Compare-and-swap: a worker may claim the run between our read and this write.
    cancelled = _cancel_where(session, run_id, Run.status.in_((QUEUED, RETRYING, WAITING)))
    session.refresh(run)
    if not cancelled and run.status == RUNNING:
        run.cancel_requested = True
        session.flush()
    return run


def _get(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"run {run_id} not found")
    return run


def _cancel_where(session: Session, run_id: int, condition: ColumnElement[bool]) -> bool:
    """End the run as cancelled if `condition` still holds (and its open attempt); True if so."""
    now = utcnow()
    changed = session.execute(
        update(Run)
        .where(Run.id == run_id, condition)
        .values(status=CANCELLED, finished_at=now, next_attempt_at=None, error=CANCELLED_BY_USER)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed:
        session.execute(
            update(Attempt)
            .where(Attempt.run_id == run_id, Attempt.finished_at.is_(None))
            .values(status=CANCELLED, finished_at=now, error=CANCELLED_BY_USER)
            .execution_options(synchronize_session=False)
        )
    return bool(changed)


# --------------------------------------------------------------------------- claiming


@dataclass
class Claim:
    """What a worker needs after claiming, detached from the claiming session."""

    run_id: int
    attempt_id: int
    attempt: int
    behavior_name: str
    behavior_version: int | None
    payload: dict[str, Any]
    trigger: str
    account_id: int | None
    max_attempts: int
    retries: int
    worker: str


def claim_for_execution(
    session: Session, run_id: int, worker_name: str, *, timings: RunTimings | None = None
) -> Claim | None:
    """Take the run for `worker_name` if it is runnable now; None when someone else has it.

    Runnable: queued; retrying or waiting and due; or running with a stale heartbeat (its
    worker died). A finished run is never claimed, so a duplicate delivery is a no-op.
    """
    timings = timings or run_timings()
    now = utcnow()
    stale = now - timedelta(seconds=timings.heartbeat_stale)
    dead = and_(Run.status == RUNNING, or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < stale))
    # A cancel asked of a run whose worker died (or that is between tries) ends it here.
    between_tries = Run.status.in_((QUEUED, RETRYING, WAITING))
    asked = Run.cancel_requested.is_(True)
    if _cancel_where(session, run_id, and_(asked, or_(between_tries, dead))):
        return None
    claimable = or_(
        Run.status == QUEUED,
        and_(
            Run.status.in_((RETRYING, WAITING)),
            or_(Run.next_attempt_at.is_(None), Run.next_attempt_at <= now),
        ),
        dead,
    )
    changed = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.cancel_requested.is_(False), claimable)
        .values(status=RUNNING, worker=worker_name, heartbeat_at=now, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        return None
    run = session.get(Run, run_id, populate_existing=True)
    assert run is not None
    if run.started_at is None:
        run.started_at = now
    attempt = session.scalars(
        select(Attempt)
        .where(Attempt.run_id == run_id, Attempt.finished_at.is_(None))
        .order_by(Attempt.number.desc())
    ).first()
    if attempt is None:
        run.attempts += 1
        run.retries = 0
        attempt = Attempt(run_id=run_id, number=run.attempts)
        session.add(attempt)
    attempt.status = RUNNING
    attempt.worker = worker_name
    session.flush()
    return Claim(
        run_id=run.id,
        attempt_id=attempt.id,
        attempt=attempt.number,
        behavior_name=run.behavior_name,
        behavior_version=run.behavior_version,
        payload=dict(run.payload or {}),
        trigger=run.trigger,
        account_id=run.account_id,
        max_attempts=run.max_attempts,
        retries=run.retries,
        worker=worker_name,
    )


# --------------------------------------------------------------------------- recording steps


def _jsonable(value: Any) -> Any:
    """A JSON column value: round-trip through json so datetimes and the like become strings."""
    if value is None:
        return None
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


class RunRecorder:
    """The engine's StepRecorder: RunStep and HttpExchange rows of one attempt.

    Every write commits at once in its own short transaction so that a worker killed in the
    middle of a step leaves every earlier step recorded as finished.
    """

    def __init__(self, factory: sessionmaker[Session], claim: Claim) -> None:
        self.factory = factory
        self.claim = claim
        # Step row ids of this attempt by key; None when `completed` found no row.
        self.step_ids: dict[str, int | None] = {}
        self.current: str | None = None
        self.account_id: int | None = None  # of the last client handed out
        self.progress: dict[str, Any] | None = None  # only this worker writes it while running

    def completed(self, key: str) -> tuple[bool, Any]:
        with self.factory() as session:
            row = session.execute(
                select(RunStep.id, RunStep.status, RunStep.output).where(self._where(key))
            ).one_or_none()
        self.step_ids[key] = row.id if row else None
        if row is not None and row.status in (SUCCEEDED, SKIPPED):
            return True, row.output
        return False, None

    def start(self, key: str, action: str) -> None:
        now = utcnow()
        with self.factory.begin() as session:
            step_id = self._step_id(session, key)
            if step_id is None:
                step = RunStep(
                    run_id=self.claim.run_id,
                    attempt_id=self.claim.attempt_id,
                    key=key[:255],
                    action=action[:64],
                    status=RUNNING,
                    started_at=now,
                )
                session.add(step)
                session.flush()
                self.step_ids[key] = step.id
            else:
                # A retried step keeps its row (and its earlier HTTP exchanges, which show the
                # faults that made us wait).
                session.execute(
                    update(RunStep)
                    .where(RunStep.id == step_id)
                    .values(status=RUNNING, started_at=now, finished_at=None, error=None)
                )
            if self.progress is None:
                stored = session.scalar(select(Run.progress).where(Run.id == self.claim.run_id))
                self.progress = dict(stored or {})
            self.progress["current_step"] = key
            session.execute(
                update(Run).where(Run.id == self.claim.run_id).values(progress=dict(self.progress))
            )
        self.current = key

    def finish(
        self, key: str, status: str, output: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        with self.factory.begin() as session:
            step_id = self._step_id(session, key)
            if step_id is None:
                return
            session.execute(
                update(RunStep)
                .where(RunStep.id == step_id)
                .values(
                    status=status,
                    finished_at=utcnow(),
                    output=_jsonable(output),
                    error=_jsonable(error),
                )
            )

    def exchange(self, key: str, summary: dict[str, Any]) -> None:
        # The client's summaries arrive redacted; redacting again the same way changes nothing
        # then, and keeps a secret out of the table whoever calls this.
        account_id = summary.get("account_id")
        duration = summary.get("duration_ms")
        with self.factory.begin() as session:
            session.add(
                HttpExchange(
                    run_id=self.claim.run_id,
                    step_id=self._step_id(session, key) if key else None,
                    account_id=account_id if isinstance(account_id, int) else None,
                    method=str(summary.get("method") or "GET")[:10],
                    url=redact_url(str(summary.get("url") or "")),
                    status=summary.get("status"),
                    duration_ms=int(duration) if isinstance(duration, int | float) else None,
                    request_headers=redact_headers(summary.get("request_headers")),
                    request_body=redact_body(summary.get("request_body")),
                    response_headers=redact_headers(summary.get("response_headers")),
                    response_body=redact_body(summary.get("response_body")),
                    error=redact_body(summary.get("error")),
                )
            )

    def should_stop(self) -> bool:
        with self.factory() as session:
            return bool(
                session.scalar(select(Run.cancel_requested).where(Run.id == self.claim.run_id))
            )

    def _where(self, key: str) -> ColumnElement[bool]:
        return and_(RunStep.attempt_id == self.claim.attempt_id, RunStep.key == key[:255])

    def _step_id(self, session: Session, key: str) -> int | None:
        """The step row's id: remembered from `completed` or `start`, else looked up."""
        if key not in self.step_ids:
            self.step_ids[key] = session.scalar(select(RunStep.id).where(self._where(key)))
        return self.step_ids[key]


class Heartbeat:
    """A thread that touches `runs.heartbeat_at` while this worker holds the run."""

    def __init__(self, factory: sessionmaker[Session], claim: Claim, every: float) -> None:
        self.factory = factory
        self.claim = claim
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._loop, name=f"heartbeat-run-{claim.run_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stopped.set()
        self.thread.join(timeout=self.every + 5)

    def _loop(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                with self.factory.begin() as session:
                    session.execute(
                        update(Run)
                        .where(
                            Run.id == self.claim.run_id,
                            Run.worker == self.claim.worker,
                            Run.status == RUNNING,
                        )
                        .values(heartbeat_at=utcnow())
                    )
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next tick
                log.warning("run=%s heartbeat failed", self.claim.run_id, exc_info=True)


# --------------------------------------------------------------------------- executing


@dataclass
class Outcome:
    """How an execution ended; `requeue_in` asks the caller to send the run again soon."""

    status: str
    requeue_in: float | None = None
    error: dict[str, Any] | None = None
    result: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class _RunLog(logging.LoggerAdapter[logging.Logger]):
    """Prefix the engine's and Python behaviors' log lines with `run=ID`."""

    def __init__(self, logger: logging.Logger, run_id: int) -> None:
        super().__init__(logger, {"run": run_id})
        self.prefix = f"run={run_id} "

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return self.prefix + str(msg), kwargs


class _EqualJitter:
    """Uniform in the upper half of the range: jittered, yet each wait is at least the last."""

    def uniform(self, a: float, b: float) -> float:
        return random.uniform(a + (b - a) / 2, b)


def backoff(retry_number: int, retry_after: float | None, timings: RunTimings) -> float:
    """Exponential back-off with jitter for retry `retry_number`, honouring Retry-After."""
    return backoff_delay(
        retry_number,
        base=timings.retry_base,
        cap=timings.retry_cap,
        retry_after=retry_after,
        rng=_EqualJitter(),
    )


def execute_claimed(
    runtime: Runtime,
    claim: Claim,
    *,
    timings: RunTimings | None = None,
    client_factory: Callable[..., Any] | None = None,
) -> Outcome:
    """Run the claimed attempt through the behavior engine and record how it ended."""
    timings = timings or run_timings()
    factory = runtime.Session
    recorder = RunRecorder(factory, claim)
    with factory() as session:
        behavior = load_behavior(session, claim.behavior_name, claim.behavior_version)
    if behavior is None:
        return finish_run(
            runtime,
            claim,
            Outcome(
                FAILED,
                error={
                    "code": "behavior_not_found",
                    "message": f"behavior {claim.behavior_name!r} no longer exists",
                },
            ),
        )
    inputs, problems = validate_payload(behavior, claim.payload)
    if problems:
        return finish_run(
            runtime,
            claim,
            Outcome(
                FAILED,
                error={"code": "payload_invalid", "message": "; ".join(problems)},
            ),
        )
    purpose = "scheduled" if claim.trigger in SCHEDULED_TRIGGERS else "trigger"
    client_for = _client_factory(runtime, behavior, recorder, purpose, client_factory)
    ctx = engine.ExecutionContext(
        run_id=claim.run_id,
        attempt=claim.attempt,
        inputs=inputs,
        behavior=behavior,
        recorder=recorder,
        client_for=client_for,
        log=_RunLog(log, claim.run_id),
        run_info={
            "id": claim.run_id,
            "attempt": claim.attempt,
            "trigger": claim.trigger,
            "behavior": claim.behavior_name,
        },
    )
    log.info(
        "run=%s attempt=%s worker=%s status=running", claim.run_id, claim.attempt, claim.worker
    )
    with Heartbeat(factory, claim, timings.heartbeat_every):
        try:
            result = engine.execute(ctx)
        except engine.Cancelled:
            outcome = Outcome(CANCELLED, error={"code": "cancelled", "message": "cancelled"})
        except engine.StepFailed as exc:
            outcome = Outcome(FAILED, error=_jsonable(exc.error))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded outcome
            outcome = classify(claim, exc, recorder, timings)
        else:
            outcome = Outcome(SUCCEEDED, result=_jsonable(result))
    return finish_run(runtime, claim, outcome)


def _client_factory(
    runtime: Runtime,
    behavior: LoadedBehavior,
    recorder: RunRecorder,
    purpose: str,
    override: Callable[..., Any] | None,
) -> Callable[[str | None, Callable[[dict[str, Any]], None] | None], Any]:
    def client_for(
        account: str | None, on_exchange: Callable[[dict[str, Any]], None] | None
    ) -> Any:
        name = account or behavior.account
        if not name:
            raise LookupError("the behavior names no account and the step gives none")
        with runtime.Session() as session:
            account_id = session.scalar(select(Account.id).where(Account.name == name))
        if account_id is None:
            raise LookupError(f'unknown account "{name}"')
        recorder.account_id = account_id
        if override is not None:
            return override(runtime, account_id, on_exchange=on_exchange, purpose=purpose)
        return SalesforceClient.for_account(
            runtime, account_id, on_exchange=on_exchange, purpose=purpose
        )

    return client_for


def classify(claim: Claim, exc: Exception, recorder: RunRecorder, timings: RunTimings) -> Outcome:
    """Decide retrying / waiting / failing for an exception the engine let through."""
    if not isinstance(exc, errors.SalesforceError):
        log.exception("run=%s attempt=%s internal error", claim.run_id, claim.attempt)
        return Outcome(
            FAILED, error={"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
        )
    detail = _jsonable(exc.to_dict()) or {}
    if recorder.current:
        detail["step"] = recorder.current
    account_id = getattr(exc, "account_id", None) or recorder.account_id or claim.account_id
    if isinstance(exc, errors.NeedsReauth):
        return Outcome(FAILED, error={**detail, "code": "needs_reauth"})
    if isinstance(exc, errors.DailyLimitExceeded | errors.QuotaReserveReached):
        reserve = isinstance(exc, errors.QuotaReserveReached)
        reason = (
            "the account's API usage is past the service's reserve for scheduled work"
            if reserve
            else "the org's daily API request allocation is spent (TotalRequests)"
        )
        return Outcome(
            WAITING,
            error=detail,
            extra={
                "wait_reason": reason,
                "delay": timings.quota_recheck,
                "account_id": account_id,
            },
        )
    if getattr(exc, "retryable", False):
        if claim.retries + 1 < claim.max_attempts:
            delay = backoff(claim.retries + 1, getattr(exc, "retry_after", None), timings)
            return Outcome(
                RETRYING,
                requeue_in=delay,
                error=detail,
                extra={"delay": delay, "wait_reason": f"{detail.get('code')}: {exc.message}"},
            )
        return Outcome(
            FAILED,
            error={
                **detail,
                "message": f"{detail.get('message')} (gave up after {claim.max_attempts} tries)",
            },
        )
    return Outcome(FAILED, error=detail)


def finish_run(runtime: Runtime, claim: Claim, outcome: Outcome) -> Outcome:
    """Write the outcome, fenced on this worker still holding the run."""
    now = utcnow()
    with runtime.Session.begin() as session:
        run = session.get(Run, claim.run_id, with_for_update=True)
        if run is None or run.status != RUNNING or run.worker != claim.worker:
            # The reconciler gave the run to another worker (we looked dead); theirs counts.
            log.warning(
                "run=%s worker=%s lost the run; outcome dropped", claim.run_id, claim.worker
            )
            return Outcome("lost")
        progress = dict(run.progress or {})
        progress.pop("current_step", None)
        run.heartbeat_at = now
        if outcome.status in (RETRYING, WAITING):
            delay = float(outcome.extra.get("delay") or 0)
            run.status = outcome.status
            run.next_attempt_at = now + timedelta(seconds=delay)
            run.wait_reason = outcome.extra.get("wait_reason")
            run.error = outcome.error
            if outcome.extra.get("account_id"):
                run.account_id = outcome.extra["account_id"]
            if outcome.status == RETRYING:
                run.retries += 1
            waits = list(progress.get("waits") or [])
            waits.append(
                {
                    "at": now.isoformat(),
                    "status": outcome.status,
                    "seconds": round(delay, 3),
                    "until": run.next_attempt_at.isoformat(),
                    "reason": run.wait_reason,
                    "code": (outcome.error or {}).get("code"),
                    "step": (outcome.error or {}).get("step"),
                    "attempt": claim.attempt,
                }
            )
            progress["waits"] = waits[-50:]
            run.progress = progress
            run.worker = None
            session.execute(
                update(Attempt).where(Attempt.id == claim.attempt_id).values(status=outcome.status)
            )
            log.info(
                "run=%s attempt=%s status=%s wait=%.1fs reason=%s",
                claim.run_id,
                claim.attempt,
                outcome.status,
                delay,
                (outcome.error or {}).get("code"),
            )
            return outcome
        run.status = outcome.status
        run.finished_at = now
        run.next_attempt_at = None
        run.wait_reason = None
        run.result = outcome.result if outcome.status == SUCCEEDED else None
        run.error = outcome.error if outcome.status != SUCCEEDED else None
        run.progress = progress or None
        session.execute(
            update(Attempt)
            .where(Attempt.id == claim.attempt_id)
            .values(status=outcome.status, finished_at=now, error=run.error)
        )
    log.info(
        "run=%s attempt=%s status=%s code=%s",
        claim.run_id,
        claim.attempt,
        outcome.status,
        (outcome.error or {}).get("code", "-"),
    )
    return outcome


# --------------------------------------------------------------------------- beat work


def dispatch_due(
    runtime: Runtime,
    *,
    check_room: Callable[..., bool] | None = None,
    limit: int = 500,
    timings: RunTimings | None = None,
) -> list[int]:
    """Queue retrying/waiting runs whose time has come; return the ids to send.

    A waiting run is queued only when its account has room again (`check_room`, which asks
    Salesforce's /limits); otherwise it waits another `quota_recheck`.
    """
    timings = timings or run_timings()
    now = utcnow()
    with runtime.Session() as session:
        due = session.execute(
            select(Run.id, Run.status, Run.account_id, Run.trigger)
            .where(Run.status.in_((RETRYING, WAITING)), Run.next_attempt_at <= now)
            .order_by(Run.next_attempt_at)
            .limit(limit)
        ).all()
    if not due:
        return []
    room: dict[tuple[int, str], bool] = {}
    ready: list[int] = []
    later: list[int] = []
    for run_id, status, account_id, trigger in due:
        if status == WAITING and account_id is not None:
            purpose = "scheduled" if trigger in SCHEDULED_TRIGGERS else "trigger"
            key = (account_id, purpose)
            if key not in room:
                room[key] = _has_room(runtime, account_id, purpose, check_room)
            if not room[key]:
                later.append(run_id)
                continue
        ready.append(run_id)
    with runtime.Session.begin() as session:
        if later:
            session.execute(
                update(Run)
                .where(Run.id.in_(later), Run.status == WAITING)
                .values(next_attempt_at=now + timedelta(seconds=timings.quota_recheck))
            )
        queued: list[int] = []
        for run_id in ready:
            changed = session.execute(
                update(Run)
                .where(
                    Run.id == run_id,
                    Run.status.in_((RETRYING, WAITING)),
                    Run.next_attempt_at <= now,
                )
                .values(status=QUEUED, queued_at=now, next_attempt_at=None)
            ).rowcount  # type: ignore[attr-defined]
            if changed:
                queued.append(run_id)
    return queued


def _has_room(
    runtime: Runtime, account_id: int, purpose: str, check_room: Callable[..., bool] | None
) -> bool:
    if check_room is None:
        from shared.salesforce import limits

        check_room = limits.check_room
    try:
        return bool(check_room(runtime, account_id, purpose=purpose))
    except Exception:  # noqa: BLE001 - can't tell: look again later rather than burn a try
        log.warning("account=%s check_room failed", account_id, exc_info=True)
        return False


def reconcile(
    runtime: Runtime, *, timings: RunTimings | None = None, limit: int = 1000
) -> list[int]:
    """Find runs a lost message or a dead worker left behind; return the ids to send again."""
    timings = timings or run_timings()
    now = utcnow()
    queued_before = now - timedelta(seconds=timings.queued_after)
    stale_before = now - timedelta(seconds=timings.heartbeat_stale)
    with runtime.Session.begin() as session:
        lost = list(
            session.scalars(
                select(Run.id)
                .where(
                    Run.status == QUEUED,
                    or_(Run.queued_at.is_(None), Run.queued_at < queued_before),
                )
                .order_by(Run.id)
                .limit(limit)
            )
        )
        if lost:
            session.execute(
                update(Run).where(Run.id.in_(lost), Run.status == QUEUED).values(queued_at=now)
            )
        dead = list(
            session.scalars(
                select(Run.id)
                .where(
                    Run.status == RUNNING,
                    or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < stale_before),
                )
                .order_by(Run.id)
                .limit(limit)
            )
        )
        requeued: list[int] = []
        for run_id in dead:
            # The open attempt stays open: the next worker continues it.
            changed = session.execute(
                update(Run)
                .where(
                    Run.id == run_id,
                    Run.status == RUNNING,
                    or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < stale_before),
                )
                .values(status=QUEUED, queued_at=now, worker=None)
            ).rowcount  # type: ignore[attr-defined]
            if changed:
                requeued.append(run_id)
    if lost or requeued:
        log.info("reconcile lost_queued=%s dead_workers=%s", len(lost), len(requeued))
    return lost + requeued


def prune_runs(session: Session, retention_days: int, *, limit: int = 1000) -> int:
    """Delete finished runs older than the retention (their steps and exchanges cascade)."""
    cutoff = utcnow() - timedelta(days=retention_days)
    ids = list(
        session.scalars(
            select(Run.id)
            .where(Run.status.in_(FINISHED), Run.finished_at < cutoff)
            .order_by(Run.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    session.execute(
        update(Run)
        .where(Run.replay_of_id.in_(ids))
        .values(replay_of_id=None)
        .execution_options(synchronize_session=False)
    )
    for model in (HttpExchange, RunStep, Attempt):
        session.execute(
            delete(model)
            .where(model.run_id.in_(ids))  # type: ignore[attr-defined]
            .execution_options(synchronize_session=False)
        )
    session.execute(delete(Run).where(Run.id.in_(ids)).execution_options(synchronize_session=False))
    return len(ids)


# --------------------------------------------------------------------------- presenting


def step_to_dict(step: RunStep, attempt_number: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": step.key,
        "action": step.action,
        "status": step.status,
        "attempt": attempt_number,
        "started_at": isoformat(step.started_at),
        "finished_at": isoformat(step.finished_at),
    }
    if step.exchanges:
        last = step.exchanges[-1]
        data["request"] = f"{last.method} {last.url}"
        data["response_status"] = last.status
        data["duration_ms"] = last.duration_ms
        data["http"] = [
            {
                "method": x.method,
                "url": x.url,
                "status": x.status,
                "duration_ms": x.duration_ms,
                "error": x.error,
            }
            for x in step.exchanges
        ]
    if step.error:
        data["error"] = step.error
    return data


def run_to_dict(run: Run, *, include_steps: bool = True) -> dict[str, Any]:
    """SPEC's run JSON."""
    data: dict[str, Any] = {
        "id": run.id,
        "behavior": run.behavior_name,
        "behavior_version": run.behavior_version,
        "status": run.status,
        "trigger": run.trigger,
        "attempts": run.attempts,
        "max_attempts": run.max_attempts,
        "retries": run.retries,
        "payload": run.payload,
        "result": run.result,
        "error": run.error,
        "idempotency_key": run.idempotency_key,
        "replay_of": run.replay_of_id,
        "next_attempt_at": isoformat(run.next_attempt_at),
        "wait_reason": run.wait_reason,
        "cancel_requested": run.cancel_requested,
        "current_step": (run.progress or {}).get("current_step") if run.status == RUNNING else None,
        "waits": (run.progress or {}).get("waits") or [],
        "created_at": isoformat(run.created_at),
        "started_at": isoformat(run.started_at),
        "finished_at": isoformat(run.finished_at),
    }
    if include_steps:
        numbers = {a.id: a.number for a in run.attempt_rows}
        data["steps"] = [step_to_dict(s, numbers.get(s.attempt_id)) for s in run.steps]
        data["attempt_history"] = [
            {
                "number": a.number,
                "status": a.status,
                "worker": a.worker,
                "started_at": isoformat(a.started_at),
                "finished_at": isoformat(a.finished_at),
                "error": a.error,
            }
            for a in run.attempt_rows
        ]
    return data


def load_run(session: Session, run_id: int) -> Run | None:
    """The run with its steps, exchanges and attempts loaded, for showing it whole."""
    return session.scalars(
        select(Run)
        .where(Run.id == run_id)
        .options(
            selectinload(Run.steps).selectinload(RunStep.exchanges),
            selectinload(Run.attempt_rows),
        )
    ).one_or_none()


def encode_cursor(run_id: int) -> str:
    return base64.urlsafe_b64encode(f"r{run_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The id a cursor stands for, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    # ASCII digits only (str.isdigit accepts "²", which int() refuses), and within the
    # INTEGER id column's range (PostgreSQL raises on a larger parameter).
    match = re.fullmatch(r"r([0-9]{1,10})", raw)
    if match is None or int(match.group(1)) >= 2**31:
        return None
    return int(match.group(1))


def list_runs_page(
    session: Session,
    *,
    behavior: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[Run], str | None]:
    """Runs newest first (keyset pagination on id), and the next page's cursor or None."""
    query = select(Run).order_by(Run.id.desc()).limit(limit + 1)
    if behavior:
        query = query.where(Run.behavior_name == behavior)
    if status:
        query = query.where(Run.status == status)
    if before_id is not None:
        query = query.where(Run.id < before_id)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return page, encode_cursor(page[-1].id) if len(rows) > limit else None


__all__ += ["ACTIVE", "STATUSES", "Claim", "list_runs_page", "finish_run"]
