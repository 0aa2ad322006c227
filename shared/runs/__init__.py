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

from .create import (
    CANCELLED_BY_USER,
    MAX_IDEMPOTENCY_KEY,
    BehaviorNotFound,
    PayloadInvalid,
    RunStateError,
    cancel_run,
    create_run,
    replay_run,
    retry_run,
)
from .execute import (
    SCHEDULED_TRIGGERS,
    Claim,
    Heartbeat,
    Outcome,
    backoff,
    claim_for_execution,
    classify,
    execute_claimed,
    finish_run,
)
from .maintenance import (
    broker_was_emptied,
    dispatch_due,
    prune_old_runs,
    prune_runs,
    queued_runs,
    reconcile,
)
from .present import (
    decode_cursor,
    encode_cursor,
    list_runs_page,
    load_run,
    run_to_dict,
    step_to_dict,
)
from .recorder import SKIPPED, RunRecorder

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "CANCELLED_BY_USER",
    "FAILED",
    "FINISHED",
    "MAX_IDEMPOTENCY_KEY",
    "QUEUED",
    "RETRYING",
    "RUNNING",
    "SCHEDULED_TRIGGERS",
    "SKIPPED",
    "STATUSES",
    "SUCCEEDED",
    "WAITING",
    "BehaviorNotFound",
    "Claim",
    "Heartbeat",
    "Outcome",
    "PayloadInvalid",
    "RunRecorder",
    "RunStateError",
    "backoff",
    "broker_was_emptied",
    "cancel_run",
    "claim_for_execution",
    "classify",
    "create_run",
    "decode_cursor",
    "dispatch_due",
    "encode_cursor",
    "execute_claimed",
    "finish_run",
    "list_runs_page",
    "load_run",
    "prune_old_runs",
    "prune_runs",
    "queued_runs",
    "reconcile",
    "replay_run",
    "retry_run",
    "run_to_dict",
    "step_to_dict",
]
