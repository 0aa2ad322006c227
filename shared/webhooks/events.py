"""The outbox: `emit()` writes an event and its deliveries in the caller's transaction.

Whoever changes state calls `emit(session, type, data, order_key=...)` inside the transaction
that makes the change, so the event exists exactly when the change committed: a crash before
the commit loses both, a crash after it loses neither (the delivery worker finds the rows).
One delivery row per enabled subscription to the type is written at the same time, so a
subscription created later does not receive older events.

Producers: the runs engine (`run_event` when a run finishes or starts waiting: one
`run.waiting` per wait), token code (`account.needs_reauth` when the compare-and-swap marks
the account), linking (`account.linked` on every completed link, also a relink), and syncs
(`sync_event` when a sync run finishes, with its counts).

`order_key` groups events whose order matters ("run:42", "account:7", "sync:3"): deliveries
of one subscription with the same key are sent one at a time, oldest first.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Webhook, WebhookDelivery, WebhookEvent, isoformat, utcnow

RUN_SUCCEEDED = "run.succeeded"
RUN_FAILED = "run.failed"
RUN_WAITING = "run.waiting"
SYNC_FINISHED = "sync.finished"
ACCOUNT_NEEDS_REAUTH = "account.needs_reauth"
ACCOUNT_LINKED = "account.linked"
PING = "ping"
EVENT_TYPES = (
    RUN_SUCCEEDED,
    RUN_FAILED,
    RUN_WAITING,
    SYNC_FINISHED,
    ACCOUNT_NEEDS_REAUTH,
    ACCOUNT_LINKED,
)


def emit(
    session: Session,
    type: str,  # noqa: A002 - the event's field is called type
    data: dict[str, Any],
    *,
    order_key: str,
    only_webhook: int | None = None,
) -> WebhookEvent:
    """Add the event and one pending delivery per subscriber; the caller commits."""
    if type not in EVENT_TYPES and type != PING:
        raise ValueError(f"unknown webhook event type {type!r}")
    now = utcnow()
    event = WebhookEvent(
        uid="evt_" + uuid.uuid4().hex, type=type, order_key=order_key, data=data, created_at=now
    )
    session.add(event)
    session.flush()
    query = select(Webhook).where(Webhook.enabled.is_(True))
    if only_webhook is not None:
        query = select(Webhook).where(Webhook.id == only_webhook)
    for webhook in session.scalars(query):
        if only_webhook is None and type not in (webhook.events or []):
            continue
        session.add(
            WebhookDelivery(
                webhook_id=webhook.id,
                event_id=event.id,
                event_type=type,
                order_key=order_key,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return event


def body_of(event: WebhookEvent) -> dict[str, Any]:
    """The JSON body a receiver gets: `{id, type, created_at, data}`."""
    return {
        "id": event.uid,
        "type": event.type,
        "created_at": isoformat(event.created_at),
        "data": event.data,
    }


def run_event(session: Session, run: Any) -> WebhookEvent | None:
    """Emit run.succeeded / run.failed / run.waiting for a run that just reached that status."""
    type_ = {"succeeded": RUN_SUCCEEDED, "failed": RUN_FAILED, "waiting": RUN_WAITING}.get(
        run.status
    )
    if type_ is None:
        return None
    data = {
        "run": {
            "id": run.id,
            "behavior": run.behavior_name,
            "status": run.status,
            "trigger": run.trigger,
            "attempts": run.attempts,
            "error": run.error,
            "next_attempt_at": isoformat(run.next_attempt_at),
            "finished_at": isoformat(run.finished_at),
        }
    }
    return emit(session, type_, data, order_key=f"run:{run.id}")


def sync_event(
    session: Session, sync_id: int, run_id: int, status: str, counts: dict[str, Any]
) -> WebhookEvent:
    """Emit sync.finished for a sync run that ended (its counts: created, updated, ...)."""
    data = {"sync": {"id": sync_id, "run_id": run_id, "status": status, "counts": counts}}
    return emit(session, SYNC_FINISHED, data, order_key=f"sync:{sync_id}")


def account_event(session: Session, type_: str, account_id: int) -> WebhookEvent:
    """Emit account.needs_reauth / account.linked with the account's public fields."""
    from shared.models import Account

    account = session.get(Account, account_id)
    data = {
        "account": {
            "id": account_id,
            "name": account.name if account else None,
            "status": account.status if account else None,
            "status_reason": account.status_reason if account else None,
        }
    }
    return emit(session, type_, data, order_key=f"account:{account_id}")
