"""Claiming and executing a run: claim, heartbeat, run the engine, classify, finish.

`execute_claimed()` owns its short transactions (and `RunRecorder` its own) because a crash
must leave every finished step durable; `claim_for_execution()` takes the caller's session.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from shared import outbound, webhooks
from shared.behaviors import engine
from shared.behaviors.dry_run import DRY_RUN_TRIGGER, DryRunSession
from shared.behaviors.store import LoadedBehavior, load_behavior_cached, validate_payload
from shared.config import RunTimings, run_timings
from shared.db import reading
from shared.models import Account, Attempt, Run, utcnow
from shared.models.runs import (
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    WAITING,
)
from shared.salesforce import SalesforceClient, errors
from shared.salesforce.retry import backoff_delay

from . import clock
from .create import _cancel_where
from .recorder import RunRecorder, _jsonable

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("forcebot.runs")

SCHEDULED_TRIGGERS = ("schedule", "sync")
CONCURRENCY_CAP = "concurrency_cap"  # the error code of our own cap's RateLimited


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
    # Where the run-time deadline is measured from: the attempt's start, or the end of its
    # latest retry/quota wait. A crash and resumption does not restart the clock.
    running_since: datetime | None = None
    # The run's progress as claimed (only the claiming worker writes it while running).
    progress: dict[str, Any] | None = None
    # True when this claim opened the attempt: it has no step rows yet.
    new_attempt: bool = False
    # The run's account (name, token_version) and the stored behavior version's identity
    # (name, version, row id, created_at), read by the claim for the worker's caches.
    account_name: str | None = None
    token_version: int | None = None
    behavior_key: tuple[Any, ...] | None = None


def _running_since(
    progress: dict[str, Any] | None, attempt: int, started_at: datetime | None, now: datetime
) -> datetime:
    since = _aware(started_at) if started_at else now
    for wait in (progress or {}).get("waits") or []:
        if wait.get("attempt") != attempt or not wait.get("until"):
            continue
        until = datetime.fromisoformat(wait["until"])
        since = max(since, _aware(until))
    return min(since, now)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _fail_crash_loop(session: Session, run: Run, now: datetime) -> None:
    """End a run whose workers keep dying under it, with the open attempt."""
    limit = run.resumptions - 1
    error = {
        "code": "worker_lost",
        "message": (
            f"the worker running this run stopped (killed, out of memory or crashed) "
            f"{run.resumptions} times; it was resumed {limit} times "
            f"(FORCEBOT_RUN_MAX_RESUMPTIONS) and is not resumed again. "
            "Check the worker's log for what killed it; Retry starts a new attempt"
        ),
        "step": (run.progress or {}).get("current_step"),
    }
    run.status = FAILED
    run.finished_at = now
    run.worker = None
    run.error = error
    session.execute(
        update(Attempt)
        .where(Attempt.run_id == run.id, Attempt.finished_at.is_(None))
        .values(status=FAILED, finished_at=now, error=error)
    )
    session.flush()
    log.warning("run=%s status=failed code=worker_lost resumptions=%s", run.id, run.resumptions)


def _lookup(sql: str, label: str, type_: Any) -> Any:
    return literal_column(f"({sql})", type_).label(label)


# Read by the claim's RETURNING for the worker's caches. Written out because SQLAlchemy's SQLite
# RETURNING drops table names, which makes a correlated subquery's `id` ambiguous.
_CLAIM_LOOKUPS = (
    _lookup("SELECT a.name FROM accounts a WHERE a.id = runs.account_id", "account_name", String()),
    _lookup(
        "SELECT a.token_version FROM accounts a WHERE a.id = runs.account_id", "token_v", Integer()
    ),
    _lookup(
        "SELECT v.id FROM behavior_versions v JOIN behaviors b ON b.id = v.behavior_id "
        "WHERE b.name = runs.behavior_name AND v.version = runs.behavior_version",
        "version_id",
        Integer(),
    ),
    _lookup(
        "SELECT v.created_at FROM behavior_versions v JOIN behaviors b ON b.id = v.behavior_id "
        "WHERE b.name = runs.behavior_name AND v.version = runs.behavior_version",
        "version_at",
        String(),
    ),
)


def claim_for_execution(
    session: Session, run_id: int, worker_name: str, *, timings: RunTimings | None = None
) -> Claim | None:
    """Take the run for `worker_name` if it is runnable now; None when someone else has it.

    Runnable: queued; retrying or waiting and due; or running with a stale heartbeat (its
    worker died). A finished run is never claimed, so a duplicate delivery is a no-op. The
    claim is a conditional `UPDATE … RETURNING` of everything the execution needs (the
    run's account name and token version, and the identity of its behavior version, for the
    worker's caches), then the attempt: for a new one an `UPDATE` of the run's attempt
    counter and an `INSERT` of its row, for one being resumed a `SELECT` of the open row and
    its `UPDATE`. All in the caller's transaction, which the caller commits.
    """
    timings = timings or run_timings()
    now = utcnow()
    stale = clock.before(session, timings.heartbeat_stale)
    dead = and_(Run.status == RUNNING, or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < stale))
    claimable = or_(
        Run.status == QUEUED,
        and_(
            Run.status.in_((RETRYING, WAITING)),
            or_(Run.next_attempt_at.is_(None), Run.next_attempt_at <= now),
        ),
        dead,
    )
    row = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.cancel_requested.is_(False), claimable)
        .values(
            status=RUNNING,
            worker=worker_name,
            heartbeat_at=clock.now(session),
            next_attempt_at=None,
            started_at=func.coalesce(Run.started_at, now),
            # Taking a run over from a dead worker is a resumption (reconcile counts the ones
            # it re-queues).
            resumptions=case((Run.status == RUNNING, Run.resumptions + 1), else_=Run.resumptions),
        )
        .returning(
            Run.behavior_name,
            Run.behavior_version,
            Run.payload,
            Run.trigger,
            Run.account_id,
            Run.max_attempts,
            Run.retries,
            Run.attempts,
            Run.resumptions,
            Run.progress,
            *_CLAIM_LOOKUPS,
        )
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        # A cancel asked of a run whose worker died (or that is between tries) ends it here.
        between_tries = Run.status.in_((QUEUED, RETRYING, WAITING))
        asked = Run.cancel_requested.is_(True)
        _cancel_where(session, run_id, and_(asked, or_(between_tries, dead)))
        return None
    if row.resumptions > int(timings.max_resumptions):
        run = session.get(Run, run_id, populate_existing=True)
        assert run is not None
        _fail_crash_loop(session, run, now)
        return None
    attempts, retries = row.attempts, row.retries
    open_attempt = None
    if attempts:  # a run never claimed before has no attempt row to continue
        open_attempt = session.execute(
            select(Attempt.id, Attempt.number, Attempt.started_at)
            .where(Attempt.run_id == run_id, Attempt.finished_at.is_(None))
            .order_by(Attempt.number.desc())
            .limit(1)
        ).first()
    if open_attempt is None:
        attempts, retries = attempts + 1, 0
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(attempts=attempts, retries=0)
            .execution_options(synchronize_session=False)
        )
        attempt_id = session.scalar(
            insert(Attempt)
            .values(
                run_id=run_id, number=attempts, status=RUNNING, worker=worker_name, started_at=now
            )
            .returning(Attempt.id)
        )
        number, started_at = attempts, now
    else:
        attempt_id, number, started_at = open_attempt
        session.execute(
            update(Attempt)
            .where(Attempt.id == attempt_id)
            .values(status=RUNNING, worker=worker_name)
            .execution_options(synchronize_session=False)
        )
    progress = dict(row.progress or {})
    return Claim(
        running_since=_running_since(progress, number, started_at, now),
        run_id=run_id,
        attempt_id=int(attempt_id or 0),
        attempt=number,
        behavior_name=row.behavior_name,
        behavior_version=row.behavior_version,
        payload=dict(row.payload or {}),
        trigger=row.trigger,
        account_id=row.account_id,
        max_attempts=row.max_attempts,
        retries=retries,
        worker=worker_name,
        progress=progress,
        new_attempt=open_attempt is None,
        account_name=row.account_name,
        token_version=row.token_v,
        behavior_key=(
            (row.behavior_name, row.behavior_version, row.version_id, row.version_at)
            if row.version_id is not None
            else None
        ),
    )


class Heartbeat:
    """A thread that touches `runs.heartbeat_at` while this worker holds the run."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        claim: Claim,
        every: float,
        lost: threading.Event | None = None,
        on_cancel_flag: Callable[[bool], None] | None = None,
    ) -> None:
        self.factory = factory
        self.claim = claim
        self.every = every
        # Told the run's cancel flag at every beat (the recorder's step boundaries use it).
        self.on_cancel_flag = on_cancel_flag
        # Set when the conditional UPDATE matched nothing: another worker owns the run now.
        # The recorder raises ClaimLost at its next write or step boundary.
        self.lost = lost or threading.Event()
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
                    requested = session.execute(
                        update(Run)
                        .where(
                            Run.id == self.claim.run_id,
                            Run.worker == self.claim.worker,
                            Run.attempts == self.claim.attempt,
                            Run.status == RUNNING,
                        )
                        .values(heartbeat_at=clock.now(session))
                        .returning(Run.cancel_requested)
                        .execution_options(synchronize_session=False)
                    ).scalar_one_or_none()
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next tick
                log.warning("run=%s heartbeat failed", self.claim.run_id, exc_info=True)
                continue
            if requested is not None and self.on_cancel_flag is not None:
                self.on_cancel_flag(bool(requested))
            if requested is None:
                log.warning(
                    "run=%s worker=%s lost the run; stopping at the next step",
                    self.claim.run_id,
                    self.claim.worker,
                )
                self.lost.set()
                return


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
    key = None if claim.behavior_key is None else (str(runtime.engine.url), *claim.behavior_key)
    behavior = load_behavior_cached(factory, claim.behavior_name, claim.behavior_version, key)
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
    client_for = _client_factory(
        runtime,
        behavior,
        recorder,
        purpose,
        client_factory,
        claim.trigger == DRY_RUN_TRIGGER,
        claim,
    )
    ctx = engine.ExecutionContext(
        deadline=_deadline(behavior, claim),
        run_id=claim.run_id,
        attempt=claim.attempt,
        inputs=inputs,
        behavior=behavior,
        recorder=recorder,
        client_for=client_for,
        outbound_for=lambda on_exchange: outbound.for_runtime(runtime, on_exchange=on_exchange),
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
    with Heartbeat(factory, claim, timings.heartbeat_every, recorder.lost, recorder.observe_cancel):
        try:
            result = engine.execute(ctx)
        except engine.ClaimLost:
            # We were judged dead and another worker took the run: its steps count, and
            # nothing more of ours is written (the recorder's writes are fenced too).
            log.warning("run=%s worker=%s lost the run; stopped", claim.run_id, claim.worker)
            return Outcome("lost")
        except engine.Cancelled:
            outcome = Outcome(CANCELLED, error={"code": "cancelled", "message": "cancelled"})
        except engine.StepFailed as exc:
            outcome = Outcome(FAILED, error=_jsonable(exc.error))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded outcome
            outcome = classify(claim, exc, recorder, timings)
        else:
            outcome = Outcome(SUCCEEDED, result=_jsonable(result))
    return finish_run(runtime, claim, outcome, recorder=recorder)


def _deadline(behavior: LoadedBehavior, claim: Claim) -> float | None:
    """The engine's deadline (monotonic) for the attempt, counted from `claim.running_since`."""
    if claim.running_since is None:
        return None
    timeout = float(behavior.timeout_seconds or engine.DEFAULT_TIMEOUT_SECONDS)
    elapsed = (utcnow() - claim.running_since).total_seconds()
    return time.monotonic() + timeout - max(elapsed, 0.0)


def _client_factory(
    runtime: Runtime,
    behavior: LoadedBehavior,
    recorder: RunRecorder,
    purpose: str,
    override: Callable[..., Any] | None,
    dry_run: bool = False,
    claim: Claim | None = None,
) -> Callable[[str | None, Callable[[dict[str, Any]], None] | None], Any]:
    def client_for(
        account: str | None, on_exchange: Callable[[dict[str, Any]], None] | None
    ) -> Any:
        name = account or behavior.account
        if not name:
            raise LookupError("the behavior names no account and the step gives none")
        token_version = None
        if claim is not None and claim.account_id is not None and name == claim.account_name:
            # The run's own account: the claim read its id and token_version.
            account_id: int | None = claim.account_id
            token_version = claim.token_version
        else:
            with reading(runtime.Session) as session:
                account_id = session.scalar(select(Account.id).where(Account.name == name))
        if account_id is None:
            raise LookupError(f'unknown account "{name}"')
        recorder.account_id = account_id
        if override is not None:
            return override(runtime, account_id, on_exchange=on_exchange, purpose=purpose)
        # A dry run's client sends reads and answers writes itself (shared.behaviors.dry_run).
        http = DryRunSession() if dry_run else None
        return SalesforceClient.for_account(
            runtime,
            account_id,
            on_exchange=on_exchange,
            purpose=purpose,
            http=http,
            token_version=token_version,
        )

    return client_for


def classify(claim: Claim, exc: Exception, recorder: RunRecorder, timings: RunTimings) -> Outcome:
    """Decide retrying / waiting / failing for an exception the engine let through."""
    if isinstance(exc, engine.INFRASTRUCTURE_ERRORS):
        # Redis or the database failed us, not Salesforce: wait it out with back-off. These
        # waits do not spend the run's retries (nothing refused the run), so an outage of any
        # length ends with the run resuming, never with a run failed for good.
        earlier = [
            w
            for w in ((recorder.progress or {}).get("waits") or [])
            if w.get("code") == engine.INFRASTRUCTURE_ERROR and w.get("attempt") == claim.attempt
        ]
        delay = backoff(len(earlier) + 1, None, timings)
        message = engine.infrastructure_message(exc)
        log.warning(
            "run=%s attempt=%s infrastructure error: %s", claim.run_id, claim.attempt, message
        )
        detail = {"code": engine.INFRASTRUCTURE_ERROR, "message": message}
        if recorder.current:
            detail["step"] = recorder.current
        return Outcome(
            RETRYING,
            requeue_in=delay,
            error=detail,
            extra={"delay": delay, "wait_reason": message, "spends_retry": False},
        )
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
    if isinstance(exc, errors.RateLimited) and exc.error_code == CONCURRENCY_CAP:
        # Our own per-account cap was full for the whole wait: Salesforce refused nothing, so
        # this does not spend a retry; try again shortly.
        delay = backoff(1, exc.retry_after, timings)
        return Outcome(
            RETRYING,
            requeue_in=delay,
            error=detail,
            extra={
                "delay": delay,
                "wait_reason": f"{CONCURRENCY_CAP}: {exc.message}",
                "spends_retry": False,
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


def finish_run(
    runtime: Runtime, claim: Claim, outcome: Outcome, *, recorder: RunRecorder | None = None
) -> Outcome:
    """Write the outcome, fenced on this worker still holding the run (with any exchanges
    `recorder` still holds that no step ending wrote)."""
    now = utcnow()
    if recorder is not None and recorder.progress is not None and outcome.status in FINISHED:
        return _finish_terminal(runtime, claim, outcome, recorder, now)
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
            if outcome.status == RETRYING and outcome.extra.get("spends_retry", True):
                run.retries += 1
            else:
                webhooks.run_event(session, run)  # run.waiting, in this transaction
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
        webhooks.run_event(session, run)  # run.succeeded / run.failed, in this transaction
        if run.trigger == "sync" and run.sync_id is not None:
            # sync.finished with the run's counts, in the same transaction as the outcome:
            # exactly one per finished sync run (a finish that does not commit emits nothing).
            webhooks.sync_event(session, run.sync_id, run.id, run.status, _sync_counts(progress))
        _end_attempt(session, claim, outcome.status, now, run.error)
    return _logged(claim, outcome)


def _finish_terminal(
    runtime: Runtime, claim: Claim, outcome: Outcome, recorder: RunRecorder, now: datetime
) -> Outcome:
    """`finish_run` for an ending, as one fenced `UPDATE … RETURNING` (the recorder holds the
    run's progress: only this worker wrote it while running)."""
    progress = dict(recorder.progress or {})
    progress.pop("current_step", None)
    succeeded = outcome.status == SUCCEEDED
    error = None if succeeded else outcome.error
    with runtime.Session.begin() as session:
        row = session.execute(
            update(Run)
            .where(Run.id == claim.run_id, Run.status == RUNNING, Run.worker == claim.worker)
            .values(
                status=outcome.status,
                finished_at=now,
                heartbeat_at=now,
                next_attempt_at=None,
                wait_reason=None,
                result=outcome.result if succeeded else None,
                error=error,
                progress=progress or None,
            )
            .returning(Run.behavior_name, Run.trigger, Run.attempts, Run.sync_id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if row is None:
            # The reconciler gave the run to another worker (we looked dead); theirs counts.
            log.warning(
                "run=%s worker=%s lost the run; outcome dropped", claim.run_id, claim.worker
            )
            return Outcome("lost")
        recorder.write_pending(session)
        view = SimpleNamespace(
            id=claim.run_id,
            behavior_name=row.behavior_name,
            status=outcome.status,
            trigger=row.trigger,
            attempts=row.attempts,
            error=error,
            next_attempt_at=None,
            finished_at=now,
        )
        webhooks.run_event(session, view)  # run.succeeded / run.failed, in this transaction
        if row.trigger == "sync" and row.sync_id is not None:
            webhooks.sync_event(
                session, row.sync_id, claim.run_id, outcome.status, _sync_counts(progress)
            )
        _end_attempt(session, claim, outcome.status, now, error)
    return _logged(claim, outcome)


def _end_attempt(
    session: Session, claim: Claim, status: str, now: datetime, error: dict[str, Any] | None
) -> None:
    session.execute(
        update(Attempt)
        .where(Attempt.id == claim.attempt_id)
        .values(status=status, finished_at=now, error=error)
        .execution_options(synchronize_session=False)
    )


def _logged(claim: Claim, outcome: Outcome) -> Outcome:
    log.info(
        "run=%s attempt=%s status=%s code=%s",
        claim.run_id,
        claim.attempt,
        outcome.status,
        (outcome.error or {}).get("code", "-"),
    )
    return outcome


_SYNC_COUNT_KEYS = ("pages", "records", "total_size", "created", "updated", "deleted", "api")


def _sync_counts(progress: dict[str, Any] | None) -> dict[str, Any]:
    """The counts a sync run keeps in its progress (the rest of progress is bookkeeping)."""
    progress = progress or {}
    return {key: progress[key] for key in _SYNC_COUNT_KEYS if key in progress}
