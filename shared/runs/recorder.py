"""The step recorder: RunStep and HttpExchange rows of one attempt, as the engine reports them."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.behaviors.engine import ClaimLost, PriorSend
from shared.models import HttpExchange, Run, RunStep, utcnow
from shared.models.runs import RUNNING, SUCCEEDED
from shared.salesforce.redact import redact_body, redact_headers, redact_url

from . import clock

if TYPE_CHECKING:
    from .execute import Claim

SKIPPED = "skipped"


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
        self.unfinished: dict[str, datetime] = {}  # sent marks of steps that never ended
        # Set when a write or the heartbeat found the run taken over by another worker.
        self.lost = threading.Event()

    def completed(self, key: str) -> tuple[bool, Any]:
        with self.factory() as session:
            row = session.execute(
                select(RunStep.id, RunStep.status, RunStep.output, RunStep.sent_at).where(
                    self._where(key)
                )
            ).one_or_none()
        self.step_ids[key] = row.id if row else None
        if row is not None and row.status in (SUCCEEDED, SKIPPED):
            return True, row.output
        # Marked sent and still `running`: the worker that sent it stopped before the step's
        # ending was recorded.
        if row is not None and row.status == RUNNING and row.sent_at is not None:
            self.unfinished[key] = row.sent_at
        return False, None

    def mark_sent(self, key: str) -> None:
        with self.factory.begin() as session:
            step_id = self._step_id(session, key)
            self._fence(session)
            session.execute(update(RunStep).where(RunStep.id == step_id).values(sent_at=utcnow()))

    def unfinished_send(self, key: str) -> PriorSend | None:
        """The last REST response recorded after the step's sent mark, if it never ended."""
        sent_at = self.unfinished.pop(key, None)
        step_id = self.step_ids.get(key)
        if sent_at is None or step_id is None:
            return None
        with self.factory() as session:
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
            return PriorSend(row.status, row.response_headers, row.response_body)
        return PriorSend()

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
            self._fence(session, progress=dict(self.progress))
        self.current = key

    def finish(
        self, key: str, status: str, output: Any = None, error: dict[str, Any] | None = None
    ) -> None:
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

    def exchange(self, key: str, summary: dict[str, Any]) -> None:
        # The client's summaries arrive redacted; redacting again the same way changes nothing
        # then, and keeps a secret out of the table whoever calls this.
        account_id = summary.get("account_id")
        duration = summary.get("duration_ms")
        with self.factory.begin() as session:
            self._fence(session)
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
        """True when a cancel was asked; ClaimLost when the run is no longer ours."""
        if self.lost.is_set():
            raise self._lost()
        with self.factory() as session:
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
        return bool(row.cancel_requested)

    def _fence(self, session: Session, **values: Any) -> None:
        """Every write is fenced on this claim (worker and attempt) and doubles as a heartbeat.

        On PostgreSQL the UPDATE takes the run's row lock, so a reconcile that re-queues the
        run waits for this transaction, or this one sees its change and matches nothing.
        """
        changed = session.execute(
            update(Run)
            .where(
                Run.id == self.claim.run_id,
                Run.worker == self.claim.worker,
                Run.attempts == self.claim.attempt,
                Run.status == RUNNING,
            )
            .values(heartbeat_at=clock.now(session), **values)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if not changed:
            self.lost.set()
            raise self._lost()

    def _lost(self) -> ClaimLost:
        return ClaimLost(f"run {self.claim.run_id} is no longer held by {self.claim.worker}")

    def _where(self, key: str) -> ColumnElement[bool]:
        return and_(RunStep.attempt_id == self.claim.attempt_id, RunStep.key == key[:255])

    def _step_id(self, session: Session, key: str) -> int | None:
        """The step row's id: remembered from `completed` or `start`, else looked up."""
        if key not in self.step_ids:
            self.step_ids[key] = session.scalar(select(RunStep.id).where(self._where(key)))
        return self.step_ids[key]
