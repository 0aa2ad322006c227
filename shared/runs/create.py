"""Creating runs and moving them by hand: create, retry, replay, cancel.

Functions take the caller's session and never commit; the caller commits and only then sends
the message (`worker.tasks.runs.enqueue`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.behaviors.definition import text_problem
from shared.behaviors.registry import registered
from shared.behaviors.store import (
    LoadedBehavior,
    python_behavior,
    stored_behavior,
    validate_payload,
)
from shared.models import Account, Attempt, Behavior, BehaviorVersion, Run, utcnow
from shared.models.runs import CANCELLED, FAILED, FINISHED, QUEUED, RETRYING, RUNNING, WAITING

MAX_IDEMPOTENCY_KEY = 255
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
    behavior, account_id = _current_behavior(session, behavior_name)
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
        account_id=account_id,
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


# Built once: the current version's number and definition, and the id of the account its
# top-level `account:` names (NULL when none or no such account).
_CURRENT_BEHAVIOR = (
    select(
        BehaviorVersion.version,
        BehaviorVersion.definition,
        select(Account.id)
        .where(Account.name == BehaviorVersion.definition["account"].as_string())
        .scalar_subquery(),
    )
    .join(
        Behavior,
        and_(
            Behavior.id == BehaviorVersion.behavior_id,
            Behavior.current_version == BehaviorVersion.version,
        ),
    )
    .where(Behavior.name == bindparam("name"))
)


def _current_behavior(session: Session, name: str) -> tuple[LoadedBehavior, int | None]:
    """The behavior's current version and its account's id, a stored one in one query.

    Builds what `load_behavior(session, name)` returns, without its two queries plus one for
    the account: a trigger reads the behavior once.
    """
    # Core, on the session's connection: columns only, no ORM entity to build.
    row = session.connection().execute(_CURRENT_BEHAVIOR, {"name": name}).one_or_none()
    if row is not None:
        version, definition, stored_account_id = row
        return stored_behavior(name, version, definition), stored_account_id
    python = registered().get(name)
    if python is None:
        raise BehaviorNotFound(name)
    behavior = python_behavior(name, python)
    return behavior, _account_id(session, behavior.account)


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
    run.resumptions = 0
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
