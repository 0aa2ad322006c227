"""Runs (the outbox of queued work), their attempts, steps and HTTP exchanges.

A run row is committed before its Celery message is sent; the worker re-reads it by id.
Statuses: queued → running → succeeded | failed | cancelled, with retrying (a retry is due at
`next_attempt_at`) and waiting (the account's API quota is spent or reserved; resumes at
`next_attempt_at`) in between.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow

QUEUED = "queued"
RUNNING = "running"
RETRYING = "retrying"
WAITING = "waiting"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (QUEUED, RUNNING, RETRYING, WAITING, SUCCEEDED, FAILED, CANCELLED)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
ACTIVE = (QUEUED, RUNNING, RETRYING, WAITING)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("behavior_name", "idempotency_key"),
        Index("ix_runs_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_runs_behavior_name_id", "behavior_name", "id"),
        Index("ix_runs_status_finished_at", "status", "finished_at"),  # pruning
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    behavior_name: Mapped[str] = mapped_column(String(100))
    behavior_version: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default=QUEUED, index=True)
    trigger: Mapped[str] = mapped_column(String(16), default="api")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    # Retries of transient faults within the current attempt budget (see shared.runs).
    retries: Mapped[int] = mapped_column(default=0)
    # Times the open attempt was taken over from a worker that stopped heart-beating (killed,
    # out of memory, crashed); past FORCEBOT_RUN_MAX_RESUMPTIONS the run fails (worker_lost).
    resumptions: Mapped[int] = mapped_column(default=0, server_default="0")
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL"), index=True
    )
    sync_id: Mapped[int | None] = mapped_column(
        ForeignKey("syncs.id", ondelete="SET NULL"), index=True
    )
    # A schedule run's slot: the UTC time it fired for (its idempotency key holds it too).
    slot: Mapped[datetime | None]
    replay_of_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # When the run was queued (creation, a Retry, a due retry/wait, a dead worker's re-queue);
    # reconcile's re-sends set `sent_at` instead, so the oldest queued age stays true.
    queued_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    wait_reason: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(255))
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    progress: Mapped[dict[str, Any] | None]

    attempt_rows: Mapped[list[Attempt]] = relationship(
        back_populates="run",
        order_by="Attempt.number",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    steps: Mapped[list[RunStep]] = relationship(
        back_populates="run",
        order_by="RunStep.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Attempt(Base):
    __tablename__ = "run_attempts"
    __table_args__ = (UniqueConstraint("run_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=RUNNING)
    worker: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    error: Mapped[dict[str, Any] | None]

    run: Mapped[Run] = relationship(back_populates="attempt_rows")


class RunStep(Base):
    """One executed step of one attempt; `key` is the step's path (`loop[2].inner`)."""

    __tablename__ = "run_steps"
    __table_args__ = (UniqueConstraint("attempt_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("run_attempts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=RUNNING)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    output: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None]
    # Set (and committed) just before a non-idempotent request goes out; with the step still
    # `running` on resume it means "sent, outcome not recorded" (see shared.behaviors.engine).
    sent_at: Mapped[datetime | None]

    run: Mapped[Run] = relationship(back_populates="steps")
    exchanges: Mapped[list[HttpExchange]] = relationship(
        order_by="HttpExchange.id", passive_deletes=True
    )


class HttpExchange(Base):
    """One HTTP request/response pair, secrets redacted and bodies capped."""

    __tablename__ = "http_exchanges"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    step_id: Mapped[int | None] = mapped_column(
        ForeignKey("run_steps.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    method: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[int | None]
    duration_ms: Mapped[int | None]
    request_headers: Mapped[dict[str, Any] | None]
    request_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict[str, Any] | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
