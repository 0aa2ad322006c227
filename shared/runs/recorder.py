"""The step recorder: RunStep and HttpExchange rows of one attempt, as the engine reports them."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.behaviors.engine import Cancelled, ClaimLost, PriorSend
from shared.db import reading
from shared.models import HttpExchange, Run, RunStep, utcnow
from shared.models.runs import FAILED, RUNNING, SUCCEEDED
from shared.salesforce.redact import TRUNCATED, redact_body, redact_headers, redact_url

from . import clock

if TYPE_CHECKING:
    from .execute import Claim

SKIPPED = "skipped"
# A cancel flag read this recently (by a fenced write, the heartbeat or the claim) is current
# enough for a step boundary; older, `should_stop` reads the row again.
CANCEL_FRESH_SECONDS = 1.0
# Exchanges wait for their step's ending, unless the next one comes when the oldest has waited
# this long or makes this many: then the batch is written (a sent mark writes at once).
PENDING_SECONDS = 1.0
PENDING_MAX = 20


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

    A step costs one short transaction when it starts and one when it ends; the HTTP
    exchanges of a step are written with its ending, in the same transaction (a step that
    runs long writes them in batches, `PENDING_SECONDS`/`PENDING_MAX`). A non-idempotent
    request's "sent" mark commits before the request goes out, and the exchanges after it are
    written at once, so a worker killed after Salesforce answered leaves the answer recorded
    for the resumption to reuse. A worker killed in the middle of a step leaves every earlier
    step recorded as finished (an idempotent step that was cut off runs again, its own
    exchanges unrecorded). Every write is fenced on the claim and reads back the run's cancel
    flag, which the step boundaries use instead of a query of their own.
    """

    def __init__(self, factory: sessionmaker[Session], claim: Claim) -> None:
        self.factory = factory
        self.claim = claim
        # Step row ids of this attempt by key; None when `completed` found no row.
        self.step_ids: dict[str, int | None] = {}
        self.current: str | None = None
        self.account_id: int | None = None  # of the last client handed out
        # Only this worker writes the run's progress while running.
        self.progress: dict[str, Any] | None = (
            dict(claim.progress) if claim.progress is not None else None
        )
        self.unfinished: dict[str, datetime] = {}  # sent marks of steps that never ended
        self.pending: list[dict[str, Any]] = []  # exchanges waiting for their step's ending
        self.pending_lock = threading.Lock()  # a Python behavior may call from several threads
        self.pending_since = 0.0  # when the oldest of them was recorded (monotonic)
        self.sent: set[str] = set()  # steps marked sent: their exchanges are written at once
        # Set when a write or the heartbeat found the run taken over by another worker.
        self.lost = threading.Event()
        # The run's cancel flag as last read, and when (monotonic); the claim read it false.
        self.cancel_requested = False
        self.cancel_seen_at = time.monotonic()

    def observe_cancel(self, requested: bool) -> None:
        """Remember the run's cancel flag as just read by a fenced write or the heartbeat."""
        self.cancel_requested = self.cancel_requested or bool(requested)
        self.cancel_seen_at = time.monotonic()

    def completed(self, key: str) -> tuple[bool, Any]:
        if self.claim.new_attempt and key not in self.step_ids:
            # The claim opened this attempt: no step of it is recorded but ours.
            self.step_ids[key] = None
            return False, None
        with reading(self.factory) as session:
            row = session.execute(
                select(
                    RunStep.id, RunStep.status, RunStep.output, RunStep.sent_at, RunStep.error
                ).where(self._where(key))
            ).one_or_none()
        self.step_ids[key] = row.id if row else None
        if row is not None and row.status in (SUCCEEDED, SKIPPED):
            return True, row.output
        # Marked sent and still `running`: the worker that sent it stopped before the step's
        # ending was recorded. Marked sent and failed as `outcome_unknown`: the worker stopped
        # after recording that and before recording the run's outcome. Either way the send's
        # fate is unknown, so it must not go out again in this attempt.
        unknown = row is not None and row.status == FAILED and _code(row.error) == OUTCOME_UNKNOWN
        if row is not None and row.sent_at is not None and (row.status == RUNNING or unknown):
            self.unfinished[key] = row.sent_at
        return False, None

    def mark_sent(self, key: str) -> None:
        with self.factory.begin() as session:
            step_id = self._step_id(session, key)
            self._fence(session)
            session.execute(update(RunStep).where(RunStep.id == step_id).values(sent_at=utcnow()))
            self._write_pending(session)
        self.sent.add(key)

    def unfinished_send(self, key: str) -> PriorSend | None:
        """The last REST response recorded after the step's sent mark, if it never ended."""
        sent_at = self.unfinished.pop(key, None)
        step_id = self.step_ids.get(key)
        if sent_at is None or step_id is None:
            return None
        with reading(self.factory) as session:
            rows = session.execute(
                select(
                    HttpExchange.url,
                    HttpExchange.status,
                    HttpExchange.response_headers,
                    HttpExchange.response_body,
                )
                .where(HttpExchange.step_id == step_id, HttpExchange.created_at >= sent_at)
                .order_by(HttpExchange.id.desc())
            ).all()
        for row in rows:
            if "/services/oauth2/" in row.url:
                continue  # a token refresh on the way, not the step's own request
            if row.status == 401:
                # The client refreshes and replays a 401: the replay may have been applied
                # although its answer was never recorded.
                return PriorSend()
            if row.response_body and row.response_body.endswith(TRUNCATED):
                # The stored body is cut short (BODY_CAP): it cannot stand in for the answer.
                return PriorSend()
            return PriorSend(row.status, row.response_headers, row.response_body)
        return PriorSend()

    def start(self, key: str, action: str) -> None:
        """Record the step as running; Cancelled (nothing written) when a cancel was asked."""
        now = utcnow()
        with self.factory.begin() as session:
            if self.progress is None:
                stored = session.scalar(select(Run.progress).where(Run.id == self.claim.run_id))
                self.progress = dict(stored or {})
            progress = {**self.progress, "current_step": key}
            if self._fence(session, progress=progress):
                # Checked in the step's own first write: no window between check and start.
                # Raising rolls the transaction back, so the step is not recorded.
                raise Cancelled(f"cancelled before step {key}")
            step_id = self._step_id(session, key)
            if step_id is None:
                self.step_ids[key] = session.scalar(
                    insert(RunStep)
                    .values(
                        run_id=self.claim.run_id,
                        attempt_id=self.claim.attempt_id,
                        key=key[:255],
                        action=action[:64],
                        status=RUNNING,
                        started_at=now,
                    )
                    .returning(RunStep.id)
                )
            else:
                # A retried step keeps its row (and its earlier HTTP exchanges, which show the
                # faults that made us wait).
                session.execute(
                    update(RunStep)
                    .where(RunStep.id == step_id)
                    .values(status=RUNNING, started_at=now, finished_at=None, error=None)
                )
        self.progress = progress
        self.current = key

    def finish(
        self, key: str, status: str, output: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        """Record how the step ended, with its exchanges, in one transaction."""
        with self.factory.begin() as session:
            step_id = self._step_id(session, key)
            if step_id is None:
                return
            self._fence(session)
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
            self._write_pending(session)

    def exchange(self, key: str, summary: dict[str, Any]) -> None:
        """Keep the exchange for the step's ending; after a sent mark, write it at once."""
        if self.lost.is_set():
            raise self._lost()
        # The client's summaries arrive redacted; redacting again the same way changes nothing
        # then, and keeps a secret out of the table whoever calls this.
        account_id = summary.get("account_id")
        duration = summary.get("duration_ms")
        item = {
            "key": key,
            "run_id": self.claim.run_id,
            "account_id": account_id if isinstance(account_id, int) else None,
            "method": str(summary.get("method") or "GET")[:10],
            "url": redact_url(str(summary.get("url") or "")),
            "status": summary.get("status"),
            "duration_ms": int(duration) if isinstance(duration, int | float) else None,
            "request_headers": redact_headers(summary.get("request_headers")),
            "request_body": redact_body(summary.get("request_body")),
            "response_headers": redact_headers(summary.get("response_headers")),
            "response_body": redact_body(summary.get("response_body")),
            "error": redact_body(summary.get("error")),
            "created_at": utcnow(),
        }
        with self.pending_lock:
            self.pending.append(item)
            if len(self.pending) == 1:
                self.pending_since = time.monotonic()
            # A long step (a sync, a Python behavior's loop) has its exchanges written in
            # batches.
            due = (
                len(self.pending) >= PENDING_MAX
                or time.monotonic() - self.pending_since >= PENDING_SECONDS
            )
        if key in self.sent or due:
            with self.factory.begin() as session:
                self._fence(session)
                self._write_pending(session)

    def write_pending(self, session: Session) -> None:
        """Write exchanges no step ending took (the caller's transaction, already fenced)."""
        self._write_pending(session)

    def _write_pending(self, session: Session) -> None:
        with self.pending_lock:
            items, self.pending = self.pending, []
        if not items:
            return
        rows = []
        for item in items:
            key = item["key"]
            rows.append(
                {
                    **{k: v for k, v in item.items() if k != "key"},
                    "step_id": self._step_id(session, key) if key else None,
                }
            )
        try:
            session.execute(insert(HttpExchange), rows)
        except BaseException:
            with self.pending_lock:  # kept for the next write (a retried transaction)
                self.pending[:0] = items
            raise

    def should_stop(self) -> bool:
        """True when a cancel was asked; ClaimLost when the run is no longer ours.

        Uses the cancel flag read by the last fenced write or heartbeat when that is recent
        (`CANCEL_FRESH_SECONDS`; at a step boundary it is the previous step's ending), and
        reads the row otherwise.
        """
        if self.lost.is_set():
            raise self._lost()
        if self.cancel_requested:
            return True
        if time.monotonic() - self.cancel_seen_at < CANCEL_FRESH_SECONDS:
            return False
        with reading(self.factory) as session:
            row = session.execute(
                select(Run.cancel_requested, Run.worker, Run.status, Run.attempts).where(
                    Run.id == self.claim.run_id
                )
            ).one_or_none()
        if row is None or (row.worker, row.status, row.attempts) != (
            self.claim.worker,
            RUNNING,
            self.claim.attempt,
        ):
            self.lost.set()
            raise self._lost()
        self.observe_cancel(row.cancel_requested)
        return self.cancel_requested

    def _fence(self, session: Session, **values: Any) -> bool:
        """Every write is fenced on this claim (worker and attempt) and doubles as a heartbeat;
        returns the run's cancel flag (ClaimLost when the run is no longer ours).

        On PostgreSQL the UPDATE takes the run's row lock, so a reconcile that re-queues the
        run waits for this transaction, or this one sees its change and matches nothing.
        """
        requested = session.execute(
            update(Run)
            .where(
                Run.id == self.claim.run_id,
                Run.worker == self.claim.worker,
                Run.attempts == self.claim.attempt,
                Run.status == RUNNING,
            )
            .values(heartbeat_at=clock.now(session), **values)
            .returning(Run.cancel_requested)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if requested is None:
            self.lost.set()
            raise self._lost()
        self.observe_cancel(requested)
        return bool(requested)

    def _lost(self) -> ClaimLost:
        return ClaimLost(f"run {self.claim.run_id} is no longer held by {self.claim.worker}")

    def _where(self, key: str) -> ColumnElement[bool]:
        return and_(RunStep.attempt_id == self.claim.attempt_id, RunStep.key == key[:255])

    def _step_id(self, session: Session, key: str) -> int | None:
        """The step row's id: remembered from `completed` or `start`, else looked up."""
        if key not in self.step_ids:
            self.step_ids[key] = session.scalar(select(RunStep.id).where(self._where(key)))
        return self.step_ids[key]


OUTCOME_UNKNOWN = "outcome_unknown"


def _code(error: Any) -> Any:
    return error.get("code") if isinstance(error, dict) else None
